"""Separation quality as global SDR, the measure of the MUSDB/Demucs papers' 'SDR' column here."""

from __future__ import annotations

import numpy as np


def sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """10·log10(Σs² / Σ(s−ŝ)²) over all channels and samples, in dB."""
    s = np.asarray(reference, dtype=np.float64)
    e = np.asarray(estimate, dtype=np.float64)
    num = float((s**2).sum())
    den = float(((s - e) ** 2).sum())
    return 10 * np.log10((num + 1e-12) / (den + 1e-12))
