"""Bad and unusual inputs in the extension: each gets a correct result or a plain
message, and the engine takes the next job normally.

A representative selection (pycore's own tests cover the whole corpus natively and
in Pyodide): empty, a WAV header with no audio, truncated WAV, a header claiming an
absurd size, a 0.2 s clip, 6 channels, 192 kHz, a 300-character non-Latin name
with slashes. (A text file named .mp3 is test_e2e_jobs.py's
test_a_file_that_is_not_audio_fails_in_plain_words.) They are queued together, so
each failure is followed by the next job in the same engine.
"""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import numpy as np
import soundfile as sf
from support.audio import RATE, load_clip, mixture, read_stem
from support.chromium import inbox_entries, job_rows, wait_for_files, wait_for_job

JOB_TIMEOUT = 900  # several short jobs queued behind each other on a busy machine
FOUR = [f"{s}.wav" for s in ("drums", "bass", "other", "vocals")]


def music(lithium: Path, seconds: float) -> np.ndarray:
    return mixture(load_clip(lithium, seconds=seconds, start=16)) * 0.8


def resampled(x: np.ndarray, rate: int) -> np.ndarray:
    """Linear interpolation to another rate: enough to make a test file at that rate."""
    n = int(round(len(x) * rate / RATE))
    t = np.arange(n) * (RATE / rate)
    return np.stack([np.interp(t, np.arange(len(x)), x[:, c]) for c in range(x.shape[1])], axis=1).astype(np.float32)


def make_corpus(folder: Path, lithium: Path) -> dict[str, dict]:
    """{file name: {status, says: any of these in the popup's text, frames of each stem}}; files go into `folder`."""
    cases = {}
    song = music(lithium, 3.0)

    (folder / "Empty.wav").write_bytes(b"")
    cases["Empty.wav"] = {"status": "failed", "says": ("This file is empty",)}

    sf.write(folder / "Header only.wav", np.zeros((0, 2), np.float32), RATE, subtype="PCM_16")
    cases["Header only.wav"] = {"status": "failed", "says": ("no audio", "empty", "0 samples")}

    whole = folder / "whole.wav"
    sf.write(whole, song, RATE, subtype="PCM_16")
    data = whole.read_bytes()
    audio_at = data.index(b"data") + 8
    kept = audio_at + (len(data) - audio_at) * 6 // 10 // 4 * 4  # 60 % of the audio, whole frames
    (folder / "Truncated.wav").write_bytes(data[:kept])
    cases["Truncated.wav"] = {"status": "done", "says": ("truncated",), "frames": (kept - audio_at) // 4}

    absurd = bytearray(data)
    at = absurd.index(b"data") + 4
    absurd[at : at + 4] = struct.pack("<I", 0xFFFFFF00)  # a 4 GB data chunk in a 0.5 MB file
    (folder / "Absurd size.wav").write_bytes(bytes(absurd))
    cases["Absurd size.wav"] = {"status": "done", "says": ("truncated", "claims"), "frames": len(song)}
    whole.unlink()

    short = song[: int(0.2 * RATE)]
    sf.write(folder / "Short.wav", short, RATE, subtype="PCM_16")
    cases["Short.wav"] = {"status": "done", "says": ("",), "frames": len(short)}

    left, right = song[:RATE, 0], song[:RATE, 1]
    mid = (left + right) / 2
    six = np.stack([left, right, mid * 0.5, mid * 0.2, left * 0.3, right * 0.3], axis=1)  # L R C LFE Ls Rs
    sf.write(folder / "Six channels.wav", six * 0.5, RATE, subtype="PCM_24")
    cases["Six channels.wav"] = {"status": "done", "says": ("6-channel",), "frames": RATE}

    hi = resampled(song[:RATE], 192000)
    sf.write(folder / "High rate.wav", hi, 192000, subtype="FLOAT")
    cases["High rate.wav"] = {"status": "done", "says": ("192000 Hz", "192 kHz"), "frames": RATE}
    return cases


def long_name() -> str:
    """300 characters of Cyrillic, CJK and emoji, with slashes and backslashes in them."""
    part = "Песня/歌曲\\ノート🎵 "
    return (part * 30)[:296] + ".wav"


def drop_file(page, name: str, path: Path) -> None:
    """A File whose name the file system could not hold (slashes), as a drop would give."""
    transfer = page.evaluate_handle(
        """([b64, name]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, { type: 'audio/wav' }));
            return dt;
        }""",
        [base64.b64encode(path.read_bytes()).decode(), name],
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})


