"""The Firefox add-on (dist/firefox) in Debian's firefox-esr: a real separation, saved to Downloads."""

from __future__ import annotations

import json
import time

import numpy as np
import soundfile as sf
from support.audio import check_stems, load_clip, mixture, native_stems, write_song
from support.firefox import (
    FirefoxWithAddon,
    job_rows,
    start_job,
    wait_for_downloads,
    wait_for_job,
)

from pycore.metrics import sdr

JOB_TIMEOUT = 900  # a cold engine and two segments on one thread (Firefox gives extensions no shared memory)
STEMS = ("drums", "bass", "other", "vocals")


def test_four_stems_in_firefox(firefox_bundle, lithium, tmp_path):
    ff = FirefoxWithAddon(firefox_bundle, tmp_path / "firefox")
    try:
        ff.open_popup()
        isolated = ff.evaluate("String(self.crossOriginIsolated)", await_promise=False)
        shared = ff.evaluate("typeof SharedArrayBuffer", await_promise=False)
        # No capture in Firefox: the popup says so instead of offering it.
        assert ff.evaluate("String(document.querySelector('#no-tab-capture').hidden)", await_promise=False) == "false"

        clip = load_clip(lithium, seconds=10, start=16)  # as in the Chromium test: all four sources play
        mix = mixture(clip)
        song = write_song(tmp_path / "Lithium in Firefox.wav", mix)
        log = []
        start_job(ff, [song], stems="four", fmt="wav16")
        row = wait_for_job(ff, song.name, {"done", "failed", "cancelled"}, JOB_TIMEOUT, log)
        print("\n".join(f"{t} {text}" for t, text in log))
        assert row["status"] == "done", row["text"]
        assert "Saved to Downloads/Demixer/Lithium in Firefox/" in row["text"], row["text"]

        jobs = json.loads(ff.evaluate("browser.storage.local.get('jobs').then((got) => JSON.stringify(got.jobs))"))
        timings = next(j for j in jobs if j["name"] == song.name).get("timings", {})
        print(f"Firefox: crossOriginIsolated={isolated}, SharedArrayBuffer: {shared}")
        print("Firefox engine timings:", json.dumps(timings))

        folder = ff.downloads / "Demixer" / "Lithium in Firefox"
        paths = wait_for_downloads(folder, [f"{s}.wav" for s in STEMS], 60)
        assert sorted(p.name for p in folder.iterdir()) == sorted(f"{s}.wav" for s in STEMS)
        stems = check_stems(paths, len(mix), "PCM_16")
        mix_of_vocals = listen_in_firefox(ff, "Lithium in Firefox")
    except BaseException:
        print((ff.root / "firefox.log").read_text(errors="replace")[-6000:])
        raise
    finally:
        ff.close()

    # The player's "mix you hear" with the vocals soloed is the vocals stem.
    assert mix_of_vocals.shape == stems["vocals"].shape
    score = sdr(stems["vocals"], mix_of_vocals)
    print(f"Firefox: the mix with the vocals soloed against the vocals stem: {score:.1f} dB")
    assert score >= 60, score

    browser_scores = {s: sdr(clip[s], stems[s]) for s in STEMS}
    native_scores = {s: sdr(clip[s], audio) for s, audio in native_stems(song, tmp_path / "native").items()}
    print("SDR (dB) Firefox:", {s: round(v, 3) for s, v in browser_scores.items()})
    print("SDR (dB) native: ", {s: round(v, 3) for s, v in native_scores.items()})
    assert sorted(native_scores) == sorted(STEMS)
    for s in STEMS:
        assert abs(browser_scores[s] - native_scores[s]) <= 0.1, (s, browser_scores, native_scores)
    assert np.mean(list(native_scores.values())) > 9.0, native_scores  # both really separate


def listen_in_firefox(ff: FirefoxWithAddon, name: str) -> np.ndarray:
    """The finished job is in the library: the popup lists it with Listen; the player opens on it, plays,
    and saves the mix heard with the vocals soloed (float WAV), which is returned."""
    library = json.loads(ff.evaluate("browser.storage.local.get('library').then((got) => JSON.stringify(got.library))"))
    entry = next(e for e in library["entries"] if e["name"] == name)
    deadline = time.monotonic() + 20
    while ff.evaluate(f"document.querySelector('#library-list li[data-id=\"{entry['id']}\"] button.listen') === null", await_promise=False):
        assert time.monotonic() < deadline, "the popup does not list the song in its library"
        time.sleep(0.2)
    ff.bidi.send("browsingContext.navigate", {"context": ff.context, "url": ff.origin + f"player/player.html?id={entry['id']}", "wait": "complete"})
    while ff.evaluate("document.body.dataset.ready ?? ''", await_promise=False) != "true":
        assert time.monotonic() < deadline + 20, ff.evaluate("document.querySelector('#status').textContent", await_promise=False)
        time.sleep(0.2)
    assert ff.evaluate("document.querySelectorAll('#rows .row').length", await_promise=False) == len(STEMS)
    ff.evaluate("""(() => {
        document.querySelector('[data-stem="vocals"] button.solo').click();
        const menu = document.querySelector('#mix-format');
        menu.value = 'float32';
        menu.dispatchEvent(new Event('change'));
        document.querySelector('#save-mix').click();
    })()""", await_promise=False, user_activation=True)
    assert json.loads(ff.evaluate("JSON.stringify(window.demixerPlayer.gains)", await_promise=False)) == {"drums": 0, "bass": 0, "other": 0, "vocals": 1}
    while not ff.evaluate("/Saved to|Could not|failed/i.test(document.querySelector('#status').textContent)", await_promise=False):
        assert time.monotonic() < deadline + 200, ff.evaluate("document.querySelector('#status').textContent", await_promise=False)
        time.sleep(0.5)
    status = ff.evaluate("document.querySelector('#status').textContent", await_promise=False)
    assert "Saved to" in status, status
    saved = [p for p in (ff.downloads / "Demixer").glob(f"{name} (*).wav") if not p.name.endswith(".part")]
    assert len(saved) == 1, saved
    audio, rate = sf.read(str(saved[0]), dtype="float64", always_2d=True)
    assert rate == 44100
    return audio


