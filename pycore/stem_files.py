"""Stem sinks that encode WAV: into any streams (WavStems), or into a folder of files (StemFiles).

StemFiles never leaves a half-written stem under its final name: each stem is
written to `<stem>.wav.part` and only when every stem is complete are they
renamed to `<stem>.wav`. On failure or cancellation the parts are deleted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np

from .model_contract import SAMPLE_RATE
from .wav import WavWriter


class WavStems:
    """Encodes each stem as a WAV file into the stream `open_stream(stem)` returns."""

    def __init__(self, fmt: str, open_stream: Callable[[str], BinaryIO]):
        self.fmt = fmt
        self._open_stream = open_stream
        self.stems: tuple[str, ...] = ()
        self.clipped: dict[str, int] = {}
        self._streams: list[BinaryIO] = []
        self._writers: list[WavWriter] = []

    def begin(self, stems: tuple[str, ...], frames: int) -> None:
        self.stems = stems
        for stem in stems:
            self._streams.append(self._open_stream(stem))
            self._writers.append(WavWriter(self._streams[-1], self.fmt, 2, SAMPLE_RATE, frames))

    def write(self, block: np.ndarray) -> None:
        for writer, stem_block in zip(self._writers, block):
            writer.write(stem_block)

    def finish(self) -> None:
        if not all(w.complete for w in self._writers):
            raise RuntimeError("internal error: a stem is shorter than the input")
        self._close()
        self.clipped = {s: w.clipped for s, w in zip(self.stems, self._writers) if w.clipped}

    def abort(self) -> None:
        self._close()

    def _close(self) -> None:
        for stream in self._streams:
            stream.close()


class StemFiles(WavStems):
    """`<folder>/<stem>.wav` for each stem, appearing only once all are complete."""

    def __init__(self, folder: Path, fmt: str = "wav16"):
        super().__init__(fmt, self._open_part)
        self.folder = Path(folder)
        self.paths: list[Path] = []

    def final_paths(self, stems: tuple[str, ...]) -> list[Path]:
        return [self.folder / f"{stem}.wav" for stem in stems]

    def _part(self, stem: str) -> Path:
        return self.folder / f"{stem}.wav.part"

    def _open_part(self, stem: str) -> BinaryIO:
        self.folder.mkdir(parents=True, exist_ok=True)
        return open(self._part(stem), "wb")

    def finish(self) -> None:
        super().finish()
        for stem, path in zip(self.stems, self.final_paths(self.stems)):
            os.replace(self._part(stem), path)
            self.paths.append(path)

    def abort(self) -> None:
        super().abort()
        for stem in self.stems:
            self._part(stem).unlink(missing_ok=True)
