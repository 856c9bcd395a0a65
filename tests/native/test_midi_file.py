"""pycore.midi_file against an independent reader (mido): notes, channels, bends and tempo read
back as written, to within one tick."""

from __future__ import annotations

import io
import subprocess
import sys

import mido
import numpy as np
import pytest
from support.midi import read_midi
from support.tracks import REPO

from pycore.midi_file import TICKS_PER_BEAT, midi_bytes, write_midi
from pycore.transcribe import Note


def tick_seconds(bpm: float = 120) -> float:
    return 60 / bpm / TICKS_PER_BEAT


def some_notes(seed: int = 0, count: int = 60) -> list[Note]:
    """Overlapping notes at times off the tick grid, all velocities and most of the keyboard
    (never two at once on one key: MIDI cannot tell those apart)."""
    rng = np.random.default_rng(seed)
    free = {}  # key -> when it is free again
    notes = []
    for s in np.sort(rng.uniform(0, 30, count)):
        pitch = int(rng.choice([k for k in range(21, 109) if free.get(k, 0) < s]))
        notes.append(Note(float(s), float(s + rng.uniform(0.05, 2)), pitch, int(rng.integers(1, 128))))
        free[pitch] = notes[-1].end
    return notes


def assert_same_notes(got, notes, bpm: float = 120, channel: int = 0):
    want = sorted((n.start, n.end, n.pitch, n.velocity) for n in notes)
    assert len(got) == len(want)
    half = tick_seconds(bpm) / 2 + 1e-9  # the nearest tick
    for g, w in zip(got, want):
        assert abs(g[0] - w[0]) <= half and abs(g[1] - w[1]) <= half, (g, w)
        assert g[2:] == (w[2], w[3], channel), (g, w)


def test_notes_read_back_as_written():
    notes = some_notes()
    back = read_midi(midi_bytes(notes, program=33, name="bass"))
    f = back.file
    assert f.ticks_per_beat == TICKS_PER_BEAT and back.tempo == 500_000  # 120 BPM when not told
    meta = [m for m in f.tracks[0] if m.is_meta]
    assert [m.type for m in meta] == ["track_name", "set_tempo", "end_of_track"]
    assert meta[0].name == "bass"
    programs = [m for _, m in back.messages if m.type == "program_change"]
    assert [(m.channel, m.program) for m in programs] == [(0, 33)]
    assert_same_notes(back.notes, notes)


def test_repeated_notes_retrigger():
    # Back to back on one key: each note-off must come before the next note-on at its tick.
    notes = [Note(0.5 * i, 0.5 * (i + 1), 40, 100) for i in range(4)]
    back = read_midi(midi_bytes(notes))
    assert_same_notes(back.notes, notes)
    kinds = [(round(t, 6), m.type) for t, m in back.messages if m.type.startswith("note")]
    assert kinds[1:3] == [(0.5, "note_off"), (0.5, "note_on")]


def test_a_note_of_no_length_lasts_one_tick():
    back = read_midi(midi_bytes([Note(1.0, 1.0, 60, 90), Note(2.0, 2.0001, 61, 90)]))
    for start, end, *_ in back.notes:
        assert end - start == pytest.approx(tick_seconds())


def test_a_key_struck_again_while_sounding_ends_the_earlier_note():
    back = read_midi(midi_bytes([Note(1.0, 3.0, 50, 70), Note(2.0, 2.5, 50, 90)]))
    assert [(round(s, 6), round(e, 6), v) for s, e, _, v, _ in back.notes] == [(1.0, 2.0, 70), (2.0, 2.5, 90)]


def test_drums_go_to_channel_10_without_a_program():
    notes = [Note(0.1 * i, 0.1 * i + 0.05, 36 + i % 3, 110) for i in range(20)]
    back = read_midi(midi_bytes(notes, drums=True, program=5, name="drums"))
    assert not [m for _, m in back.messages if m.type == "program_change"]
    assert {m.channel for _, m in back.messages} == {9}
    assert_same_notes(back.notes, notes, channel=9)


def test_bends_become_pitch_wheel_messages():
    # Thirds of a semitone: 3 is one semitone (4096); +-7 is past the +-2 semitone range, so clamped.
    bends = (0, 1, 3, -3, 7, -7, 6, 0)
    note = Note(1.0, 1.8, 62, 80, bends)
    back = read_midi(midi_bytes([note, Note(2.0, 2.5, 64, 80)]))
    wheel = [(t, m.pitch) for t, m in back.messages if m.type == "pitchwheel"]
    assert [p for _, p in wheel] == [0, 1365, 4096, -4096, 8191, -8192, 8191, 0] + [0]  # then the reset
    step = (note.end - note.start) / len(bends)
    for i, (t, _) in enumerate(wheel[:-1]):
        assert abs(t - (note.start + i * step)) <= tick_seconds(), (i, t)
    on = next(t for t, m in back.messages if m.type == "note_on" and m.note == 62)
    off = next(t for t, m in back.messages if m.type == "note_off" and m.note == 62)
    assert wheel[0][0] == on and wheel[-1][0] == off  # the wheel is set as the note starts, reset as it ends
    order = [m.type for _, m in back.messages]
    assert order.index("pitchwheel") < order.index("note_on")  # so the note starts in tune


def test_back_to_back_bent_notes_each_start_with_their_own_bend():
    # The first note's reset and the second's first bend share a tick: the reset must go first.
    back = read_midi(midi_bytes([Note(1.0, 1.5, 60, 80, (3, 3)), Note(1.5, 2.0, 62, 80, (-3, -3))]))
    wheel = None
    for _, m in back.messages:
        if m.type == "pitchwheel":
            wheel = m.pitch
        elif m.type == "note_on":
            assert wheel == {60: 4096, 62: -4096}[m.note], (m, wheel)
    assert [m.pitch for _, m in back.messages if m.type == "pitchwheel"] == [4096, 4096, 0, -4096, -4096, 0]


def test_the_tempo_sets_the_grid_not_the_times():
    notes = some_notes(seed=1)
    back = read_midi(midi_bytes(notes, tempo=93.5))
    assert back.tempo == round(60_000_000 / 93.5)
    assert_same_notes(back.notes, notes, bpm=93.5)


def test_no_notes_is_still_a_valid_file(tmp_path):
    back = read_midi(midi_bytes([]))
    assert back.notes == [] and [m.type for m in back.file.tracks[0]][-1] == "end_of_track"
    write_midi(tmp_path / "empty.mid", [])
    assert mido.MidiFile(tmp_path / "empty.mid").length == 0


def test_a_path_and_a_binary_file_get_the_same_bytes(tmp_path):
    notes = some_notes(seed=2, count=5)
    buffer = io.BytesIO()
    write_midi(buffer, notes, tempo=140, name="vocals")
    write_midi(tmp_path / "a.mid", notes, tempo=140, name="vocals")
    assert buffer.getvalue() == (tmp_path / "a.mid").read_bytes() == midi_bytes(notes, tempo=140, name="vocals")


def test_the_writer_needs_nothing_beyond_the_standard_library():
    # The core runs in Pyodide, where mido cannot be imported.
    code = "import sys, pycore.midi_file; print(sorted(m for m in ('mido', 'packaging') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_what_midi_cannot_hold_is_refused():
    for kw in ({"tempo": 0}, {"tempo": 1e6}, {"program": 128}):
        with pytest.raises(ValueError):
            midi_bytes([], **kw)
    with pytest.raises(ValueError, match="pitch"):
        midi_bytes([Note(0, 1, 128, 100)])
