"""Helpers shared by the core tests; plain Python so the tests also run in Pyodide without pytest."""

from __future__ import annotations

import contextlib
import io
import struct

import numpy as np

from pycore.model_contract import FRAMES, FREQ_BINS, SEGMENT


@contextlib.contextmanager
def raises(kind: type[BaseException], match: str = ""):
    try:
        yield
    except kind as e:
        assert match.lower() in str(e).lower(), f"message {str(e)!r} lacks {match!r}"
    else:
        raise AssertionError(f"{kind.__name__} not raised")


def music_like(frames: int, seed: int = 0, rate: int = 44_100) -> np.ndarray:
    """Stereo test signal with a band-limited spectrum (a chord plus low-passed noise)."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / rate
    tones = sum(np.sin(2 * np.pi * f * t + p) for f, p in [(110, 0.1), (220.5, 1.0), (330.7, 2.0), (1234.5, 0.3)])
    noise = np.convolve(rng.standard_normal(frames + 63), np.hanning(64) / 32, mode="valid")
    left = 0.1 * tones + 0.3 * noise
    right = 0.08 * np.roll(tones, 17) + 0.25 * noise
    return np.stack([left, right]).astype(np.float32)


def wav_bytes(payload: bytes, channels: int, rate: int, bits: int, tag: int = 1,
              extensible: bool = False, chunks_before: bytes = b"", declared: int | None = None) -> bytes:
    """A hand-built WAV file, so the reader is tested on layouts our writer never produces."""
    block = channels * bits // 8
    if extensible:
        guid = struct.pack("<H", tag) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, (rate * block) & 0xFFFFFFFF, block, bits, 22, bits, 0) + guid
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, (rate * block) & 0xFFFFFFFF, block, bits)
    size = len(payload) if declared is None else declared
    body = b"WAVE" + chunks_before + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", size) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


def as_file(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)


def fake_sources(window):
    """A stand-in model: content- and position-dependent, so blending errors cannot hide."""
    position = 1 + 0.3 * np.cos(2 * np.pi * np.arange(SEGMENT) / SEGMENT)
    return np.stack([window * position * (k + 1) / 10 + 0.05 * k * window**2 for k in range(4)])


class TimeBranchModel:
    def __init__(self):
        self.calls = 0

    def run(self, wave, spec):
        assert wave.shape == (1, 2, SEGMENT) and spec.shape == (1, 4, FREQ_BINS, FRAMES)
        assert wave.dtype == np.float32 and spec.dtype == np.float32
        self.calls += 1
        return np.zeros((1, 4, 4, FREQ_BINS, FRAMES), np.float32), fake_sources(wave[0])[None]


class Collect:
    def begin(self, stems, frames):
        self.stems, self.frames, self.blocks, self.state = stems, frames, [], "open"

    def write(self, block):
        self.blocks.append(block)

    def finish(self):
        self.state = "finished"

    def abort(self):
        self.state = "aborted"

    @property
    def audio(self):
        return np.concatenate(self.blocks, axis=-1)
