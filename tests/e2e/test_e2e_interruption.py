"""Interruption: a browser closed mid-job does not lose the job.

(Cancel, the popup closed and the service worker stopped mid-job are in test_e2e_jobs.py.)
"""

from __future__ import annotations

import time

from e2e_popup import start_job, wait_for_files, wait_for_job
from e2e_audio import load_clip, mixture, read_stem, write_song

from test_e2e_jobs import inbox_entries

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
    row = wait_for_job(popup, song.name, ENDED, JOB_TIMEOUT)
    assert row["status"] == "done", row["text"]
    for path in wait_for_files(folder, ["vocals.wav", "instrumental.wav"], 60):
        assert len(read_stem(path)[0]) == 16 * 44100
    time.sleep(2)  # the stems' scratch goes once the downloads are complete
    assert not inbox_entries(popup), "songs or scratch were left in the extension's storage"
    browser.network.assert_only_extension()
