"""Demucs's `apply_model`, streamed: bounded memory whatever the song's length.

What Demucs does (demucs/apply.py, demucs/separate.py), and so what we do:
  1. standardise the mix with the mean and standard deviation of its mono sum;
  2. cut it into segments of the model's length, `stride = (1 - overlap) * segment`
     apart; a segment shorter than the model's length (the last ones) is centred
     in a model-sized window filled with the mix around it (zeros past the ends);
  3. run the model, invert its frequency branch and add its time branch;
  4. blend overlapping segments with triangular weights;
  5. with shifts, repeat 2-4 on the mix delayed by a random 0-0.5 s and average;
     with augmentations (ours, not Demucs's), also repeat them on the
     sign-inverted or channel-swapped mix, undo that on the outputs, and average;
  6. undo the standardisation.
Segments are processed in time order, so every sample before the next segment's
start is final and can be written out: memory holds about one segment per pass.
The model's inputs for the next segment are computed, and the outputs of the last
one inverted, while the model runs, when the runner runs it elsewhere (a worker).
"""

from __future__ import annotations

import inspect
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Protocol

import numpy as np

from .model_contract import FRAMES, FREQ_BINS, SAMPLE_RATE, SEGMENT, SOURCES
from .sources import MixSource
from .spectrogram import istft, stft

STEM_LAYOUTS = {"four": SOURCES, "two": ("vocals", "instrumental")}
MAX_SHIFT = SAMPLE_RATE // 2  # Demucs shifts by up to half a second
_STATS_BLOCK = 1 << 20


class Cancelled(Exception):
    """The user cancelled the job; nothing was kept."""


class Runner(Protocol):
    """The model. `run` may be a plain or an async function (the browser's is async).

    A runner may also say how many segments it can work on at once (`in_flight`, 1 when
    absent): the browser's has one session per core where it cannot use threads.
    """

    def run(self, wave: np.ndarray, spec: np.ndarray) -> tuple[np.ndarray, np.ndarray] | Awaitable: ...


class StemSink(Protocol):
    """Where the stems go, block by block, in time order."""

    def begin(self, stems: tuple[str, ...], frames: int) -> None: ...
    def write(self, block: np.ndarray) -> None: ...  # float32 [stems, 2, n]
    def finish(self) -> None: ...
    def abort(self) -> None: ...


@dataclass(frozen=True)
class Options:
    stems: str = "four"  # 'four' or 'two'
    overlap: float = 0.25
    shifts: int = 0
    seed: int = 0  # shifts are random in Demucs; a seed makes a run repeatable
    augment: tuple[str, ...] = ()  # extra passes on a transformed mix: 'negate', 'swap'

    def __post_init__(self):
        if self.stems not in STEM_LAYOUTS:
            raise ValueError(f"stems must be 'four' or 'two', not {self.stems!r}")
        if not 0 <= self.overlap < 1:
            raise ValueError(f"overlap must be at least 0 and below 1, not {self.overlap}")
        if self.shifts < 0:
            raise ValueError(f"shifts must be 0 or more, not {self.shifts}")
        unknown = set(self.augment) - set(AUGMENTATIONS)
        if unknown:
            raise ValueError(f"augmentations are {', '.join(AUGMENTATIONS)}, not {', '.join(sorted(unknown))}")

    @classmethod
    def preset(cls, name: str, **changes) -> "Options":
        """The named quality preset (see PRESETS), with `changes` (stems, seed...) applied."""
        if name not in PRESETS:
            raise ValueError(f"the presets are {', '.join(PRESETS)}, not {name!r}")
        return cls(**{**PRESETS[name], **changes})


# The model itself is the same in all three; they differ in how often each sample is
# seen by it. Time and SDR of each are measured by bench/quality.py and bench/speed.py.
PRESETS: dict[str, dict] = {
    "fast": {"overlap": 0.1},  # fewer model runs per segment length
    "balanced": {"overlap": 0.25},  # Demucs's defaults
    # 4 passes: two random shifts, each also on the sign-inverted mix, which helped more than
    # the channel swap (docs/benchmarks.md, "Quality").
    "best": {"overlap": 0.25, "shifts": 2, "augment": ("negate",)},
}


def _swap(x: np.ndarray) -> np.ndarray:
    return x[..., ::-1, :]  # [..., channels, time]: left <-> right


# Each is its own inverse: applied to the mix before the model and to its outputs after.
AUGMENTATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "negate": np.negative,  # the model is not exactly odd: -f(-x) is a second opinion
    "swap": _swap,
}


@dataclass
class Report:
    stems: tuple[str, ...]
    frames: int
    segments: int
    warnings: list[str] = field(default_factory=list)


