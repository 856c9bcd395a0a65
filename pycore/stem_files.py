"""Writes stems as WAV files into a folder, never leaving a half-written stem under its final name.

Each stem is written to `<stem>.wav.part`; only when every stem is complete are
they renamed to `<stem>.wav`. On failure or cancellation the parts are deleted.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .model_contract import SAMPLE_RATE
from .wav import WavWriter


class StemFiles:
    def __init__(self, folder: Path, fmt: str = "wav16"):
        self.folder = Path(folder)
        self.fmt = fmt
        self.paths: list[Path] = []
        self.clipped: dict[str, int] = {}
        self._files: list = []
        self._writers: list[WavWriter] = []
        self._stems: tuple[str, ...] = ()

    def final_paths(self, stems: tuple[str, ...]) -> list[Path]:
        return [self.folder / f"{stem}.wav" for stem in stems]

    def begin(self, stems: tuple[str, ...], frames: int) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._stems = stems
        for path in self.final_paths(stems):
            f = open(path.with_name(path.name + ".part"), "wb")
            self._files.append(f)
            self._writers.append(WavWriter(f, self.fmt, 2, SAMPLE_RATE, frames))

    def write(self, block: np.ndarray) -> None:
        for writer, stem_block in zip(self._writers, block):
            writer.write(stem_block)

    def finish(self) -> None:
        if not all(w.complete for w in self._writers):
            raise RuntimeError("internal error: a stem is shorter than the input")
        for f in self._files:
            f.close()
        for stem, writer, path in zip(self._stems, self._writers, self.final_paths(self._stems)):
            os.replace(path.with_name(path.name + ".part"), path)
            self.paths.append(path)
            if writer.clipped:
                self.clipped[stem] = writer.clipped

    def abort(self) -> None:
        for f in self._files:
            f.close()
        for path in self.final_paths(self._stems):
            path.with_name(path.name + ".part").unlink(missing_ok=True)
