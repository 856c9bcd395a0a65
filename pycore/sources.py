"""Mix sources: random-access stereo 44.1 kHz audio, whatever the input was.

The separator reads overlapping windows (and makes a first pass for the mix's
statistics), so a source answers `read(start, count)` for any range inside
[0, frames) with float32 [2, count]. Sources compose: a WAV file, then the
channel policy, then resampling, each a thin layer.
"""

from __future__ import annotations

from typing import BinaryIO, Protocol

import numpy as np

from . import channels
from .model_contract import SAMPLE_RATE
from .resample import Resampler
from .wav import WavReader


class MixSource(Protocol):
    frames: int
    warnings: list[str]

    def read(self, start: int, count: int) -> np.ndarray: ...


class ArraySource:
    """Audio already in memory: float [channels, n] at 44.1 kHz (the browser's decoded PCM)."""

    def __init__(self, audio: np.ndarray):
        audio = np.atleast_2d(audio)
        note = channels.describe(audio.shape[0])
        self._audio = channels.to_stereo(audio)
        self.frames = self._audio.shape[1]
        self.warnings = [note] if note else []

    def read(self, start: int, count: int) -> np.ndarray:
        return self._audio[:, start : start + count]


class _StereoReader:
    """Any reader with `read`, `frames`, `channels` and `sample_rate`, made stereo."""

    def __init__(self, reader):
        self._reader = reader
        self.frames = reader.frames
        self.sample_rate = reader.sample_rate
        note = channels.describe(reader.channels)
        self.warnings = [note] if note else []

    def read(self, start: int, count: int) -> np.ndarray:
        return channels.to_stereo(self._reader.read(start, count))


class ResampledSource:
    """Presents a stereo source at another rate as 44.1 kHz, computing only what is read."""

    def __init__(self, inner, rate_in: int):
        self._inner = inner
        self._resampler = Resampler(rate_in, SAMPLE_RATE)
        self.frames = self._resampler.output_length(inner.frames)
        self.warnings = list(inner.warnings) + [f"resampled from {rate_in} Hz to {SAMPLE_RATE} Hz"]

    def read(self, start: int, count: int) -> np.ndarray:
        if count <= 0:
            return np.zeros((2, 0), dtype=np.float32)
        a, b = self._resampler.input_span(start, count)
        lo, hi = max(a, 0), min(b, self._inner.frames)
        x = np.zeros((2, b - a), dtype=np.float32)  # zeros stand in beyond the file's ends
        if hi > lo:
            x[:, lo - a : hi - a] = self._inner.read(lo, hi - lo)
        return self._resampler.process(x, a, start, count)


def wav_source(f: BinaryIO) -> MixSource:
    """A WAV file (any rate, any channel count) as a 44.1 kHz stereo source."""
    reader = WavReader(f)
    stereo = _StereoReader(reader)
    stereo.warnings = reader.info.warnings + stereo.warnings
    if reader.sample_rate == SAMPLE_RATE:
        return stereo
    return ResampledSource(stereo, reader.sample_rate)
