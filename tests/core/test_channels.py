import numpy as np

from pycore import channels
from pycore.sources import ArraySource


def test_stereo_passes_through_untouched():
    x = np.random.default_rng(0).standard_normal((2, 10)).astype(np.float32)
    assert np.array_equal(channels.to_stereo(x), x) and channels.describe(2) is None


def test_mono_is_duplicated_and_said():
    x = np.arange(5, dtype=np.float32)[None]
    assert np.array_equal(channels.to_stereo(x), np.vstack([x, x]))
    assert "mono" in channels.describe(1)
    assert any("mono" in w for w in ArraySource(x).warnings)


def test_surround_is_downmixed_without_clipping_and_drops_the_lfe():
    full = np.ones((6, 4), dtype=np.float32)
    out = channels.to_stereo(full)
    assert out.shape == (2, 4) and np.all(np.abs(out) <= 1.0 + 1e-6)
    lfe_only = np.zeros((6, 4), dtype=np.float32)
    lfe_only[3] = 1
    assert np.all(channels.to_stereo(lfe_only) == 0)
    assert "6-channel" in channels.describe(6) and "LFE" in channels.describe(6)
    three = np.zeros((3, 2), dtype=np.float32)
    three[2] = 1  # centre only: equal in both sides
    out = channels.to_stereo(three)
    assert out[0, 0] == out[1, 0] > 0
