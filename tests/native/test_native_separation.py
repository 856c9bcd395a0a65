"""The real htdemucs model, natively, on real music."""

import numpy as np
import pytest
from support.tracks import load_track
from support.core import Collect

from pycore.metrics import sdr
from pycore.onnx_runner import OnnxRunner
from pycore.separate import run_sync, separate
from pycore.sources import ArraySource


@pytest.fixture(scope="module")
def runner(model_path):
    return OnnxRunner(model_path)


def test_lithium_separates_as_well_as_the_reference(testdata, runner):
    mix, truth = load_track(testdata / "cc0-excerpts" / "2.Lithium")
    sink = Collect()
    report = run_sync(separate(ArraySource(mix), runner, sink))
    scores = {stem: sdr(truth[stem], est) for stem, est in zip(report.stems, sink.audio)}
    print("2.Lithium SDR:", {k: round(v, 3) for k, v in scores.items()})
    assert np.mean(list(scores.values())) >= 10.5  # the peer scores 11.05 dB
    residual = ((sink.audio.sum(axis=0) - mix) ** 2).sum() / (mix**2).sum()
    assert residual < 0.01, residual  # the four stems add back up to the mix