def test_bad_inputs_get_a_result_or_a_plain_message(browser, popup, lithium, tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    cases = make_corpus(folder, lithium)
    strange = long_name()
    assert len(strange) == 300 and "/" in strange and "\\" in strange
    sf.write(folder / "strange.wav", music(lithium, 1.0), RATE, subtype="PCM_16")
    after = folder / "After the bad ones.wav"
    sf.write(after, music(lithium, 2.0), RATE, subtype="PCM_16")

    popup.set_input_files("#files", [str(folder / name) for name in cases])
    drop_file(popup, strange, folder / "strange.wav")
    popup.set_input_files("#files", [str(after)])  # adds to the chosen list, last in the queue
    popup.check("input[name=stems][value=four]")
    popup.click("#start")

    problems = []
    for name, want in cases.items():
        row = wait_for_job(popup, name, {"done", "failed", "cancelled", "interrupted"}, JOB_TIMEOUT)
        text = row["text"]
        if row["status"] != want["status"] or not any(s in text for s in want["says"]):
            problems.append(f"{name}: {row['status']} {text!r}, expected {want}")
            continue
        if want["status"] == "done":
            out = browser.downloads / "Demixer" / Path(name).stem
            for path in wait_for_files(out, FOUR, 60):
                data, info = read_stem(path)
                if (info.samplerate, info.channels, len(data)) != (RATE, 2, want["frames"]):
                    problems.append(f"{name}: {path.name} is {info.samplerate} Hz x{info.channels}, {len(data)} frames; "
                                    f"expected {want['frames']}")
                if not np.isfinite(data).all():
                    problems.append(f"{name}: {path.name} holds NaN or infinity")
        else:
            assert not (browser.downloads / "Demixer" / Path(name).stem).exists(), f"{name} left a folder"
        print(f"{name}: {row['status']}: {text!r}")

    row = wait_for_job(popup, strange, {"done", "failed", "cancelled", "interrupted"}, JOB_TIMEOUT)
    if row["status"] != "done":
        problems.append(f"the long name: {row['status']} {row['text']!r}")
    else:
        made = [d for d in (browser.downloads / "Demixer").iterdir() if d.name.startswith("Песня_歌曲_ノート")]
        assert len(made) == 1, sorted(d.name for d in (browser.downloads / "Demixer").iterdir())
        assert len(made[0].name.encode()) <= 150, made[0].name
        assert made[0].name in row["text"]  # "Saved to Downloads/Demixer/<that folder>/"
        wait_for_files(made[0], FOUR, 60)

    # The engine takes the next job normally after all of them.
    row = wait_for_job(popup, after.name, {"done", "failed", "cancelled", "interrupted"}, JOB_TIMEOUT)
    assert row["status"] == "done", row["text"]
    for path in wait_for_files(browser.downloads / "Demixer" / after.stem, FOUR, 60):
        assert len(read_stem(path)[0]) == 2 * RATE
    assert not problems, "\n".join(problems)
    assert not inbox_entries(popup), "songs or scratch were left in the extension's storage"
    assert not any(r["status"] in ("running", "queued") for r in job_rows(popup))


def test_clamp_mode_reaches_the_engine_and_the_clipping_is_reported(browser, popup, lithium, tmp_path):
    song = tmp_path / "Too loud.wav"
    sf.write(song, music(lithium, 2.0) * 3.0, RATE, subtype="FLOAT")  # peaks far beyond full scale
    popup.set_input_files("#files", [str(song)])
    popup.check("input[name=stems][value=two]")
    popup.select_option("#format", "wav16")
    popup.select_option("#clip", "clamp")
    popup.click("#start")
    row = wait_for_job(popup, song.name, {"done", "failed", "cancelled", "interrupted"}, JOB_TIMEOUT)
    assert row["status"] == "done", row["text"]
    assert "clamped" in row["text"], row["text"]  # never silently
    popup.select_option("#clip", "rescale")  # back to the default for the tests that follow
    peaks = {}
    for path in wait_for_files(browser.downloads / "Demixer" / "Too loud", ["vocals.wav", "instrumental.wav"], 60):
        data, info = read_stem(path)
        assert info.subtype == "PCM_16" and len(data) == 2 * RATE
        peaks[path.stem] = float(np.abs(data).max())
    clamped = [stem for stem in peaks if f"{stem}:" in row["text"]]
    assert clamped and all(peaks[s] >= 0.999 for s in clamped), (peaks, row["text"])  # clamped at full scale