def mix_statistics(source: MixSource) -> tuple[float, float]:
    """Mean and (unbiased) standard deviation of the mono mix, in one streaming pass."""
    n, mean, m2 = 0, 0.0, 0.0
    for start in range(0, source.frames, _STATS_BLOCK):
        ref = source.read(start, min(_STATS_BLOCK, source.frames - start)).astype(np.float64).mean(axis=0)
        if not np.isfinite(ref).all():  # one NaN would turn every stem into NaN
            at = (start + int(np.flatnonzero(~np.isfinite(ref))[0])) / SAMPLE_RATE
            raise ValueError(f"the audio holds invalid samples (not-a-number or infinite) at {at:.1f} s; "
                             "the file is damaged")
        k, k_mean = len(ref), float(ref.mean())
        k_m2 = float(((ref - k_mean) ** 2).sum())
        delta, total = k_mean - mean, n + k
        mean += delta * k / total
        m2 += k_m2 + delta**2 * n * k / total  # Chan et al.: merge block variances exactly
        n = total
    std = (m2 / (n - 1)) ** 0.5 if n > 1 else 0.0
    return mean, std


def _triangle() -> np.ndarray:
    half = SEGMENT // 2
    w = np.concatenate([np.arange(1, half + 1), np.arange(SEGMENT - half, 0, -1)]).astype(np.float32)
    return w / w.max()


