"""Band-limited resampling to 44,100 Hz, by a Kaiser-windowed sinc, polyphase.

Passband: flat within 0.1 dB up to 90 % of the lower Nyquist frequency
(19.8 kHz when going to 44.1 kHz; 90 % of the input's Nyquist when upsampling).
Stopband: at least 80 dB of attenuation from the lower Nyquist frequency on,
so nothing folds back as aliasing and no images are left above the input band.
Any output range can be computed on its own (random access), which is what lets
a long file stream through in blocks.
"""

from __future__ import annotations

from fractions import Fraction
from math import ceil

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

PASSBAND = 0.90  # of the lower Nyquist frequency
ATTENUATION_DB = 80.0
_GATHER = 1 << 16  # output frames per phase per step, to bound the temporaries of each product
MIN_RATE, MAX_RATE = 1_000, 768_000  # beyond these a header is broken, not music
_MAX_PHASES = 2_000  # bounds the filter table; odd rates are approximated to within 0.01 % in speed (inaudible)


def check_rate(rate: int) -> None:
    """ValueError with a plain message for a sample rate no audio file really has."""
    if not MIN_RATE <= rate <= MAX_RATE:
        raise ValueError(f"the file claims a sample rate of {rate:,} Hz, which is not a real audio rate "
                         f"(Demixer reads {MIN_RATE:,} to {MAX_RATE:,} Hz); the file is probably damaged")


class Resampler:
    def __init__(self, rate_in: int, rate_out: int):
        check_rate(rate_in)
        self.rate_in, self.rate_out = rate_in, rate_out
        # down/up = rate_in/rate_out in lowest terms; an odd rate (44,101 Hz) would need tens of
        # thousands of filter phases, so the ratio is approximated with at most _MAX_PHASES.
        ratio = Fraction(rate_in, rate_out).limit_denominator(_MAX_PHASES)
        self.up, self.down = ratio.denominator, ratio.numerator
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
        """Output frames [start, start+count) from input `x` [channels, n] that begins at input frame x_start.

        Polyphase: the outputs j, j+up, j+2up, ... share one filter phase and sit exactly
        `down` input frames apart, so each phase is one matrix product over a strided
        view of the input (no gathered copies of the input per output: 50x faster).
        """
        out = np.empty((x.shape[0], count), dtype=np.float32)
        taps = len(self._offsets)
        windows = sliding_window_view(x, taps, axis=1)  # [channels, n - taps + 1, taps], a view
        step = self.up * max(1, _GATHER // taps)  # outputs per block: bounds each phase's product
        for b in range(start, start + count, step):
            end = min(start + count, b + step)
            for r in range(min(self.up, end - b)):
                j0 = b + r
                m = -(-(end - j0) // self.up)
                first = j0 * self.down // self.up + self._offsets[0] - x_start
                view = windows[:, first : first + (m - 1) * self.down + 1 : self.down]
                out[:, j0 - start : end - start : self.up] = view @ self._table[j0 * self.down % self.up]
        return out


class StreamResampler:
    """Resamples a stream pushed block by block, for a writer (Opus stems at 48 kHz).

    The output is what resampling the whole stream at once gives, to float rounding (zeros stand in
    beyond its ends, as in ResampledSource), and only a filter's length of input is kept.
    """

    def __init__(self, rate_in: int, rate_out: int, frames_in: int, channels: int = 2):
        self._r = Resampler(rate_in, rate_out)
        self.frames_in, self.frames_out = frames_in, self._r.output_length(frames_in)
        self._buf = np.zeros((channels, 0), dtype=np.float32)
        self._buf_start = 0  # input frame of _buf[:, 0]
        self._seen = 0  # input frames pushed
        self._done = 0  # output frames given

    def push(self, block: np.ndarray) -> np.ndarray:
        """The output frames that `block` (the next input frames) completes."""
        self._buf = np.concatenate([self._buf, block.astype(np.float32, copy=False)], axis=1)
        self._seen += block.shape[1]
        if self._seen > self.frames_in:
            raise ValueError("more frames pushed than announced")
        if self._seen == self.frames_in:
            count = self.frames_out - self._done
        else:  # outputs whose whole input span has arrived
            count = 0
            lo, hi = 0, self.frames_out - self._done
            while lo < hi:  # the largest count whose span ends by the input seen
                mid = (lo + hi + 1) // 2
                if self._r.input_span(self._done, mid)[1] <= self._seen:
                    lo = mid
                else:
                    hi = mid - 1
            count = lo
        if count <= 0:
            return np.zeros((self._buf.shape[0], 0), dtype=np.float32)
        a, b = self._r.input_span(self._done, count)
        x = np.zeros((self._buf.shape[0], b - a), dtype=np.float32)
        lo, hi = max(a, self._buf_start), min(b, self._buf_start + self._buf.shape[1])
        if hi > lo:
            x[:, lo - a : hi - a] = self._buf[:, lo - self._buf_start : hi - self._buf_start]
        out = self._r.process(x, a, self._done, count)
        self._done += count
        keep_from = max(self._buf_start, self._r.input_span(self._done, 1)[0]) if self._done < self.frames_out else self._seen
        self._buf = self._buf[:, keep_from - self._buf_start :]
        self._buf_start = keep_from
        return out
