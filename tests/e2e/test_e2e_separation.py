"""The whole extension on real music: popup -> service worker -> offscreen engine -> Downloads."""

from __future__ import annotations

import time

import numpy as np
from support.audio import (
    RATE,
    check_stems,
    load_clip,
    mixture,
    native_stems,
    write_song,
)
from support.chromium import job_rows, start_job, wait_for_files, wait_for_job

from pycore.metrics import sdr

JOB_TIMEOUT = 600  # a cold engine plus two or three segments, on a busy 2-core machine


def test_four_stems_from_wav(browser, popup, lithium, tmp_path):
    # 16-26 s: all four sources play (the bass enters at 22 s, 'other' stops at 24 s).
    clip = load_clip(lithium, seconds=10, start=16)
    mix = mixture(clip)
    song = write_song(tmp_path / "Lithium four stems.wav", mix)
    log = []
    start_job(popup, [song], stems="four", fmt="wav16")
    row = wait_for_job(popup, song.name, {"done", "failed", "cancelled"}, JOB_TIMEOUT, log)
    print("\n".join(f"{t} {text}" for t, text in log))
    assert row["status"] == "done", row["text"]
    assert "Saved to Downloads/Demixer/Lithium four stems/" in row["text"]
    assert row["element"].locator("button.show").count() == 1  # "Open folder"

    folder = browser.downloads / "Demixer" / "Lithium four stems"
    paths = wait_for_files(folder, [f"{s}.wav" for s in ("drums", "bass", "other", "vocals")], 30)
    stems = check_stems(paths, len(mix), "PCM_16")
    browser_scores = {s: sdr(clip[s], stems[s]) for s in clip}
    native_scores = {s: sdr(clip[s], audio) for s, audio in native_stems(song, tmp_path / "native").items()}
    browser_mean, native_mean = np.mean(list(browser_scores.values())), np.mean(list(native_scores.values()))
    print("SDR (dB) browser:", {s: round(v, 3) for s, v in browser_scores.items()}, round(browser_mean, 3))
    print("SDR (dB) native: ", {s: round(v, 3) for s, v in native_scores.items()}, round(native_mean, 3))
    assert abs(browser_mean - native_mean) <= 0.1, (browser_scores, native_scores)
    assert native_mean > 9.0, native_scores  # and both really separate (9.80 dB measured on this clip)
    residual = ((sum(stems.values()) - mix) ** 2).sum() / (mix**2).sum()
    assert residual < 0.01, f"the stems add up to the mix within {residual:.2%} of its energy"


def test_two_stems_from_flac(browser, popup, lithium, tmp_path):
    clip = load_clip(lithium, seconds=8)
    mix = mixture(clip)
    song = write_song(tmp_path / "Lithium two stems.flac", mix, subtype="PCM_16")
    start_job(popup, [song], stems="two", fmt="wav24")
    row = wait_for_job(popup, song.name, {"done", "failed", "cancelled"}, JOB_TIMEOUT)
    assert row["status"] == "done", row["text"]

    folder = browser.downloads / "Demixer" / "Lithium two stems"
    paths = wait_for_files(folder, ["vocals.wav", "instrumental.wav"], 30)
    assert sorted(p.name for p in folder.iterdir()) == ["instrumental.wav", "vocals.wav"]
    stems = check_stems(paths, len(mix), "PCM_24")
    truth = {"vocals": clip["vocals"], "instrumental": clip["drums"] + clip["bass"] + clip["other"]}
    scores = {s: sdr(truth[s], stems[s]) for s in truth}
    print("SDR (dB):", {s: round(v, 2) for s, v in scores.items()})
    # Natively: vocals 12.23 dB, instrumental 18.24 dB on this clip.
    assert scores["vocals"] > 11.5 and scores["instrumental"] > 17.5, scores
    residual = ((stems["vocals"] + stems["instrumental"] - mix) ** 2).sum() / (mix**2).sum()
    assert residual < 0.01, residual


def test_same_song_twice_gets_a_new_folder(browser, popup, lithium, tmp_path):
    """Never overwrite an earlier result: the second run goes to 'Song (2)'."""
    song = write_song(tmp_path / "Twice.wav", mixture(load_clip(lithium, seconds=3)))
    for runs in (1, 2):
        start_job(popup, [song], stems="two", fmt="wav16")
        deadline = time.monotonic() + JOB_TIMEOUT
        while True:
            rows = [r for r in job_rows(popup) if r["name"] == song.name]
            if len(rows) == runs and all(r["status"] in ("done", "failed") for r in rows):
                break
            assert time.monotonic() < deadline, [r["text"] for r in rows]
            time.sleep(0.25)
        assert all(r["status"] == "done" for r in rows), [r["text"] for r in rows]
    base = browser.downloads / "Demixer"
    wait_for_files(base / "Twice", ["vocals.wav", "instrumental.wav"], 30)
    wait_for_files(base / "Twice (2)", ["vocals.wav", "instrumental.wav"], 60)
    assert not list((base / "Twice").glob("* (*).wav")), "a stem was uniquified inside the first folder"


def test_mono_48k_is_resampled_and_used_for_both_channels(browser, popup, lithium, tmp_path):
    """The browser's decoder resamples to 44.1 kHz; a mono song feeds both channels.
    Also the 'best' preset: four passes over the song's one segment."""
    import soundfile as sf

    mono = mixture(load_clip(lithium, seconds=3)).mean(axis=1)
    t48 = np.arange(int(len(mono) * 48000 / RATE)) / 48000
    mono48 = np.interp(t48, np.arange(len(mono)) / RATE, mono)  # crude, but it only has to be music at 48 kHz
    song = tmp_path / "Mono 48k.flac"
    sf.write(song, mono48.astype("float32"), 48000, subtype="PCM_16")
    frames_48k = sf.info(song).frames
    start_job(popup, [song], stems="two", fmt="float32", preset="best")
    row = wait_for_job(popup, song.name, {"done", "failed", "cancelled"}, JOB_TIMEOUT)
    assert row["status"] == "done", row["text"]
    assert "mono input" in row["text"], row["text"]  # the warning is shown with the result
    jobs = popup.evaluate("() => chrome.storage.local.get('jobs')")["jobs"]
    job = next(j for j in jobs if j["name"] == song.name)
    assert job["settings"]["preset"] == "best" and job["total"] == 4, job  # 2 shifts x (as is, sign-inverted)
    paths = wait_for_files(browser.downloads / "Demixer" / "Mono 48k", ["vocals.wav", "instrumental.wav"], 30)
    expected = -(-frames_48k * RATE // 48000)  # decodeAudioData's length at the context's rate
    stems = check_stems(paths, expected, "FLOAT")
    mix = stems["vocals"] + stems["instrumental"]
    # Both channels carry the same song (the stems add back up to it within ~1 %).
    difference = ((mix[:, 0] - mix[:, 1]) ** 2).sum() / (mix[:, 0] ** 2).sum()
    assert difference < 0.01, difference