def test_cancel_in_firefox_stops_the_engine_and_the_next_job_runs(firefox_bundle, lithium, tmp_path):
    """Without shared memory a cancel cannot reach the engine between two steps: it stops
    the engine's worker instead. Nothing is saved, and the next job starts a fresh engine."""
    ff = FirefoxWithAddon(firefox_bundle, tmp_path / "firefox")
    try:
        ff.open_popup()
        doomed = write_song(tmp_path / "Cancel me.wav", mixture(load_clip(lithium, seconds=20)))
        start_job(ff, [doomed], stems="four")
        deadline = time.monotonic() + JOB_TIMEOUT
        while not any(r["name"] == doomed.name and "Separating segment" in r["text"] for r in job_rows(ff)):
            assert time.monotonic() < deadline, job_rows(ff)
            time.sleep(0.5)
        time.sleep(3)  # well inside the first segment (25 s or more on one thread)
        asked = time.monotonic()
        ff.evaluate(
            f"""[...document.querySelectorAll('#jobs li.job')].find((li) => li.dataset.name === {json.dumps(doomed.name)})
                  .querySelector('button.cancel').click()""",
            await_promise=False,
            user_activation=True,
        )
        row = wait_for_job(ff, doomed.name, {"done", "failed", "cancelled"}, JOB_TIMEOUT)
        took = time.monotonic() - asked
        print(f"cancelled in {took:.1f} s")
        assert row["status"] == "cancelled", row["text"]
        assert took < 15, f"the cancel waited for the segment to finish ({took:.1f} s)"

        clip = load_clip(lithium, seconds=4)
        song = write_song(tmp_path / "After the cancel.wav", mixture(clip))
        start_job(ff, [song], stems="two", fmt="wav24")
        row = wait_for_job(ff, song.name, {"done", "failed", "cancelled"}, JOB_TIMEOUT)
        assert row["status"] == "done", row["text"]
        folder = ff.downloads / "Demixer" / "After the cancel"
        check_stems(wait_for_downloads(folder, ["vocals.wav", "instrumental.wav"], 60), len(clip["vocals"]), "PCM_24")
        assert sorted(p.name for p in (ff.downloads / "Demixer").iterdir()) == ["After the cancel"]  # nothing of the cancelled job
    except BaseException:
        print((ff.root / "firefox.log").read_text(errors="replace")[-6000:])
        raise
    finally:
        ff.close()


def test_same_song_twice_in_firefox_gets_a_new_folder(firefox_bundle, lithium, tmp_path):
    """Never overwrite nor mix: Firefox names a clash "vocals(1).wav" (Chromium "vocals (1).wav");
    either way the second run must go to "Twice (2)"."""
    ff = FirefoxWithAddon(firefox_bundle, tmp_path / "firefox")
    try:
        ff.open_popup()
        song = write_song(tmp_path / "Twice.wav", mixture(load_clip(lithium, seconds=3)))
        for runs in (1, 2):
            start_job(ff, [song], stems="two", fmt="wav16")
            deadline = time.monotonic() + JOB_TIMEOUT
            while True:
                rows = [r for r in job_rows(ff) if r["name"] == song.name]
                if len(rows) == runs and all(r["status"] in ("done", "failed", "cancelled") for r in rows):
                    break
                assert time.monotonic() < deadline, [r["text"] for r in rows]
                time.sleep(0.5)
        assert [r["status"] for r in rows] == ["done", "done"], [r["text"] for r in rows]
        base = ff.downloads / "Demixer"
        wait_for_downloads(base / "Twice", ["vocals.wav", "instrumental.wav"], 60)
        wait_for_downloads(base / "Twice (2)", ["vocals.wav", "instrumental.wav"], 60)
        assert sorted(p.name for p in (base / "Twice").iterdir()) == ["instrumental.wav", "vocals.wav"]
        assert sorted(p.name for p in base.iterdir()) == ["Twice", "Twice (2)"]
    except BaseException:
        print((ff.root / "firefox.log").read_text(errors="replace")[-6000:])
        raise
    finally:
        ff.close()
