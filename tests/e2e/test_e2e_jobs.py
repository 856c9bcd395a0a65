"""Jobs outlive the popup, and a cancelled job leaves nothing behind."""

from __future__ import annotations

import base64
import time

from support.audio import load_clip, mixture, write_song
from support.chromium import inbox_entries, start_job, wait_for_files, wait_for_job

JOB_TIMEOUT = 600


def test_closing_the_popup_does_not_stop_the_job(browser, lithium, tmp_path):
    song = write_song(tmp_path / "Closed popup.wav", mixture(load_clip(lithium, seconds=16)))
    popup = browser.open_popup()
    start_job(popup, [song], stems="four")
    row = wait_for_job(popup, song.name, {"running", "saving", "done"}, 60)
    popup.close()  # the job runs in the offscreen document, not in the popup

    time.sleep(3)
    popup = browser.open_popup()
    row = wait_for_job(popup, song.name, {"running", "saving", "done"}, 30)
    if row["status"] == "running":
        # Reopened mid-job: it shows where the job is, with progress and a Cancel button.
        assert any(s in row["text"] for s in ("Separating segment", "Starting the engine", "Decoding")), row["text"]
        assert row["element"].locator("progress").count() == 1
        assert row["element"].locator("button.cancel").count() == 1
    row = wait_for_job(popup, song.name, {"done", "failed", "cancelled"}, JOB_TIMEOUT)
    assert row["status"] == "done", row["text"]
    wait_for_files(browser.downloads / "Demixer" / "Closed popup", [f"{s}.wav" for s in ("drums", "bass", "other", "vocals")], 30)
    popup.close()


def test_cancel_leaves_no_stems(browser, popup, lithium, tmp_path):
    song = write_song(tmp_path / "Cancelled.wav", mixture(load_clip(lithium, seconds=20)))
    start_job(popup, [song], stems="four")
    deadline = time.monotonic() + JOB_TIMEOUT
    while True:  # cancel in the middle of the separation
        row = wait_for_job(popup, song.name, {"running"}, 60)
        if "Separating segment" in row["text"]:
            break
        assert time.monotonic() < deadline
        time.sleep(0.25)
    row["element"].locator("button.cancel").click()
    row = wait_for_job(popup, song.name, {"cancelled", "done", "failed"}, 120)
    assert row["status"] == "cancelled", row["text"]

    time.sleep(2)
    folder = browser.downloads / "Demixer" / "Cancelled"
    assert not folder.exists() or not any(folder.iterdir()), sorted(p.name for p in folder.iterdir())
    assert not inbox_entries(popup), "the cancelled song was left in the inbox"

    # The engine is still usable after a cancel.
    after = write_song(tmp_path / "After cancel.wav", mixture(load_clip(lithium, seconds=3)))
    start_job(popup, [after], stems="two")
    row = wait_for_job(popup, after.name, {"done", "failed", "cancelled"}, JOB_TIMEOUT)
    assert row["status"] == "done", row["text"]


def test_a_file_that_is_not_audio_fails_in_plain_words(browser, popup, tmp_path):
    bogus = tmp_path / "Not audio.mp3"
    bogus.write_bytes(b"this is a text file, not an MP3\n" * 100)
    start_job(popup, [bogus])
    row = wait_for_job(popup, bogus.name, {"failed", "done", "cancelled"}, 120)
    assert row["status"] == "failed"
    assert "could not be read as audio" in row["text"], row["text"]
    assert not (browser.downloads / "Demixer" / "Not audio").exists()


def test_dropping_a_file_on_the_popup_chooses_it(popup, lithium, tmp_path):
    song = write_song(tmp_path / "Dropped.wav", mixture(load_clip(lithium, seconds=1)))
    data = base64.b64encode(song.read_bytes()).decode()
    transfer = popup.evaluate_handle(
        """(b64) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], 'Dropped.wav', { type: 'audio/wav' }));
            return dt;
        }""",
        data,
    )
    popup.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    assert "Dropped.wav" in popup.inner_text("#chosen")
    assert popup.locator("#start").is_enabled()
    popup.locator("#chosen button").click()  # remove it again
    assert popup.inner_text("#chosen").strip() == ""
    assert not popup.locator("#start").is_enabled()


def test_a_job_survives_its_service_worker_being_stopped(browser, popup, lithium, tmp_path):
    """Chrome stops idle service workers at will; the job's state is in storage, so
    the restarted worker carries on (the engine runs in the offscreen document)."""
    song = write_song(tmp_path / "Worker stopped.wav", mixture(load_clip(lithium, seconds=12)))
    start_job(popup, [song], stems="two")
    while "Separating segment" not in wait_for_job(popup, song.name, {"running"}, 120)["text"]:
        time.sleep(0.25)
    cdp = browser.context.new_cdp_session(popup)
    cdp.send("ServiceWorker.enable")
    versions = []
    cdp.on("ServiceWorker.workerVersionUpdated", lambda e: versions.extend(e["versions"]))
    cdp.send("ServiceWorker.stopAllWorkers")
    time.sleep(1)
    assert any(v["runningStatus"] in ("stopped", "stopping") for v in versions), versions
    cdp.detach()
    row = wait_for_job(popup, song.name, {"done", "failed", "cancelled"}, JOB_TIMEOUT)
    assert row["status"] == "done", row["text"]
    wait_for_files(browser.downloads / "Demixer" / "Worker stopped", ["vocals.wav", "instrumental.wav"], 30)
