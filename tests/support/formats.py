"""Checks of stems in every format against the WAV stems of the same music, for the browsers' tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pycore import formats
from pycore.metrics import sdr
from pycore.resample import Resampler

# Waveform SDR of lossy stems against the WAV stems of the same music: (mean of the four stems,
# the least one stem may score). MP3 at 320 kbit/s or V0 keeps the waveform to 24 to 48 dB (a bass
# stem, little but low notes, is the hardest); Opus at 160 kbit/s, a perceptual transform codec,
# stays near 15 to 24 dB per stem whoever runs libopus (libsndfile, ffmpeg and WebCodecs alike;
# still 19 to 29 dB at 256 kbit/s: docs/benchmarks.md). A broken encoder or a wrong rate scores
# far lower, and the lag check catches a shift of even one sample.
LOSSY_SDR_DB = {"mp3": (25, 22), "opus": (17, 12)}
FRAME = {"mp3": 1152, "opus": 960}


def at_44k(data: np.ndarray, rate: int) -> np.ndarray:
    """[n, 2] at `rate` -> [n', 2] at 44.1 kHz (pycore's resampler, centred: no delay)."""
    if rate == 44100:
        return data
    r = Resampler(rate, 44100)
    m = r.output_length(len(data))
    a, b = r.input_span(0, m)
    padded = np.zeros((data.shape[1], b - a), np.float32)
    padded[:, -a : -a + len(data)] = data.T
    return r.process(padded, a, 0, m).T.astype(np.float64)


def check_lossy(path: Path, reference: np.ndarray, fmt: formats.Format, gain: float = 1.0) -> float:
    """The lossy stem decodes to the reference's length (within a frame), aligned (no lag) and close to it."""
    data, rate = sf.read(path, dtype="float64", always_2d=True)
    assert rate == fmt.rate, (path.name, rate)
    frame = FRAME[fmt.codec] * 44100 / rate
    data = at_44k(data, rate)
    assert abs(len(data) - len(reference)) <= frame, (path.name, len(data), len(reference))
    n = min(len(data), len(reference))
    r, e = reference[:n].mean(axis=1) * gain, data[:n].mean(axis=1)
    lags = range(-8, 9)
    best = max(lags, key=lambda lag: float(np.dot(r[max(0, -lag) : n - max(0, lag)], e[max(0, lag) : n - max(0, -lag)])))
    assert best == 0, f"{path.name} is {best} samples off"
    score = float(sdr(reference[:n].T * gain, data[:n].T))
    print(f"{path.name} ({fmt.name}): {score:.1f} dB")
    assert score >= LOSSY_SDR_DB[fmt.codec][1], (path.name, score)
    return score


def check_lossy_mean(scores: dict[str, float], fmt: formats.Format) -> None:
    mean = float(np.mean(list(scores.values())))
    assert mean >= LOSSY_SDR_DB[fmt.codec][0], (fmt.name, round(mean, 2), scores)


def check_tags(path: Path, song: str, stem: str) -> None:
    with sf.SoundFile(path) as f:
        assert (f.title, f.album) == (f"{song} ({stem})", song), (path.name, f.title, f.album)
        assert "Demixer" in (f.comment or ""), (path.name, f.comment)


def check_ffmpeg_reads(path: Path) -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.fail("ffmpeg is needed to check the stems (apt-get install -y ffmpeg)", pytrace=False)
    done = subprocess.run([ffmpeg, "-v", "warning", "-nostdin", "-i", str(path), "-f", "null", "-"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr.strip() == "", (path.name, done.stderr)
