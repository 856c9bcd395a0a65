"""The stems' file formats: what each one is, and the one quantiser every integer format shares.

A format is named once here (the job settings, the command line's --format and the popup's menu
come from this table) and encoded by a sink in stem_files.py: WAV by pycore itself, FLAC, MP3
and Opus by an encoder library (libsndfile natively; WebAssembly libraries and WebCodecs in the
browser). Integer formats are quantised here, by `quantize`, so a FLAC stem holds exactly the
samples of the WAV stem of the same job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Format:
    name: str
    label: str  # what the menu says
    extension: str
    codec: str  # "pcm" (integer WAV), "float" (float WAV), "flac", "mp3", "opus"
    bits: int | None = None  # integer formats: bits per sample
    bitrate: int | None = None  # lossy formats at a constant bitrate: kbit/s
    vbr_quality: int | None = None  # MP3 VBR: LAME's -V level (0 is the best)
    rate: int = 44_100  # the file's sample rate (Opus runs at 48 kHz: the stems are resampled)

    @property
    def wav(self) -> bool:
        """Written by pycore itself (WavStems); every other format goes through an encoder."""
        return self.codec in ("pcm", "float")

    @property
    def integer(self) -> bool:
        return self.bits is not None

    @property
    def lossy(self) -> bool:
        return self.codec in ("mp3", "opus")

    @property
    def full_scale(self) -> float:
        """The largest positive sample the format holds, as a float (int16: 32767/32768)."""
        if self.bits is None:
            return 1.0
        scale = float(1 << (self.bits - 1))
        return (scale - 1) / scale


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("wav16", "WAV 16-bit", "wav", "pcm", bits=16),
        Format("wav24", "WAV 24-bit", "wav", "pcm", bits=24),
        Format("float32", "WAV 32-bit float", "wav", "float"),
        Format("flac16", "FLAC 16-bit", "flac", "flac", bits=16),
        Format("flac24", "FLAC 24-bit", "flac", "flac", bits=24),
        Format("mp3-320", "MP3 320 kbit/s", "mp3", "mp3", bitrate=320),
        Format("mp3-v0", "MP3 VBR V0", "mp3", "mp3", vbr_quality=0),
        Format("opus", "Opus 160 kbit/s", "opus", "opus", bitrate=160, rate=48_000),
    )
}
WAV_FORMATS = ("wav16", "wav24", "float32")


def get(name: str) -> Format:
    if name not in FORMATS:
        raise ValueError(f"unknown format {name!r}; choose one of {', '.join(FORMATS)}")
    return FORMATS[name]


def quantize(block: np.ndarray, bits: int) -> tuple[np.ndarray, int]:
    """float [channels, frames] -> (int32 samples [channels, frames], how many were clamped to full scale).

    Round to nearest, then clamp to the format's range: the one rule of every integer stem.
    """
    scale = float(1 << (bits - 1))
    ints = np.round(block.astype(np.float64) * scale)
    clamped = int(np.count_nonzero((ints > scale - 1) | (ints < -scale)))
    return np.clip(ints, -scale, scale - 1).astype(np.int32), clamped


def tags(song: str, stem: str) -> dict[str, str]:
    """What every stem file says about itself (FLAC Vorbis comments, ID3v2, Opus tags)."""
    return {
        "title": f"{song} ({stem})",
        "album": song,
        "comment": "Separated by Demixer with Demucs v4 (htdemucs)",
    }
