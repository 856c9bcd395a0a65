"""Stems in FLAC, MP3 and Opus from the extension in Chromium, on real music with the real model.

One clip of one model segment is separated once per format. FLAC must hold exactly the samples
of the WAV stems (the engine is deterministic, so the WAV job is the same job's stems), MP3 and
Opus must decode to the right length, aligned and close to them; every file carries its tags and
opens in ffmpeg without a warning.
"""

from __future__ import annotations

import numpy as np
import soundfile as sf
from support.audio import load_clip, mixture, write_song
from support.chromium import start_job, wait_for_files, wait_for_job
from support.formats import check_ffmpeg_reads, check_lossy, check_lossy_mean, check_tags

from pycore import formats

JOB_TIMEOUT = 600
STEMS = ("drums", "bass", "other", "vocals")
ORDER = ["wav16", "wav24", "flac16", "flac24", "mp3-320", "mp3-v0", "opus"]


def test_stems_in_every_format(browser, popup, lithium, tmp_path):
    clip = mixture(load_clip(lithium, seconds=6, start=16))
    song = "Lithium formats"
    stems: dict[str, dict[str, object]] = {}
    seconds = {}
    for name in ORDER:
        path = write_song(tmp_path / f"{song} {name}.wav", clip)  # one name per job: the rows are told apart by name
        start_job(popup, [path], stems="four", fmt=name)
        row = wait_for_job(popup, path.name, {"done", "failed", "cancelled"}, JOB_TIMEOUT)
        assert row["status"] == "done", (name, row["text"])
        jobs = popup.evaluate("() => chrome.storage.local.get('jobs')")["jobs"]
        job = next(j for j in jobs if j["name"] == path.name)
        folder = browser.downloads / "Demixer" / job["folder"]
        fmt = formats.FORMATS[name]
        paths = wait_for_files(folder, [f"{s}.{fmt.extension}" for s in STEMS], 30)
        assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in paths), name  # no scratch left
        stems[name] = dict(zip(STEMS, paths))
        seconds[name] = (job["timings"].get("separate"), job["timings"].get("encode"))
    print("\nseparate / encode seconds per format:", seconds)

    for bits in (16, 24):
        for stem in STEMS:
            wav, _ = sf.read(stems[f"wav{bits}"][stem], dtype="int32")
            flac, _ = sf.read(stems[f"flac{bits}"][stem], dtype="int32")
            assert np.array_equal(wav, flac), f"{stem}.flac ({bits}-bit) differs from the WAV"
    for name in ("mp3-320", "mp3-v0", "opus"):
        scores = {}
        for stem in STEMS:
            reference, _ = sf.read(stems["wav24"][stem], dtype="float64", always_2d=True)
            scores[stem] = round(float(check_lossy(stems[name][stem], reference, formats.FORMATS[name])), 1)
        print(f"{name} SDR against the WAV stems (dB):", scores)
        check_lossy_mean(scores, formats.FORMATS[name])
    for name in ORDER:
        for stem, path in stems[name].items():
            if not name.startswith("wav"):
                check_tags(path, f"{song} {name}", stem)
            check_ffmpeg_reads(path)


def test_formats_in_firefox(firefox_bundle, lithium, tmp_path):
    """Firefox offers what it can encode (FLAC and MP3 in WebAssembly, Opus through WebCodecs)
    and each format's stems are as in Chromium; a format it cannot encode is hidden with a line."""
    from support.firefox import FirefoxWithAddon
    from support.firefox import start_job as ff_start_job
    from support.firefox import wait_for_downloads as ff_wait_for_downloads
    from support.firefox import wait_for_job as ff_wait_for_job

    clip = mixture(load_clip(lithium, seconds=6, start=16))
    ff = FirefoxWithAddon(firefox_bundle, tmp_path / "firefox")
    try:
        ff.open_popup()
        offered = ff.evaluate("[...document.querySelectorAll('#format option')].map((o) => o.value).join(' ')", await_promise=False).split()
        note = ff.evaluate("document.querySelector('#format-note').hidden ? '' : document.querySelector('#format-note').textContent", await_promise=False)
        print("\nFirefox offers:", offered, "| note:", note or "none")
        assert set(offered) | {"opus"} == set(formats.FORMATS), offered  # all but, at most, Opus
        assert ("opus" in offered) == (note == ""), note
        stems = {}
        for name in ["wav16", "flac16", "mp3-v0"] + (["opus"] if "opus" in offered else []):
            song = write_song(tmp_path / f"Firefox {name}.wav", clip)
            ff_start_job(ff, [song], stems="four", fmt=name)
            row = ff_wait_for_job(ff, song.name, {"done", "failed", "cancelled"}, JOB_TIMEOUT)
            assert row["status"] == "done", (name, row["text"])
            ext = formats.FORMATS[name].extension
            stems[name] = dict(zip(STEMS, ff_wait_for_downloads(ff.downloads / "Demixer" / song.stem, [f"{s}.{ext}" for s in STEMS], 60)))
    except BaseException:
        print((ff.root / "firefox.log").read_text(errors="replace")[-6000:])
        raise
    finally:
        ff.close()
    for stem in STEMS:
        wav, _ = sf.read(stems["wav16"][stem], dtype="int32")
        flac, _ = sf.read(stems["flac16"][stem], dtype="int32")
        assert np.array_equal(wav, flac), f"{stem}.flac differs from the WAV in Firefox"
    for name in [n for n in ("mp3-v0", "opus") if n in stems]:
        scores = {}
        for stem in STEMS:
            reference, _ = sf.read(stems["wav16"][stem], dtype="float64", always_2d=True)
            scores[stem] = round(check_lossy(stems[name][stem], reference, formats.FORMATS[name]), 1)
        print(f"Firefox {name} SDR against the WAV stems (dB):", scores)
        check_lossy_mean(scores, formats.FORMATS[name])
        for stem, path in stems[name].items():
            check_tags(path, f"Firefox {name}", stem)
            check_ffmpeg_reads(path)
