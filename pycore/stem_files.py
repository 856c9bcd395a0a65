"""Stem sinks: WAV into any streams (WavStems), any format through encoders (EncodedStems),
or into a folder of files (StemFiles, natively).

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

EncodedStems applies the same policy before an encoder (FLAC, MP3, Opus): rescaling keeps
float32 samples in a scratch stream per stem until the song's peak is known, then encodes
from it; integer formats are quantised exactly as WAV is (formats.quantize).

PlayCopy writes, beside any sink, a 16-bit WAV of each stem: what the extension's player plays
when the stems themselves are FLAC, MP3 or Opus.

StemFiles never leaves a half-written stem under its final name: each stem is
written to `<stem>.<ext>.part` and only when every stem is complete are they
renamed to `<stem>.<ext>`. On failure or cancellation the parts are deleted.
"""

from __future__ import annotations

import inspect
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Protocol

import numpy as np

from . import formats
from .model_contract import SAMPLE_RATE
from .resample import StreamResampler
from .separate import run_sync
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


class _LevelTrackingSink:
    """What both sinks do with each block: track every stem's peak, and keep the float samples
    aside while rescaling (the gain is known only at the end) or pass them on at once (_pass)."""

    _rescaling: bool
    _frames: int
    _written: int
    _peaks: list[float]

    def _set_aside(self, i: int) -> BinaryIO:
        raise NotImplementedError

    def _pass(self, i: int, stem_block: np.ndarray):
        raise NotImplementedError

    def write(self, block: np.ndarray):
        """None, or an awaitable when an encoder asked for a pause: a caller with nothing else to do
        (mix.mix_stems) waits on it; separate() need not (the encoders drain while the model runs)."""
        if self._written + block.shape[-1] > self._frames:
            raise ValueError("more frames written than the header announced")
        waits = []
        for i, stem_block in enumerate(block):
            if stem_block.size:
                self._peaks[i] = max(self._peaks[i], float(np.abs(stem_block).max()))
            if self._rescaling:
                self._set_aside(i).write(np.ascontiguousarray(stem_block.T, dtype="<f4").tobytes())
            elif (pending := self._pass(i, stem_block)) is not None:
                waits.append(pending)
        self._written += block.shape[-1]
        return _Waits(waits) if waits else None


class WavStems(_LevelTrackingSink):
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

    def _set_aside(self, i: int) -> BinaryIO:
        return self._streams[i]  # after the final header: transcoded in place at the end

    def _pass(self, i: int, stem_block: np.ndarray) -> None:
        self._writers[i].write(stem_block)

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
        return _level_messages(self.notes, self.report, _full_scale_or_one(self.fmt), lossless_float=self.fmt == "float32")

    def abort(self) -> None:
        self._close()

    def _close(self) -> None:
        for stream in self._streams:
            stream.close()


def _level_messages(notes: list[str], report: dict[str, StemLevel], full_scale: float, lossless_float: bool) -> list[str]:
    out = list(notes)
    over = {s: level for s, level in report.items() if level.peak > full_scale}
    if not over:
        return out
    peaks = ", ".join(f"{s}: peaks reached {level.peak_dbfs:+.1f} dBFS" for s, level in over.items())
    gain = next(iter(report.values())).gain
    if gain != 1.0:
        what = "all stems lowered" if len(report) > 1 else "lowered"  # the mix is one file
        out.append(f"{peaks}; {what} by {-20 * math.log10(gain):.1f} dB so none clips")
    elif lossless_float:
        out.append(f"{peaks}; kept as they are in the float output (no clipping)")
    for s, level in report.items():
        if level.clamped:
            out.append(f"{s}: {level.clamped:,} samples clamped to full scale")
    return out


def _full_scale_or_one(fmt: str) -> float:
    return 1.0 if fmt == "float32" else _full_scale(fmt)


def _random_access(stream) -> bool:
    try:
        return bool(stream.seekable() and stream.readable() and hasattr(stream, "truncate"))
    except (AttributeError, OSError, ValueError):
        return False


class Encoder(Protocol):
    """One stem's encoder. `write` takes int32 samples [2, n] for integer formats, float32
    within full scale otherwise; `write` and `finish` may return awaitables (the browser's)."""

    def write(self, block: np.ndarray): ...

    def finish(self): ...

    def abort(self) -> None: ...


_SCRATCH_BLOCK = 1 << 17  # frames read back per step when rescaling


