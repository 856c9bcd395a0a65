"""STFT and inverse STFT exactly as Demucs's HTDemucs `_spec` / `_ispec` compute them.

Demucs pads the signal by 3/4 hop on each side (reflect), takes a centred,
normalised STFT (Hann, n_fft 4096, hop 1024), drops the Nyquist bin and keeps
frames 2 .. 2+le, so a signal of `length` samples gives ceil(length / hop) frames.
Frames 0, 1 and the last two only ever see the centring pad and are discarded, so
we compute just the frames that survive: frame j covers padded[j*hop : j*hop+n_fft].
The inverse overlap-adds the same frames and divides by the window's energy
envelope, which torch.istft computes over all frames, the discarded ones included.
"""

from __future__ import annotations

import numpy as np

from .model_contract import HOP, N_FFT

_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT))  # periodic Hann
# Single precision throughout the transforms (numpy >= 2 runs its FFTs in float32 for
# float32 input): twice as fast in Pyodide, and the model works in float32 anyway.
_WINDOW32 = _WINDOW.astype(np.float32)
_NORM = 1.0 / np.sqrt(N_FFT)  # torch's normalized=True
_OVERLAP = N_FFT // HOP  # 4 frames overlap every sample


def _pads(length: int) -> tuple[int, int, int]:
    frames = -(-length // HOP)
    left = HOP // 2 * 3
    right = left + frames * HOP - length
    return frames, left, right


def stft(x: np.ndarray) -> np.ndarray:
    """x [..., length] float -> complex64 [..., 2048, ceil(length/1024)]."""
    length = x.shape[-1]
    frames, left, right = _pads(length)
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(left, right)], mode="reflect")
    # A view of just the hop-spaced frames: a view over every sample position would
    # exceed 32-bit WASM's address space in Pyodide even though it is never touched.
    step = padded.strides[-1]
    windows = np.lib.stride_tricks.as_strided(
        padded, padded.shape[:-1] + (frames, N_FFT), padded.strides[:-1] + (HOP * step, step), writeable=False
    )
    spec = np.fft.rfft(windows * _WINDOW32, axis=-1)[..., : N_FFT // 2]
    spec *= np.float32(_NORM)
    return np.swapaxes(spec, -1, -2).astype(np.complex64, copy=False)


def _envelope(frames: int) -> np.ndarray:
    """Sum of squared windows over all frames torch.istft sees, for the kept samples."""
    total = frames + 4  # the two discarded frames on each side still count
    env = np.zeros((total + _OVERLAP - 1) * HOP)
    for k in range(total):
        env[k * HOP : k * HOP + N_FFT] += _WINDOW**2
    # Buffer index of kept frame 0 is 2 * HOP; torch also strips n_fft // 2 when centring.
    start = 2 * HOP
    return env[start : start + (frames + _OVERLAP - 1) * HOP]


_ENVELOPES: dict[int, np.ndarray] = {}


def istft(z: np.ndarray, length: int) -> np.ndarray:
    """complex [..., 2048, frames] -> float32 [..., length]; inverse of `stft`."""
    frames, left, _ = _pads(length)
    assert z.shape[-1] == frames, (z.shape, length)
    # irfft pads the missing Nyquist bin with zero itself.
    pieces = np.fft.irfft(np.swapaxes(z.astype(np.complex64, copy=False), -1, -2), n=N_FFT, axis=-1)
    pieces *= _WINDOW32 / np.float32(_NORM)  # [..., frames, n_fft]
    # Overlap-add with hop = n_fft / 4: each frame is four hop-sized blocks.
    blocks = np.zeros(z.shape[:-2] + (frames + _OVERLAP - 1, HOP), dtype=np.float32)
    for q in range(_OVERLAP):
        blocks[..., q : q + frames, :] += pieces[..., q * HOP : (q + 1) * HOP]
    signal = blocks.reshape(z.shape[:-2] + (-1,))
    if frames not in _ENVELOPES:
        _ENVELOPES[frames] = _envelope(frames).astype(np.float32)
    signal /= _ENVELOPES[frames]
    return signal[..., left : left + length].astype(np.float32)
