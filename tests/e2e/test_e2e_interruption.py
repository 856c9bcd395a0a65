"""Interruption: a browser closed mid-job does not lose the job; cancel while decoding leaves nothing.

(Cancel mid-separation, the popup closed and the service worker stopped mid-job
are in test_e2e_jobs.py.)
"""

from __future__ import annotations

import time

import numpy as np
import soundfile as sf
from support.audio import load_clip, mixture, read_stem, write_song
from support.chromium import inbox_entries, start_job, wait_for_files, wait_for_job

JOB_TIMEOUT = 900
ENDED = {"done", "failed", "cancelled", "interrupted"}


def test_a_job_cut_by_a_browser_restart_is_shown_as_interrupted_and_can_be_retried(fresh_browser, lithium, tmp_path):
    browser = fresh_browser
    song = write_song(tmp_path / "Restarted.wav", mixture(load_clip(lithium, seconds=16)))
    popup = browser.open_popup()
    start_job(popup, [song], stems="two")
    while "Separating segment" not in wait_for_job(popup, song.name, {"running"}, 300)["text"]:
        time.sleep(0.25)

    browser.restart()  # quit mid-separation, start again on the same profile

    popup = browser.open_popup()
    row = wait_for_job(popup, song.name, ENDED, 60)
    assert row["status"] == "interrupted", row["text"]
    assert "Interrupted: the browser was closed" in row["text"], row["text"]
    folder = browser.downloads / "Demixer" / "Restarted"
    assert not folder.exists(), "an interrupted job left stems behind"
    # Its song is still in the inbox: Retry runs it again, to the end.
    retry = row["element"].locator("button.retry")
    assert retry.count() == 1, row["text"]
    retry.click()
    # The row is drawn anew when the retry is taken: wait for that before waiting for the end.
    wait_for_job(popup, song.name, {"queued", "running", "saving", "done"}, 60)
    row = wait_for_job(popup, song.name, ENDED, JOB_TIMEOUT)
    assert row["status"] == "done", row["text"]
    for path in wait_for_files(folder, ["vocals.wav", "instrumental.wav"], 60):
        assert len(read_stem(path)[0]) == 16 * 44100
    time.sleep(2)  # the stems' scratch goes once the downloads are complete
    assert not inbox_entries(popup), "songs or scratch were left in the extension's storage"
    browser.network.assert_only_extension()


def test_cancel_while_decoding_leaves_nothing(browser, popup, tmp_path):
    """Cancel during the first stage (an MP3 decoded in pieces into OPFS scratch)."""
    rng = np.random.default_rng(5)
    minutes = 12
    tone = np.sin(2 * np.pi * 220 * np.arange(60 * 44100) / 44100)[:, None] * 0.2
    song = tmp_path / "Cancelled while decoding.mp3"
    with sf.SoundFile(song, "w", 44100, 2, format="MP3", subtype="MPEG_LAYER_III") as f:
        for _ in range(minutes):  # a minute at a time: the test stays small in memory too
            f.write((tone + rng.normal(0, 0.01, (60 * 44100, 2))).astype(np.float32))
    start_job(popup, [song], stems="two")
    row = wait_for_job(popup, song.name, {"running", "done", "failed", "cancelled"}, 120)
    assert row["status"] == "running" and "Decoding" in row["text"], row["text"]
    row["element"].locator("button.cancel").click()
    row = wait_for_job(popup, song.name, ENDED, 300)
    assert row["status"] == "cancelled", row["text"]
    time.sleep(2)
    assert not (browser.downloads / "Demixer" / "Cancelled while decoding").exists()
    assert not inbox_entries(popup), "the song or its decoded scratch stayed in the extension's storage"
