"""Test audio: clips of the shared tracks (mixture = sum of the stems), and checks of the stems we get back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[2]
RATE = 44100
SOURCES = ("drums", "bass", "other", "vocals")


def load_clip(track: Path, seconds: float, start: float = 0.0) -> dict[str, np.ndarray]:
    """{stem: float32 [n, 2]} for `seconds` of the track from `start`."""
    a, n = int(start * RATE), int(seconds * RATE)
    out = {}
    for s in SOURCES:
        data, rate = sf.read(track / f"{s}.flac", dtype="float32", start=a, frames=n, always_2d=True)
        assert rate == RATE and data.shape[1] == 2, (s, rate, data.shape)
        out[s] = data
    return out


def mixture(stems: dict[str, np.ndarray]) -> np.ndarray:
    return sum(stems.values())


def write_song(path: Path, audio: np.ndarray, subtype: str = "PCM_16") -> Path:
    """Write the mixture as WAV or FLAC (by suffix); returns what the decoder will see, as float."""
    peak = float(np.abs(audio).max())
    if peak >= 1.0:
        raise ValueError(f"the clip clips (peak {peak:.3f})")
    sf.write(path, audio, RATE, subtype=subtype)
    return path


def read_stem(path: Path) -> tuple[np.ndarray, sf._SoundFileInfo]:
    info = sf.info(path)
    data, _ = sf.read(path, dtype="float64", always_2d=True)
    return data, info


def check_stems(paths, frames: int, subtype: str) -> dict[str, np.ndarray]:
    stems = {}
    for path in paths:
        data, info = read_stem(path)
        assert info.samplerate == RATE, (path.name, info.samplerate)
        assert info.channels == 2, (path.name, info.channels)
        assert info.subtype == subtype, (path.name, info.subtype)
        assert data.shape[0] == frames, f"{path.name}: {data.shape[0]} frames, the input has {frames}"
        stems[path.stem] = data
    return stems


def native_stems(song: Path, out: Path) -> dict[str, np.ndarray]:
    """The same song through the native command line (pycore + onnxruntime)."""
    subprocess.run([sys.executable, "-m", "pycore", "separate", str(song), "-o", str(out)], check=True, cwd=REPO)
    return {p.stem: read_stem(p)[0] for p in (out / song.stem).glob("*.wav")}