class EncodedStems(_LevelTrackingSink):
    """Each stem through the encoder `open_encoder(stem, frames)` returns (frames at the format's rate).

    With clip="rescale", `open_scratch(stem)` gives a readable, writable, seekable stream for
    the stem's float samples until its peak is known; without one it clamps, and says so.
    finish() is a coroutine: await it (separate() does), or drive it with run_sync natively.
    """

    def __init__(self, fmt: str, open_encoder: Callable[[str, int], Encoder], clip: str = "rescale",
                 open_scratch: Callable[[str], BinaryIO] | None = None):
        self.format = formats.get(fmt)
        if self.format.wav:
            raise ValueError(f"{fmt} is a WAV format: use WavStems")
        if clip not in CLIP_MODES:
            raise ValueError(f"clip mode must be one of {', '.join(CLIP_MODES)}, not {clip!r}")
        self.fmt, self.clip = fmt, clip
        self._open_encoder, self._open_scratch = open_encoder, open_scratch
        self.stems: tuple[str, ...] = ()
        self.report: dict[str, StemLevel] = {}
        self.notes: list[str] = []
        self._encoders: list[Encoder] = []
        self._scratch: list[BinaryIO] = []
        self._resamplers: list[StreamResampler] = []
        self._peaks: list[float] = []
        self._clamped: list[int] = []
        self._frames = self._written = 0
        self._rescaling = False

    def begin(self, stems: tuple[str, ...], frames: int) -> None:
        self.stems, self._frames = stems, frames
        self._peaks, self._clamped = [0.0] * len(stems), [0] * len(stems)
        self._rescaling = self.clip == "rescale"
        if self._rescaling and self._open_scratch is None:
            self._rescaling = False
            self.notes.append("these stems could not be rescaled (no room for their samples); clamping instead")
        rate = self.format.rate
        out_frames = frames
        if rate != SAMPLE_RATE:
            self._resamplers = [StreamResampler(SAMPLE_RATE, rate, frames) for _ in stems]
            out_frames = self._resamplers[0].frames_out
        for stem in stems:
            if self._rescaling:
                self._scratch.append(self._open_scratch(stem))
            self._encoders.append(self._open_encoder(stem, out_frames))

    def _encode(self, i: int, block: np.ndarray):
        """Clamp (or quantise) one stem's block and hand it to its encoder."""
        if self.format.integer:
            out, clamped = formats.quantize(block, self.format.bits)
        else:
            over = np.abs(block) > 1.0
            clamped = int(np.count_nonzero(over))
            out = np.clip(block, -1.0, 1.0).astype(np.float32) if clamped else block.astype(np.float32, copy=False)
            if self._resamplers:
                out = self._resamplers[i].push(out)
        self._clamped[i] += clamped
        return self._encoders[i].write(out)

    def _set_aside(self, i: int) -> BinaryIO:
        return self._scratch[i]

    def _pass(self, i: int, stem_block: np.ndarray):
        return _no_coroutine(self._encode(i, stem_block))

    async def finish(self) -> None:
        if self._written != self._frames:
            raise RuntimeError("internal error: a stem is shorter than the input")
        gain = 1.0
        if self._rescaling:
            limit = self.format.full_scale
            peak = max(self._peaks, default=0.0)
            gain = limit / peak if peak > limit else 1.0
            for i, scratch in enumerate(self._scratch):
                scratch.seek(0)
                for first in range(0, self._frames, _SCRATCH_BLOCK):
                    n = min(_SCRATCH_BLOCK, self._frames - first)
                    raw = scratch.read(n * _FLOAT_FRAME)
                    if len(raw) != n * _FLOAT_FRAME:
                        raise OSError("a stem's temporary data could not be read back")
                    x = np.frombuffer(raw, dtype="<f4").reshape(n, _CHANNELS).T
                    pending = self._encode(i, x * np.float32(gain) if gain != 1.0 else x)
                    if inspect.isawaitable(pending):
                        await pending  # the browser's encoders: let them catch up
        for encoder in self._encoders:
            done = encoder.finish()
            if inspect.isawaitable(done):
                await done
        self._close_scratch()
        self.report = {s: StemLevel(p, gain, c) for s, p, c in zip(self.stems, self._peaks, self._clamped)}

    def messages(self) -> list[str]:
        return _level_messages(self.notes, self.report, self.format.full_scale, lossless_float=False)

    def abort(self) -> None:
        for encoder in self._encoders:
            try:
                encoder.abort()
            except Exception:  # noqa: BLE001 - aborting must go on for the others
                pass
        self._close_scratch()

    def _close_scratch(self) -> None:
        for stream in self._scratch:
            stream.close()


