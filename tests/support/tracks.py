"""Where the shared test music is, and how a track's mixture is made (sum of its four stems)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
TESTDATA = SHARED / "testdata"
STEMS = ("drums", "bass", "other", "vocals")


def load_track(folder: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(mixture [2, n], {stem: [2, n]}): the mixture is the sum of the four FLAC stems."""
    import soundfile as sf

    stems = {s: sf.read(folder / f"{s}.flac", dtype="float32")[0].T for s in STEMS}
    return sum(stems.values()), stems
