"""The stems' waveform overview, computed while separating, so the player draws a song at once
without reading its stems: per stem, Int8 pairs (min, max) over both channels of each PEAKS_BIN
frames (the last bin may be shorter), full scale 1.0 being 127. This is the library's
peaks/<stem>.peaks (extension/lib/library.js, whose PEAKS_BIN mirrors the one here).
"""

from __future__ import annotations

import inspect
from typing import BinaryIO, Callable

import numpy as np

PEAKS_BIN = 1024  # frames per (min, max) pair; extension/lib/library.js mirrors it
_FULL = 127  # what full scale is in the file


class _Bins:
    """Running min and max over both channels per PEAKS_BIN frames of several stems, in float32
    (an hour is 155k bins a stem: a few MB); blocks may start and end anywhere in a bin."""

    def __init__(self, stems: int, frames: int):
        bins = -(-frames // PEAKS_BIN)
        self.lo = np.full((stems, bins), np.inf, dtype=np.float32)
        self.hi = np.full((stems, bins), -np.inf, dtype=np.float32)
        self.pos = 0

    def add(self, block: np.ndarray) -> None:
        """float [stems, 2, n], the next n frames."""
        n = block.shape[-1]
        if n == 0:
            return
        starts = np.arange(-(self.pos % PEAKS_BIN), n, PEAKS_BIN)
        starts[0] = 0  # the rest of a bin the previous block began
        first = self.pos // PEAKS_BIN
        at = slice(first, first + len(starts))
        np.minimum(self.lo[:, at], np.minimum.reduceat(block.min(axis=1), starts, axis=1), out=self.lo[:, at])
        np.maximum(self.hi[:, at], np.maximum.reduceat(block.max(axis=1), starts, axis=1), out=self.hi[:, at])
        self.pos += n

    def pairs(self, i: int, gain: float = 1.0) -> np.ndarray:
        """Stem i's bins as the file's int8 [bins, 2] (min, max), times `gain`."""
        x = np.stack([self.lo[i], self.hi[i]], axis=-1).astype(np.float64) * (gain * _FULL)
        return np.clip(np.round(np.nan_to_num(x, nan=0.0)), -_FULL, _FULL).astype(np.int8)


def peaks_of(samples: np.ndarray) -> np.ndarray:
    """float [2, n] -> its overview, int8 [bins, 2] of (min, max)."""
    bins = _Bins(1, samples.shape[-1])
    bins.add(samples[None])
    return bins.pairs(0)


def read_peaks(data: bytes) -> np.ndarray:
    """A peaks file's bytes -> int8 [bins, 2] of (min, max)."""
    if len(data) % 2:
        raise ValueError("a peaks file holds (min, max) pairs, but this one has an odd number of bytes")
    return np.frombuffer(data, dtype=np.int8).reshape(-1, 2)


class PeaksTap:
    """A stem sink in front of `sink` that keeps each stem's overview and, once `sink` has finished,
    writes it into the binary stream `open_peaks(stem)` (flushed, left open) at the level the stem
    was written: times the gain `sink` applied (its report's; 1.0 when it has none)."""

    def __init__(self, sink, open_peaks: Callable[[str], BinaryIO]):
        self.sink = sink
        self._open_peaks = open_peaks
        self.stems: tuple[str, ...] = ()
        self._bins = _Bins(0, 0)

    def begin(self, stems: tuple[str, ...], frames: int) -> None:
        self.sink.begin(stems, frames)
        self.stems = stems
        self._bins = _Bins(len(stems), frames)

    def write(self, block: np.ndarray):
        pending = self.sink.write(block)  # first: it refuses more frames than announced
        self._bins.add(block)
        return pending

    def finish(self):
        done = self.sink.finish()
        if inspect.isawaitable(done):  # EncodedStems: the gain is known once it is done
            return self._then_write(done)
        self._write()
        return None

    async def _then_write(self, done) -> None:
        await done
        self._write()

    def _write(self) -> None:
        report = getattr(self.sink, "report", None) or {}
        for i, stem in enumerate(self.stems):
            level = report.get(stem)
            f = self._open_peaks(stem)
            f.write(self._bins.pairs(i, level.gain if level is not None else 1.0).tobytes())
            f.flush()

    def abort(self) -> None:
        self.sink.abort()

    def messages(self) -> list[str]:
        return self.sink.messages() if hasattr(self.sink, "messages") else []

    @property
    def report(self) -> dict:
        return getattr(self.sink, "report", {})