def model_inputs(window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A standardised [2, SEGMENT] window -> the graph's two inputs."""
    z = stft(window)  # [2, bins, frames]
    spec = np.stack([z.real, z.imag], axis=1).reshape(1, 4, FREQ_BINS, FRAMES)  # L.re, L.im, R.re, R.im
    return window[None].astype(np.float32), spec.astype(np.float32, copy=False)


def sources_from_outputs(freq, time: np.ndarray) -> np.ndarray:
    """The graph's outputs -> waveforms float32 [4 sources, 2, SEGMENT].

    freq is an array, or an object whose source(k) gives source k's part of it (the
    browser's runner hands its 44 MB over a quarter at a time).
    """
    if hasattr(freq, "source"):
        part = freq.source
    else:
        part = np.asarray(freq, dtype=np.float32).reshape(len(SOURCES), -1).__getitem__
    sources = np.array(time, dtype=np.float32).reshape(len(SOURCES), 2, SEGMENT)
    # One source at a time: the inverse's temporaries are a quarter the size, and in
    # Pyodide the heap keeps its highest size for good.
    for k in range(len(SOURCES)):
        z = part(k).reshape(2, 2, FREQ_BINS, FRAMES)  # channel, (real, imaginary), bin, frame
        sources[k] += istft(z[:, 0] + 1j * z[:, 1], SEGMENT)
    return sources


class _Pass:
    """One sweep of overlapping segments over the mix, starting `start` (<= 0) samples in.

    Accumulates weighted model outputs in a buffer one segment long that slides
    forward as segments complete, and hands out the samples that are final.
    """

    def __init__(self, start: int, length: int, stride: int, weight: np.ndarray, augment: str = ""):
        self.augment = AUGMENTATIONS[augment] if augment else None
        self.offsets = list(range(start, length, stride))
        self.length = length
        self.weight = weight
        self.base = start  # mix position of acc[..., 0]
        self.acc = np.zeros((len(SOURCES), 2, SEGMENT), dtype=np.float32)
        self.wsum = np.zeros(SEGMENT, dtype=np.float32)
        self.ready: list[np.ndarray] = []  # final samples (mix positions >= 0) not yet taken
        self.ready_until = 0

    def window(self, offset: int) -> tuple[int, int]:
        """Where the model's window starts for a segment at `offset`, and the segment's length."""
        chunk = min(SEGMENT, self.length - offset)
        return offset - (SEGMENT - chunk) // 2, chunk

    def add(self, index: int, offset: int, out: np.ndarray) -> None:
        _, chunk = self.window(offset)
        trim = (SEGMENT - chunk) // 2  # Demucs's center_trim of the padded window
        at = offset - self.base
        w = self.weight[:chunk]
        self.acc[..., at : at + chunk] += out[..., trim : trim + chunk] * w
        self.wsum[at : at + chunk] += w
        done = self.offsets[index + 1] if index + 1 < len(self.offsets) else self.length
        self._release(done)

    def _release(self, until: int) -> None:
        n = until - self.base
        final = self.acc[..., :n] / self.wsum[:n]
        skip = max(0, -self.base)  # samples before the mix (shifted passes) are dropped
        if n > skip:
            self.ready.append(final[..., skip:])
        self.ready_until = max(self.ready_until, until)
        # Slide in place: new buffers per segment would grow Pyodide's heap, which never shrinks.
        keep = SEGMENT - n
        self.acc[..., :keep] = self.acc[..., n:]
        self.acc[..., keep:] = 0
        self.wsum[:keep] = self.wsum[n:]
        self.wsum[keep:] = 0
        self.base = until

    def take(self, n: int) -> np.ndarray:
        data = np.concatenate(self.ready, axis=-1) if len(self.ready) != 1 else self.ready[0]
        self.ready = [data[..., n:]] if data.shape[-1] > n else []
        return data[..., :n]


def pass_starts(options: Options) -> list[int]:
    """Where each pass begins relative to the mix: 0, or minus a random shift (Demucs's `shifts`)."""
    rng = random.Random(options.seed)
    return [rng.randint(0, MAX_SHIFT) - MAX_SHIFT for _ in range(options.shifts)] or [0]


def _read_window(source: MixSource, start: int, mean: float, std: float) -> np.ndarray:
    """SEGMENT samples of the standardised mix from `start`, zeros outside the song."""
    window = np.zeros((2, SEGMENT), dtype=np.float32)
    lo, hi = max(start, 0), min(start + SEGMENT, source.frames)
    if hi > lo:
        window[:, lo - start : hi - start] = (source.read(lo, hi - lo) - mean) / std
    return window


def _layout(sources: np.ndarray, stems: str) -> np.ndarray:
    if stems == "two":
        return np.stack([sources[3], sources[0] + sources[1] + sources[2]])
    return sources


async def separate(
    source: MixSource,
    runner: Runner,
    sink: StemSink,
    options: Options = Options(),
    on_progress: Callable[[int, int], None] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
) -> Report:
    """Separate `source` into stems written to `sink`. Raises Cancelled if cancelled.

    On any failure or cancellation the sink is aborted, so no partial stems remain.
    """
    length = source.frames
    if length == 0:
        raise ValueError("the audio is empty (0 samples)")
    stems = STEM_LAYOUTS[options.stems]
    warnings = list(source.warnings)
    mean, std = mix_statistics(source)
    if std < 1e-8:
        std = 1.0  # silence: nothing to scale, and dividing by 0 would give NaN
        warnings.append("the input is silent; the stems are silent too" if abs(mean) < 1e-8 else
                        "the input is silent (a constant level, no sound); each stem holds that level")
    stride = int((1 - options.overlap) * SEGMENT)
    passes = [_Pass(s, length, stride, _triangle(), a) for s in pass_starts(options) for a in ("", *options.augment)]
    # All passes advance together, segment by segment in time order, to keep memory flat.
    order = sorted((offset, p, i) for p, ps in enumerate(passes) for i, offset in enumerate(ps.offsets))
    total, emitted = len(order), 0

    def inputs(k: int):
        offset, p, _ = order[k]
        window = _read_window(source, passes[p].window(offset)[0], mean, std)
        return model_inputs(passes[p].augment(window) if passes[p].augment else window)

    sink.begin(stems, length)
    if on_progress is not None:
        on_progress(0, total)  # the count is known before the first (slow) segment
    in_flight: deque = deque()
    try:
        # A pipeline: while the runner works on the oldest segments in flight, the next
        # segment's inputs are made; once the oldest is back, the next is started, and only
        # then are the oldest's outputs inverted and blended. A runner that works elsewhere
        # (onnxruntime-web in its own workers) is never left waiting on Python.
        depth = max(1, int(getattr(runner, "in_flight", 1)))
        for k in range(min(depth, total)):
            in_flight.append(_start(runner, *inputs(k), is_cancelled))
        for done, (offset, p, i) in enumerate(order, 1):
            upcoming = done + len(in_flight) - 1  # the next segment not yet started
            following = inputs(upcoming) if upcoming < total else None
            pending = in_flight.popleft()
            result = await pending if inspect.isawaitable(pending) else pending
            if following is not None:
                in_flight.append(_start(runner, *following, is_cancelled))
            out = sources_from_outputs(*result)
            passes[p].add(i, offset, passes[p].augment(out) if passes[p].augment else out)
            ready = min(ps.ready_until for ps in passes)
            if ready > emitted:
                block = sum(ps.take(ready - emitted) for ps in passes) / len(passes)
                sink.write(_layout(block * std + mean, options.stems))
                emitted = ready
            if on_progress is not None:
                on_progress(done, total)
        assert emitted == length, (emitted, length)
        finished = sink.finish()
        if inspect.isawaitable(finished):  # encoders that need the event loop (the browser's)
            await finished
    except BaseException:
        for pending in in_flight:
            if inspect.iscoroutine(pending):
                pending.close()  # a coroutine never awaited would warn
        sink.abort()
        raise
    return Report(stems, length, total, warnings)


def _start(runner: Runner, wave: np.ndarray, spec: np.ndarray, is_cancelled):
    """Start the model on one segment: its result, or an awaitable of it. Checks for cancel first."""
    if is_cancelled is not None and is_cancelled():
        raise Cancelled("cancelled")
    return runner.run(wave, spec)


def run_sync(coroutine):
    """Drive `separate` with a synchronous runner (or any coroutine that never suspends, such as a
    sink's finish() with native encoders), without an event loop (works in Pyodide too)."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    coroutine.close()
    raise RuntimeError("the runner suspended; use asyncio (natively) or await it (in Pyodide)")
