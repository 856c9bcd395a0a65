import numpy as np

from pycore.resample import ATTENUATION_DB, PASSBAND, Resampler
from pycore.sources import ResampledSource


def _resample_tone(rate_in, freq, seconds=1.0):
    r = Resampler(rate_in, 44_100)
    n = int(rate_in * seconds)
    x = np.sin(2 * np.pi * freq * np.arange(n) / rate_in)[None].astype(np.float32)
    m = r.output_length(n)
    a, b = r.input_span(0, m)
    padded = np.zeros((1, b - a), dtype=np.float32)
    padded[:, max(a, 0) - a : min(b, n) - a] = x[:, max(a, 0) : min(b, n)]
    y = r.process(padded, a, 0, m)[0]
    return y[m // 4 : 3 * m // 4]  # away from the edges


def _gain_db(rate_in, freq):
    y = _resample_tone(rate_in, freq)
    return 10 * np.log10(np.mean(y.astype(np.float64) ** 2) / 0.5)


def test_passband_is_flat_within_a_tenth_of_a_db():
    for rate in (8_000, 22_050, 48_000, 96_000, 192_000):
        edge = PASSBAND * min(rate, 44_100) / 2
        for freq in (100.0, edge / 2, edge):
            assert abs(_gain_db(rate, freq)) < 0.1, (rate, freq, _gain_db(rate, freq))


def test_stopband_removes_what_would_alias():
    # Tones above 22.05 kHz in a 48/96/192 kHz file must not fold back into the output.
    for rate, freq in ((48_000, 22_100), (48_000, 23_500), (96_000, 30_000), (192_000, 60_000)):
        assert _gain_db(rate, freq) < -ATTENUATION_DB + 0.5, (rate, freq, _gain_db(rate, freq))


def test_upsampling_leaves_no_images():
    y = _resample_tone(8_000, 3_000.0)
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y)))) ** 2
    freqs = np.fft.rfftfreq(len(y), 1 / 44_100)
    images = spectrum[freqs > 4_100].max() / spectrum.max()
    assert 10 * np.log10(images) < -ATTENUATION_DB + 0.5


def test_any_range_can_be_read_on_its_own():
    class Tone:
        frames, warnings = 48_000, []

        def read(self, start, count):
            t = np.arange(start, start + count) / 48_000
            return np.stack([np.sin(2 * np.pi * 440 * t), np.cos(2 * np.pi * 440 * t)]).astype(np.float32)

    src = ResampledSource(Tone(), 48_000)
    assert src.frames == 44_100
    whole = src.read(0, src.frames)
    pieces = np.concatenate([src.read(s, min(7_000, src.frames - s)) for s in range(0, src.frames, 7_000)], axis=1)
    assert np.allclose(whole, pieces, atol=1e-6)
    assert any("48000" in w for w in src.warnings)
