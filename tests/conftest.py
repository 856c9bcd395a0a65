"""Fixtures for the native and browser tests: the real model and real music from ../shared."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
TESTDATA = SHARED / "testdata"
STEMS = ("drums", "bass", "other", "vocals")

sys.path.insert(0, str(REPO / "tests" / "core"))  # the core tests' helpers


@pytest.fixture(scope="session")
def testdata() -> Path:
    # Tests on real music must fail, not skip, when the data is missing.
    if not (TESTDATA / "index.json").exists():
        pytest.fail(f"the shared test data is missing: expected {TESTDATA} beside the repository", pytrace=False)
    return TESTDATA


@pytest.fixture(scope="session")
def model_path() -> Path:
    from models.fetch import fetch_model

    return fetch_model()


def load_track(folder: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(mixture [2, n], {stem: [2, n]}): the mixture is the sum of the four FLAC stems."""
    import soundfile as sf

    stems = {s: sf.read(folder / f"{s}.flac", dtype="float32")[0].T for s in STEMS}
    return sum(stems.values()), stems
