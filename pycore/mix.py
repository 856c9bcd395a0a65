"""The mix you hear, rendered offline: a library entry's stem WAVs, each at its gain, summed into
one stereo file through a stem sink (WavStems or EncodedStems begun with the one stem "mix"), so
the export gets the job's format and clip policy. Streamed block by block: memory stays bounded
whatever the song's length.
"""

from __future__ import annotations

import inspect
import math
from typing import Callable

import numpy as np

from .model_contract import SAMPLE_RATE
from .separate import Cancelled
from .sources import MixSource

MIX_STEM = "mix"


def _check(sources: dict[str, MixSource], gains: dict[str, float]) -> int:
    """The stems' common length; a plain sentence (ValueError) when they cannot be mixed."""
    if not sources:
        raise ValueError("there are no stems to mix")
    for stem, source in sources.items():
        if source.warnings:  # wav_source says so when a file is not 44.1 kHz stereo, or is damaged
            raise ValueError(f"the {stem} stem is not a 44.1 kHz stereo WAV of this song ({source.warnings[0]})")
    unknown = sorted(set(gains) - set(sources))
    if unknown:
        raise ValueError(f"there is no {unknown[0]} stem to set the level of; the stems are {', '.join(sources)}")
    bad = [s for s, g in gains.items() if not (math.isfinite(g) and g >= 0)]
    if bad:
        raise ValueError(f"the {bad[0]} stem's level must be 0 or more, not {gains[bad[0]]}")
    lengths = {stem: source.frames for stem, source in sources.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{stem} {frames:,}" for stem, frames in lengths.items())
        raise ValueError(f"the stems are not the same length (frames: {listed}), so they are not of one song")
    return next(iter(lengths.values()))


async def mix_stems(sources: dict[str, MixSource], gains: dict[str, float], sink, block: int = 65536,
                    is_cancelled: Callable[[], bool] | None = None) -> int:
    """Sum `sources` (each as wav_source returns it) times their linear `gains` (1.0 where none is
    given, 0 = muted) into `sink`; returns the frames written. The sink is aborted on any failure.

    A muted stem is skipped, not multiplied by 0, and a gain of 1.0 leaves a stem's samples as they
    are: everything muted is exact digital silence, a stem alone is exactly that stem. Drive it with
    `await` (the browser) or run_sync (natively: nothing suspends).
    """
    frames = _check(sources, gains)
    audible = [(source, float(gains.get(stem, 1.0))) for stem, source in sources.items() if gains.get(stem, 1.0) != 0]
    sink.begin((MIX_STEM,), frames)
    try:
        for start in range(0, frames, block):
            if is_cancelled is not None and is_cancelled():
                raise Cancelled("cancelled")
            n = min(block, frames - start)
            mix = None
            for source, gain in audible:
                x = source.read(start, n)
                if x.shape != (2, n):
                    raise OSError(f"a stem could not be read back at {start / SAMPLE_RATE:.1f} s")
                x = x if gain == 1.0 else x * np.float32(gain)
                mix = x if mix is None else mix + x  # never in place: x may be the source's own array
            if mix is None:
                mix = np.zeros((2, n), dtype=np.float32)
            pending = sink.write(mix.astype(np.float32, copy=False)[None])
            if inspect.isawaitable(pending):  # an encoder behind (the browser's Opus): let it catch up
                await pending
        finished = sink.finish()
        if inspect.isawaitable(finished):
            await finished
    except BaseException:
        sink.abort()
        raise
    return frames