def _no_coroutine(pending):
    """An encoder's write, handed back by write(): separate() drops it unawaited (the browser's
    encoders drain while the model runs), which a JS promise survives but a coroutine would not."""
    if inspect.iscoroutine(pending):
        pending.close()
        raise RuntimeError("internal error: an encoder's write must not be a coroutine while separating")
    return pending


class _Waits:
    """Several encoders' pauses as one awaitable; not a coroutine, so dropping it is harmless."""

    def __init__(self, waits: list):
        self._waits = waits

    def __await__(self):
        for wait in self._waits:
            yield from wait.__await__()


class PlayCopy:
    """A sink in front of `sink` that also writes every stem as a 16-bit WAV into `open_play(stem)`:
    what the player plays when the job's format is not WAV (library.js: play/<stem>.wav).
    messages() and report are `sink`'s alone: the copy is not what the user asked for."""

    def __init__(self, sink, open_play: Callable[[str], BinaryIO], clip: str = "rescale"):
        self.sink = sink
        self.play = WavStems("wav16", open_play, clip=clip)

    def begin(self, stems: tuple[str, ...], frames: int) -> None:
        self.sink.begin(stems, frames)
        self.play.begin(stems, frames)

    def write(self, block: np.ndarray):
        self.play.write(block)
        return self.sink.write(block)

    def finish(self):
        self.play.finish()  # first, so that when it fails abort() still has both to undo
        return self.sink.finish()  # an awaitable when the sink's is (EncodedStems)

    def abort(self) -> None:
        try:
            self.sink.abort()
        finally:
            self.play.abort()

    def messages(self) -> list[str]:
        return self.sink.messages() if hasattr(self.sink, "messages") else []

    @property
    def report(self) -> dict[str, StemLevel]:
        return getattr(self.sink, "report", {})


class StemFiles:
    """`<folder>/<stem>.<ext>` for each stem, appearing only once all are complete."""

    def __init__(self, folder: Path, fmt: str = "wav16", clip: str = "rescale", song: str | None = None):
        self.folder = Path(folder)
        self.format = formats.get(fmt)
        self.song = song if song is not None else self.folder.name
        self.paths: list[Path] = []
        self.stems: tuple[str, ...] = ()
        if self.format.wav:
            self._sink = WavStems(fmt, self._open_part, clip)
        else:
            from .native_encode import open_encoder  # libsndfile: native only

            self._sink = EncodedStems(
                fmt, lambda stem, frames: open_encoder(self._part(stem), self.format, frames, formats.tags(self.song, stem)),
                clip, open_scratch=self._open_scratch,
            )  # fmt: skip

    def final_paths(self, stems: tuple[str, ...]) -> list[Path]:
        return [self.folder / f"{stem}.{self.format.extension}" for stem in stems]

    def _part(self, stem: str) -> Path:
        return self.folder / f"{stem}.{self.format.extension}.part"

    def _scratch_path(self, stem: str) -> Path:
        return self.folder / f"{stem}.f32.part"

    def _open_part(self, stem: str) -> BinaryIO:
        self.folder.mkdir(parents=True, exist_ok=True)
        return open(self._part(stem), "w+b")

    def _open_scratch(self, stem: str) -> BinaryIO:
        self.folder.mkdir(parents=True, exist_ok=True)
        return open(self._scratch_path(stem), "w+b")

    def begin(self, stems: tuple[str, ...], frames: int) -> None:
        self.stems = stems
        self.folder.mkdir(parents=True, exist_ok=True)
        self._sink.begin(stems, frames)

    def write(self, block: np.ndarray) -> None:
        self._sink.write(block)

    def finish(self) -> None:
        done = self._sink.finish()
        if inspect.iscoroutine(done):  # EncodedStems: natively no encoder suspends
            run_sync(done)
        for stem, path in zip(self.stems, self.final_paths(self.stems)):
            os.replace(self._part(stem), path)
            self._scratch_path(stem).unlink(missing_ok=True)
            self.paths.append(path)

    def abort(self) -> None:
        self._sink.abort()
        for stem in self.stems:
            self._part(stem).unlink(missing_ok=True)
            self._scratch_path(stem).unlink(missing_ok=True)

    def messages(self) -> list[str]:
        return self._sink.messages()

    @property
    def report(self) -> dict[str, StemLevel]:
        return self._sink.report

    @property
    def clipped(self) -> dict[str, int]:
        return {s: level.clamped for s, level in self._sink.report.items() if level.clamped}
