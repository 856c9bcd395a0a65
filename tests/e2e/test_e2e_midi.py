"""MIDI of the stems from the extension in Chromium, on real music with the real models: a job
with the popup's MIDI box ticked saves <stem>.mid beside the pitched stems, whose notes are the
command line's on the same clip (one model segment), at the same times and pitches."""

from __future__ import annotations

import subprocess
import sys

import mido
from support.audio import load_clip, mixture, write_song
from support.chromium import REPO, start_job, wait_for_files, wait_for_job

JOB_TIMEOUT = 600
STEMS = ("drums", "bass", "other", "vocals")
PITCHED = ("bass", "other", "vocals")


def notes_of(path) -> list[tuple[int, int, int, int]]:
    """(start tick, end tick, pitch, velocity) of every note in a MIDI file."""
    pending, out, tick = {}, [], 0
    for msg in mido.MidiFile(path).tracks[0]:
        tick += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            pending.setdefault(msg.note, []).append((tick, msg.velocity))
        elif msg.type in ("note_off", "note_on"):
            start, velocity = pending[msg.note].pop(0)
            out.append((start, tick, msg.note, velocity))
    assert not any(pending.values()), "a note is never ended"
    return sorted(out)


def test_a_job_with_midi_saves_the_notes_of_the_pitched_stems(browser, popup, lithium, tmp_path):
    clip = mixture(load_clip(lithium, seconds=6, start=16))
    path = write_song(tmp_path / "Lithium notes.wav", clip)
    popup.check("#midi")
    start_job(popup, [path], stems="four")
    row = wait_for_job(popup, path.name, {"done", "failed", "cancelled"}, JOB_TIMEOUT)
    assert row["status"] == "done", row["text"]
    job = next(j for j in popup.evaluate("() => chrome.storage.local.get('jobs')")["jobs"] if j["name"] == path.name)
    assert job["settings"]["midi"] == "on", job["settings"]
    folder = browser.downloads / "Demixer" / job["folder"]
    wanted = [f"{s}.wav" for s in STEMS] + [f"{s}.mid" for s in PITCHED]
    wait_for_files(folder, wanted, 30)
    assert sorted(p.name for p in folder.iterdir()) == sorted(wanted)  # no drums.mid, no scratch left
    transcribe = job["timings"]["transcribe"]
    print(f"\ntimings: separate {job['timings']['separate']} s, of which notes {transcribe}")
    assert 0 < transcribe["model"] <= transcribe["seconds"] < job["timings"]["separate"], transcribe

    subprocess.run([sys.executable, "-m", "pycore", "separate", str(path), "-o", str(tmp_path / "native"), "--midi"],
                   check=True, cwd=REPO)
    native = tmp_path / "native" / path.stem
    for stem in PITCHED:
        ours, theirs = notes_of(folder / f"{stem}.mid"), notes_of(native / f"{stem}.mid")
        print(f"{stem}: {len(ours)} notes in Chromium, {len(theirs)} from the command line")
        assert ours, f"no notes in {stem}.mid"
        # The same notes; velocities (a note's mean likelihood) follow the stems' last bits, and
        # the browser's stems differ from the command line's by float rounding (under 0.1 dB).
        assert [n[:3] for n in ours] == [n[:3] for n in theirs], (stem, sorted(set(ours) ^ set(theirs)))
        worst = max(abs(a[3] - b[3]) for a, b in zip(ours, theirs))
        print(f"{stem}: velocities differ by at most {worst} of 127")
        assert worst <= 6, (stem, worst)
    popup.uncheck("#midi")
