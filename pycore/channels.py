"""The channel policy: the model wants stereo, so everything becomes two channels."""

from __future__ import annotations

import numpy as np

_SIDE = 0.7071  # -3 dB, the usual weight of centre and surrounds in a stereo downmix


def describe(channels: int) -> str | None:
    """A warning for the user when the policy changes the audio, else None."""
    if channels == 1:
        return "mono input: the channel is used for both left and right"
    if channels > 2:
        lfe = " (LFE dropped)" if channels >= 4 else ""
        return f"{channels}-channel input downmixed to stereo: front left/right plus the other channels at -3 dB{lfe}"
    return None


def to_stereo(x: np.ndarray) -> np.ndarray:
    """float [channels, n] -> float32 [2, n].

    WAV channel order puts front left and right first, centre third and the LFE
    fourth; the rest are surrounds. Their sum is scaled so a full-scale signal on
    every channel cannot clip.
    """
    channels = x.shape[0]
    if channels == 2:
        return x.astype(np.float32, copy=False)
    if channels == 1:
        return np.repeat(x, 2, axis=0).astype(np.float32)
    others = [c for c in range(2, channels) if not (channels >= 4 and c == 3)]
    shared = x[others].sum(axis=0) * _SIDE if others else 0.0
    gain = 1.0 / (1.0 + _SIDE * len(others))
    return (np.stack([x[0] + shared, x[1] + shared]) * gain).astype(np.float32)
