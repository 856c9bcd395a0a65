"""One model contract: pycore/model_contract.py, the manifest models/htdemucs.json, and the
contract.json build.py ships for the model worker all say the same."""

from __future__ import annotations

import json

import build
from models.fetch import MANIFEST
from pycore import model_contract as c


def test_the_core_the_manifest_and_the_bundle_agree_on_the_model():
    roles = MANIFEST["roles"]
    assert MANIFEST["segment_samples"] == c.SEGMENT and MANIFEST["sample_rate"] == c.SAMPLE_RATE
    assert tuple(MANIFEST["sources"]) == c.SOURCES
    assert (roles["wave"], roles["spec"], roles["freq"], roles["time"]) == (c.INPUT_WAVE, c.INPUT_SPEC, c.OUTPUT_FREQ, c.OUTPUT_TIME)
    assert MANIFEST["inputs"][c.INPUT_WAVE] == [1, 2, c.SEGMENT]
    assert MANIFEST["inputs"][c.INPUT_SPEC] == [1, 4, c.FREQ_BINS, c.FRAMES]
    assert MANIFEST["outputs"][c.OUTPUT_FREQ] == [1, len(c.SOURCES), 4, c.FREQ_BINS, c.FRAMES]
    assert MANIFEST["outputs"][c.OUTPUT_TIME] == [1, len(c.SOURCES), 2, c.SEGMENT]
    shipped = build.model_contract()
    assert json.loads(json.dumps(shipped)) == {k: MANIFEST[k] for k in shipped}
    assert set(shipped["roles"].values()) == set(shipped["inputs"]) | set(shipped["outputs"])
