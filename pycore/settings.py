"""The job settings, defined once: each setting's allowed values, their labels and its default.

The command line takes its choices and defaults from here; build.py writes `schema()` into the
extension as lib/job_settings.json, from which the popup draws its menus and the service worker
validates every job as it arrives (extension/lib/settings.js). A setting added here reaches both.

    python -m pycore.settings      prints the schema as JSON
"""

from __future__ import annotations

import json
import sys

from .formats import FORMATS
from .separate import PRESETS, STEM_LAYOUTS
from .stem_files import CLIP_MODES

# name -> (what the menu is called, {value: label}, default, a hint for the menu)
SETTINGS: dict[str, dict] = {
    "stems": {
        "label": "Stems",
        "choices": {"four": "Vocals, drums, bass, other", "two": "Vocals + instrumental"},
        "default": "four",
        "hint": "four: drums, bass, other, vocals; two: vocals and the rest",
    },
    "preset": {
        "label": "Quality",
        "choices": {"fast": "Fast", "balanced": "Balanced", "best": "Best (4x slower)"},
        "default": "balanced",
        "hint": "fast: less overlap between segments; best: four passes per segment, about 4x slower",
    },
    "format": {
        "label": "Format",
        "choices": {name: f.label for name, f in FORMATS.items()},
        "default": "wav16",
        "hint": "the stems' file format: WAV and FLAC are lossless (FLAC about half the size), MP3 and Opus are small",
    },
    "clip": {
        "label": "Peaks",
        "choices": {"rescale": "Lower all stems to fit", "clamp": "Clamp"},
        "default": "rescale",
        "hint": "what to do when a stem would go beyond full scale (integer WAV only; 32-bit float keeps everything)",
    },
    "midi": {
        "label": "MIDI of the notes",
        "choices": {"off": "No", "on": "Yes"},
        "default": "off",
        "hint": "also write <stem>.mid with the notes of the bass, vocals and other stems (of the vocals with two stems)",
    },
    "gpu": {
        "label": "Use the GPU",
        "choices": {"auto": "Automatic", "never": "Never"},
        "default": "auto",
        "hint": "automatic: a GPU whose results match the CPU's on the first segment runs the model, the CPU otherwise; "
                "never: always the CPU (the extension only: the command line runs on the CPU)",
    },
    "save": {
        "label": "Save to Downloads",
        "choices": {"off": "No", "on": "Yes"},
        "default": "on",
        "hint": "also save the stems to Downloads/Demixer/<song>/; they stay in the library (Listen) either way",
    },
    "library": {
        "label": "Library size",
        "choices": {"1": "1 GB", "2": "2 GB", "5": "5 GB", "10": "10 GB", "20": "20 GB"},
        "default": "2",
        "hint": "the space the library of separated songs may take in the browser; past it the oldest songs "
                "are removed first, and the popup says which",
    },
}
SWITCHES = {"midi", "save"}  # off/on settings: a checkbox in the popup, a flag on the command line
EXTENSION_ONLY = {"gpu", "save", "library"}  # what the command line has no use for
GLOBAL = {"library"}  # the extension's own, not a job's: no job's description names it

# Each menu offers exactly what the core implements.
for _name, _table in (("stems", STEM_LAYOUTS), ("preset", PRESETS), ("format", FORMATS), ("clip", CLIP_MODES),
                      ("midi", ("off", "on")), ("gpu", ("auto", "never")), ("save", ("off", "on")),
                      ("library", ("1", "2", "5", "10", "20"))):
    assert list(SETTINGS[_name]["choices"]) == list(_table), _name
    assert SETTINGS[_name]["default"] in _table, _name


class SettingsError(ValueError):
    """A job's settings are not ones Demixer offers; the message names the setting and the choices."""


def defaults() -> dict[str, str]:
    return {name: spec["default"] for name, spec in SETTINGS.items()}


def normalize(given: dict | None) -> dict[str, str]:
    """Every setting, with its default where `given` has none; unknown names or values are refused."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(SETTINGS))
    if unknown:
        raise SettingsError(f"unknown setting {unknown[0]!r}; the settings are {', '.join(SETTINGS)}")
    out = defaults()
    for name, value in given.items():
        if value is None:
            continue
        choices = SETTINGS[name]["choices"]
        if value not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
        out[name] = value
    return out


def _choice(name: str, value: str, label: str) -> dict:
    choice = {"value": value, "label": label}
    if name == "format":  # what the engine needs to encode it: extension, codec, bits, bitrate...
        f = FORMATS[value]
        choice.update({"extension": f.extension, "codec": f.codec, "bits": f.bits, "bitrate": f.bitrate,
                       "vbr_quality": f.vbr_quality, "rate": f.rate})  # fmt: skip
    return choice


def schema() -> dict:
    """The schema as plain JSON data (what build.py ships as lib/job_settings.json)."""
    return {
        name: {
            "label": spec["label"],
            "default": spec["default"],
            "hint": spec["hint"],
            "choices": [_choice(name, v, label) for v, label in spec["choices"].items()],
            **({"switch": True} if name in SWITCHES else {}),
            **({"extension": True} if name in EXTENSION_ONLY else {}),
            **({"global": True} if name in GLOBAL else {}),
        }
        for name, spec in SETTINGS.items()
    }


if __name__ == "__main__":
    json.dump(schema(), sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")
