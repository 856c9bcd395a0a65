"""MIDI files read back with `mido` (a test-only dependency: the core writes them by hand)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import mido


@dataclass
class ReadBack:
    notes: list[tuple[float, float, int, int, int]]  # (start s, end s, pitch, velocity, channel)
    tempo: int  # microseconds per beat
    messages: list[tuple[float, mido.Message]] = field(repr=False)  # (seconds, message), channel messages only
    file: mido.MidiFile = field(repr=False)


def read_midi(source: bytes | Path | str) -> ReadBack:
    """Every note of a format-0 file, paired on/off first in first out, with absolute times."""
    f = mido.MidiFile(file=io.BytesIO(source)) if isinstance(source, bytes) else mido.MidiFile(str(source))
    assert f.type == 0 and len(f.tracks) == 1, (f.type, len(f.tracks))
    tempos = [m.tempo for m in f.tracks[0] if m.type == "set_tempo"]
    assert len(tempos) <= 1, "one tempo for the whole file"
    tempo = tempos[0] if tempos else 500_000
    ticks, sounding, notes, messages = 0, {}, [], []
    for m in f.tracks[0]:
        ticks += m.time
        now = mido.tick2second(ticks, f.ticks_per_beat, tempo)
        if m.is_meta:
            continue
        messages.append((now, m))
        if m.type == "note_on" and m.velocity > 0:
            sounding.setdefault((m.channel, m.note), []).append((now, m.velocity))
        elif m.type in ("note_on", "note_off"):
            start, velocity = sounding[(m.channel, m.note)].pop(0)
            notes.append((start, now, m.note, velocity, m.channel))
    assert not any(sounding.values()), f"notes never ended: {sounding}"
    return ReadBack(sorted(notes), tempo, messages, f)
