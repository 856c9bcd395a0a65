"""MIDI of the stems as they are separated: a StemSink that passes every block on to the real
sink and keeps, for each stem to transcribe, its mono 22,050 Hz audio in a scratch file; once
the stems are written, `transcribe` turns each scratch into notes, one stem at a time, so memory
stays bounded (pycore/transcribe.py) whatever the song's length.
"""

from __future__ import annotations

import inspect
from typing import BinaryIO, Callable

import numpy as np

from .model_contract import SAMPLE_RATE
from .transcribe import MIDI_STEMS_DEFAULT, MonoTap, Note, NoteOptions, NotesRunner, transcribe_stream

# Each stem's General MIDI program (0-based), so a player sounds it as something like it.
PROGRAMS = {"bass": 33, "vocals": 53, "other": 0, "instrumental": 0}  # finger bass, voice oohs, piano


def stem_midi(stem: str, notes: list[Note], tempo: float | None = None) -> bytes:
    """A stem's notes as a MIDI file: its General MIDI program, or the drum channel."""
    from .midi_file import midi_bytes

    return midi_bytes(notes, tempo=tempo, program=PROGRAMS.get(stem, 0), drums=stem == "drums", name=stem)


def midi_stems(layout: tuple[str, ...], asked: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The stems of `layout` to transcribe: those asked for, or the pitched ones by default
    (bass, vocals, other; the vocals alone with two stems)."""
    wanted = asked or MIDI_STEMS_DEFAULT
    unknown = [s for s in wanted if s not in layout]
    if asked and unknown:
        raise ValueError(f"no {unknown[0]!r} stem to transcribe; the stems are {', '.join(layout)}")
    return tuple(s for s in layout if s in wanted)


class NotesTap:
    """A StemSink in front of `sink`; `open_scratch(stem)` gives a binary file to keep audio in."""

    def __init__(self, sink, stems: tuple[str, ...] | None, open_scratch: Callable[[str], BinaryIO]):
        self.sink = sink
        self._asked = stems
        self._open_scratch = open_scratch
        self._taps: dict[str, tuple[int, MonoTap, BinaryIO]] = {}
        self.stems: tuple[str, ...] = ()

    def begin(self, stems: tuple[str, ...], frames: int) -> None:
        self.sink.begin(stems, frames)
        self.stems = midi_stems(stems, self._asked)
        for stem in self.stems:
            f = self._open_scratch(stem)
            self._taps[stem] = (stems.index(stem), MonoTap(frames, SAMPLE_RATE, f.write), f)

    def write(self, block: np.ndarray):
        for index, tap, _ in self._taps.values():
            tap.push(block[index])
        return self.sink.write(block)

    def finish(self):
        return self.sink.finish()

    def abort(self) -> None:
        self.sink.abort()

    def messages(self) -> list[str]:
        return self.sink.messages() if hasattr(self.sink, "messages") else []

    async def transcribe_one(self, stem: str, runner: NotesRunner, options: NoteOptions) -> list[Note]:
        f = self._taps[stem][2]
        f.seek(0)
        return await transcribe_stream(f.read, runner, options)

    async def transcribe(self, runner: NotesRunner, options: Callable[[str], NoteOptions],
                         on_stem: Callable[[str, list[Note]], object] | None = None) -> dict[str, list[Note]]:
        """Each tapped stem's notes, in turn; `on_stem(stem, notes)` (may be async) as each is done."""
        out = {}
        for stem in self._taps:
            out[stem] = await self.transcribe_one(stem, runner, options(stem))
            if on_stem is not None:
                done = on_stem(stem, out[stem])
                if inspect.isawaitable(done):
                    await done
        return out
