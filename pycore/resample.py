"""Band-limited resampling to 44,100 Hz, by a Kaiser-windowed sinc, polyphase.

Passband: flat within 0.1 dB up to 90 % of the lower Nyquist frequency
(19.8 kHz when going to 44.1 kHz; 90 % of the input's Nyquist when upsampling).
Stopband: at least 80 dB of attenuation from the lower Nyquist frequency on,
so nothing folds back as aliasing and no images are left above the input band.
Any output range can be computed on its own (random access), which is what lets
a long file stream through in blocks.
"""

from __future__ import annotations

from math import ceil, gcd

import numpy as np

PASSBAND = 0.90  # of the lower Nyquist frequency
ATTENUATION_DB = 80.0
_BLOCK = 16_384  # output frames computed per step, to bound temporary memory


class Resampler:
    def __init__(self, rate_in: int, rate_out: int):
        g = gcd(rate_in, rate_out)
        self.rate_in, self.rate_out = rate_in, rate_out
        self.up, self.down = rate_out // g, rate_in // g
        nyquist = min(rate_in, rate_out) / 2
        # Transition band from PASSBAND*nyquist to nyquist, in cycles per input sample.
        transition = (1 - PASSBAND) * nyquist / rate_in
        cutoff = (1 + PASSBAND) / 2 * nyquist / rate_in
        taps = int(ceil((ATTENUATION_DB - 7.95) / (2.285 * 2 * np.pi * transition))) | 1
        self.half = taps // 2 + 1
        beta = 0.1102 * (ATTENUATION_DB - 8.7)
        # Phase p serves output samples whose input position has fraction p / up.
        k = np.arange(-self.half + 1, self.half + 1)  # input offsets around floor(position)
        frac = np.arange(self.up)[:, None] / self.up
        t = k[None, :] - frac  # distance of each tap from the exact position
        window = np.i0(beta * np.sqrt(np.clip(1 - (t / self.half) ** 2, 0, 1))) / np.i0(beta)
        self._table = (2 * cutoff * np.sinc(2 * cutoff * t) * window).astype(np.float32)
        self._offsets = k

    def output_length(self, frames_in: int) -> int:
        return -(-frames_in * self.up // self.down)

    def input_span(self, start: int, count: int) -> tuple[int, int]:
        """The input range [a, b) that output frames [start, start+count) depend on."""
        first = start * self.down // self.up
        last = (start + count - 1) * self.down // self.up
        return first - self.half + 1, last + self.half + 1

    def process(self, x: np.ndarray, x_start: int, start: int, count: int) -> np.ndarray:
        """Output frames [start, start+count) from input `x` [channels, n] that begins at input frame x_start."""
        out = np.empty((x.shape[0], count), dtype=np.float32)
        for b in range(0, count, _BLOCK):
            j = np.arange(start + b, start + min(count, b + _BLOCK))
            base = j * self.down // self.up
            phase = j * self.down % self.up
            idx = base[:, None] + self._offsets[None, :] - x_start
            out[:, b : b + len(j)] = np.einsum("cjt,jt->cj", x[:, idx], self._table[phase])
        return out
