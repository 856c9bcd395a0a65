"""Notes as a Standard MIDI File: format 0, one track, 480 ticks per beat.

Written by hand (stdlib only) because the core also runs in Pyodide, where `mido` cannot be
imported (it reads `packaging`'s installed metadata at import time).
"""

from __future__ import annotations

import struct
from typing import BinaryIO

TICKS_PER_BEAT = 480
DEFAULT_TEMPO = 120.0  # BPM, MIDI's own default
DRUM_CHANNEL = 9  # General MIDI's percussion channel (10, counted from 1)
_BEND_PER_THIRD = 4096 / 3  # a bend of 8192 is 2 semitones, MIDI's default bend range

# Events that share a tick are written in this order: a note ending must come before one
# starting on the same key, or the new one would be cut off at once instead of retriggered;
# a bend's reset before the next note's bends, and those before its note-on, so it starts in tune.
_OFF, _RESET, _BEND, _ON = 0, 1, 2, 3


def midi_bytes(notes, *, tempo: float | None = None, program: int = 0, drums: bool = False, name: str = "") -> bytes:
    """The file's bytes for `notes` (pycore.transcribe.Note; seconds, MIDI numbers). `tempo` (BPM)
    sets only the grid and the file's tempo: the notes keep their real times."""
    bpm = DEFAULT_TEMPO if tempo is None else float(tempo)
    if not 4 <= bpm <= 60_000:  # the file holds 1 to 2**24 - 1 microseconds per beat
        raise ValueError(f"the tempo must be 4 to 60,000 BPM, not {tempo}")
    if not 0 <= program <= 127:
        raise ValueError(f"the program must be 0 to 127, not {program}")
    channel = DRUM_CHANNEL if drums else 0
    # The file holds whole microseconds per beat: ticks are counted at that tempo, so a reader
    # finds each note at its real time however long the song (93.5 BPM would drift otherwise).
    beat_us = round(60_000_000 / bpm)

    def tick(seconds: float) -> int:
        return max(0, round(seconds * 1_000_000 / beat_us * TICKS_PER_BEAT))

    placed = []  # (start tick, end tick, pitch, velocity, bends)
    for note in notes:
        pitch = int(note.pitch)
        if not 0 <= pitch <= 127:
            raise ValueError(f"a note's pitch must be 0 to 127, not {pitch}")
        velocity = min(127, max(1, int(note.velocity)))  # velocity 0 would mean note-off
        start = tick(note.start)
        placed.append((start, max(tick(note.end), start + 1), pitch, velocity, note.bends))  # a note of no length gets a tick
    # A key struck again while it still sounds: the earlier note ends there, as a reader pairs
    # note-offs with note-ons (or the first note-off would silence the second note).
    placed.sort(key=lambda p: (p[2], p[0]))
    for i in range(len(placed) - 1):
        (start, end, pitch, velocity, bends), nxt = placed[i], placed[i + 1]
        if nxt[2] == pitch and start < nxt[0] < end:
            placed[i] = (start, nxt[0], pitch, velocity, bends)

    timed: list[tuple[int, int, int, bytes]] = []  # (tick, order, sequence, event bytes)
    for start, end, pitch, velocity, bends in placed:
        timed.append((start, _ON, len(timed), bytes([0x90 | channel, pitch, velocity])))
        timed.append((end, _OFF, len(timed), bytes([0x80 | channel, pitch, 0])))
        if bends:
            step = (end - start) / len(bends)
            for i, bend in enumerate(bends):
                timed.append((start + int(i * step), _BEND, len(timed), _pitch_wheel(channel, bend * _BEND_PER_THIRD)))
            # The wheel bends the whole channel: leave it centred for the next note.
            timed.append((end, _RESET, len(timed), _pitch_wheel(channel, 0)))
    timed.sort()

    track = bytearray()
    track += _meta(0x03, name.encode("utf-8"))
    track += _meta(0x51, beat_us.to_bytes(3, "big"))
    if not drums:  # GM drums need no program: channel 10 is the kit
        track += b"\x00" + bytes([0xC0 | channel, program])
    now = 0
    for at, _, _, event in timed:
        track += _varlen(at - now) + event
        now = at
    track += _meta(0x2F, b"")
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_BEAT)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


def write_midi(path_or_binary_file: str | BinaryIO, notes, **options) -> None:
    """midi_bytes(notes, **options) into a path or an open binary file."""
    data = midi_bytes(notes, **options)
    if hasattr(path_or_binary_file, "write"):
        path_or_binary_file.write(data)
    else:
        with open(path_or_binary_file, "wb") as f:
            f.write(data)


def _pitch_wheel(channel: int, value: float) -> bytes:
    v = min(8191, max(-8192, round(value))) + 8192  # sent as 14 bits, centre 8192
    return bytes([0xE0 | channel, v & 0x7F, v >> 7])


def _meta(kind: int, data: bytes) -> bytes:
    return b"\x00\xff" + bytes([kind]) + _varlen(len(data)) + data


def _varlen(n: int) -> bytes:
    """MIDI's variable-length quantity: 7 bits a byte, most significant first."""
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))
