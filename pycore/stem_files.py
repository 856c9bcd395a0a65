"""Stem sinks that encode WAV: into any streams (WavStems), or into a folder of files (StemFiles).

Stems never clip silently. Separated stems can exceed full scale even when the
mix does not, and an integer WAV cannot hold that, so, like Demucs's --clip-mode:
  - "rescale" (default): the stems are first written as float32 samples after the
    final header while the peak is tracked; at finish() each stream is transcoded
    in place to the integer format, with ONE gain for all stems when any stem
    peaked above full scale. One gain keeps the stems summing to the (equally
    lowered) mix. Transcoding in place works because an integer frame is smaller
    than a float one, so the write position always trails the read position.
  - "clamp": samples beyond full scale are clamped to it, and counted.
float32 output holds any level, so nothing is altered there; peaks are reported.
After finish(), `report` holds a StemLevel per stem and `messages()` says in plain
words what happened (nothing when no stem reached full scale).

StemFiles never leaves a half-written stem under its final name: each stem is
written to `<stem>.wav.part` and only when every stem is complete are they
renamed to `<stem>.wav`. On failure or cancellation the parts are deleted.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np

from .model_contract import SAMPLE_RATE
from .wav import FORMATS, WavWriter, encode, header

CLIP_MODES = ("rescale", "clamp")
_CHANNELS = 2
_FLOAT_FRAME = _CHANNELS * 4  # bytes of one float32 stereo frame while rescaling
_TRANSCODE_BLOCK = 1 << 16  # frames per step of the in-place transcode, to bound memory


@dataclass
class StemLevel:
    peak: float  # largest absolute sample before any gain (1.0 = full scale)
    gain: float = 1.0  # the gain applied to every stem (rescale), 1.0 when none was needed
    clamped: int = 0  # samples clamped to full scale (clamp mode)

    @property
    def peak_dbfs(self) -> float:
        return 20 * math.log10(self.peak) if self.peak > 0 else -math.inf


def _full_scale(fmt: str) -> float:
    """The largest positive sample the format holds, as a float (int16: 32767/32768)."""
    _tag, bits = FORMATS[fmt]
    scale = float(1 << (bits - 1))
    return (scale - 1) / scale


class WavStems:
    """Encodes each stem as a WAV file into the stream `open_stream(stem)` returns.

    With clip="rescale" and an integer format the streams must be readable, writable,
    seekable and truncatable (open(path, "w+b") natively). A write-only stream
    cannot be rescaled afterwards, so it falls back to clamping, and says so.
    """

    def __init__(self, fmt: str, open_stream: Callable[[str], BinaryIO], clip: str = "rescale"):
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
        if clip not in CLIP_MODES:
            raise ValueError(f"clip mode must be one of {', '.join(CLIP_MODES)}, not {clip!r}")
        self.fmt, self.clip = fmt, clip
        self._open_stream = open_stream
        self.stems: tuple[str, ...] = ()
        self.clipped: dict[str, int] = {}  # samples clamped per stem (kept for existing callers)
        self.report: dict[str, StemLevel] = {}
        self.notes: list[str] = []
        self._streams: list[BinaryIO] = []
        self._writers: list[WavWriter] = []
        self._peaks: list[float] = []
        self._frames = 0
        self._written = 0
        self._rescaling = False

    def begin(self, stems: tuple[str, ...], frames: int) -> None:
        self.stems, self._frames = stems, frames
        self._peaks = [0.0] * len(stems)
        for stem in stems:
            self._streams.append(self._open_stream(stem))
        self._rescaling = self.fmt != "float32" and self.clip == "rescale"
        if self._rescaling and not all(_random_access(s) for s in self._streams):
            self._rescaling = False
            self.notes.append("these stems could not be rescaled (write-only output); clamping instead")
        for stream in self._streams:
            if self._rescaling:
                stream.write(header(self.fmt, _CHANNELS, SAMPLE_RATE, frames))  # validates the size too
            else:
                self._writers.append(WavWriter(stream, self.fmt, _CHANNELS, SAMPLE_RATE, frames))

    def write(self, block: np.ndarray) -> None:
        if self._written + block.shape[-1] > self._frames:
            raise ValueError("more frames written than the header announced")
        for i, stem_block in enumerate(block):
            if stem_block.size:
                self._peaks[i] = max(self._peaks[i], float(np.abs(stem_block).max()))
            if self._rescaling:
                self._streams[i].write(np.ascontiguousarray(stem_block.T, dtype="<f4").tobytes())
            else:
                self._writers[i].write(stem_block)
        self._written += block.shape[-1]

    def finish(self) -> None:
        if self._written != self._frames:
            raise RuntimeError("internal error: a stem is shorter than the input")
        gain = 1.0
        if self._rescaling:
            limit = _full_scale(self.fmt)
            peak = max(self._peaks, default=0.0)
            gain = limit / peak if peak > limit else 1.0
            for stream in self._streams:
                self._transcode(stream, gain)
        self._close()
        self.clipped = {s: w.clipped for s, w in zip(self.stems, self._writers) if w.clipped}
        self.report = {
            s: StemLevel(p, gain, self.clipped.get(s, 0)) for s, p in zip(self.stems, self._peaks)
        }

    def _transcode(self, stream: BinaryIO, gain: float) -> None:
        """float32 frames after the header -> the integer format, in place, times `gain`."""
        start = len(header(self.fmt, _CHANNELS, SAMPLE_RATE, self._frames))
        out_frame = FORMATS[self.fmt][1] // 8 * _CHANNELS
        for first in range(0, self._frames, _TRANSCODE_BLOCK):
            n = min(_TRANSCODE_BLOCK, self._frames - first)
            stream.seek(start + first * _FLOAT_FRAME)
            raw = stream.read(n * _FLOAT_FRAME)
            if len(raw) != n * _FLOAT_FRAME:
                raise OSError("a stem's temporary data could not be read back")
            x = np.frombuffer(raw, dtype="<f4").reshape(n, _CHANNELS).T
            data, _clamped = encode(x * np.float32(gain) if gain != 1.0 else x, self.fmt)
            stream.seek(start + first * out_frame)
            stream.write(data)
        stream.truncate(start + self._frames * out_frame)

    def messages(self) -> list[str]:
        """What happened to the levels, in plain words; empty when nothing reached full scale."""
        out = list(self.notes)
        over = {s: level for s, level in self.report.items() if level.peak > _full_scale_or_one(self.fmt)}
        if not over:
            return out
        peaks = ", ".join(f"{s}: peaks reached {level.peak_dbfs:+.1f} dBFS" for s, level in over.items())
        gain = next(iter(self.report.values())).gain
        if gain != 1.0:
            out.append(f"{peaks}; all stems lowered by {-20 * math.log10(gain):.1f} dB so none clips")
        elif self.fmt == "float32":
            out.append(f"{peaks}; kept as they are in the float output (no clipping)")
        for s, level in self.report.items():
            if level.clamped:
                out.append(f"{s}: {level.clamped:,} samples clamped to full scale")
        return out

    def abort(self) -> None:
        self._close()

    def _close(self) -> None:
        for stream in self._streams:
            stream.close()


def _full_scale_or_one(fmt: str) -> float:
    return 1.0 if fmt == "float32" else _full_scale(fmt)


def _random_access(stream) -> bool:
    try:
        return bool(stream.seekable() and stream.readable() and hasattr(stream, "truncate"))
    except (AttributeError, OSError, ValueError):
        return False


class StemFiles(WavStems):
    """`<folder>/<stem>.wav` for each stem, appearing only once all are complete."""

    def __init__(self, folder: Path, fmt: str = "wav16", clip: str = "rescale"):
        super().__init__(fmt, self._open_part, clip)
        self.folder = Path(folder)
        self.paths: list[Path] = []

    def final_paths(self, stems: tuple[str, ...]) -> list[Path]:
        return [self.folder / f"{stem}.wav" for stem in stems]

    def _part(self, stem: str) -> Path:
        return self.folder / f"{stem}.wav.part"

    def _open_part(self, stem: str) -> BinaryIO:
        self.folder.mkdir(parents=True, exist_ok=True)
        return open(self._part(stem), "w+b")

    def finish(self) -> None:
        super().finish()
        for stem, path in zip(self.stems, self.final_paths(self.stems)):
            os.replace(self._part(stem), path)
            self.paths.append(path)

    def abort(self) -> None:
        super().abort()
        for stem in self.stems:
            self._part(stem).unlink(missing_ok=True)
