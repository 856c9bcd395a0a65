"""The command line's FLAC, MP3 and Opus encoders: libsndfile through soundfile, block by block.

libsndfile 1.2 (bundled in soundfile's wheels) writes FLAC, MP3 (LAME, with its Xing/LAME
frame, so players know the length and the encoder's delay) and Ogg Opus, each with tags.
A system libsndfile built without MP3 or Opus cannot: `check_support` says so in words
before any work is done.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .formats import Format

# libsndfile's compression level, 0 (the highest bitrate) to 1: for MP3 it picks the CBR bitrate
# or the VBR quality (0.0: 320 kbit/s CBR, or -V 0); for Opus the bitrate, linearly from
# 512 kbit/s at 0.0 (libsndfile's ogg_opus.c), so 160 kbit/s is about 0.7.
_OPUS_MAX_BPS, _OPUS_MIN_BPS = 512_000, 6_000


class EncoderUnavailable(RuntimeError):
    """The installed libsndfile cannot write this format; the message says what to do."""


def _sf():
    import soundfile

    return soundfile


def check_support(fmt: Format) -> None:
    sf = _sf()
    need = {"flac": ("FLAC", "PCM_16"), "mp3": ("MP3", "MPEG_LAYER_III"), "opus": ("OGG", "OPUS")}[fmt.codec]
    major, subtype = need
    if major not in sf.available_formats() or subtype not in sf.available_subtypes(major):
        raise EncoderUnavailable(
            f"this computer's libsndfile ({sf.__libsndfile_version__}) cannot write {fmt.label}: "
            f"install soundfile's own wheel (pip install --force-reinstall soundfile), which brings libsndfile "
            f"with MP3 and Opus, or choose another --format"
        )


class SoundfileEncoder:
    """One stem file. write() takes int32 [2, n] for FLAC, float32 [2, n] within full scale otherwise."""

    def __init__(self, path: Path, fmt: Format, frames: int, tags: dict[str, str]):
        sf = _sf()
        check_support(fmt)
        self.format, self._frames, self._written = fmt, frames, 0
        kwargs: dict = {}
        if fmt.codec == "flac":
            kwargs = {"format": "FLAC", "subtype": f"PCM_{fmt.bits}"}
        elif fmt.codec == "mp3":
            vbr = fmt.vbr_quality is not None
            level = fmt.vbr_quality / 10 if vbr else 0.0  # 320 kbit/s at 0.0
            kwargs = {"format": "MP3", "subtype": "MPEG_LAYER_III", "bitrate_mode": "VARIABLE" if vbr else "CONSTANT",
                      "compression_level": level}  # fmt: skip
        elif fmt.codec == "opus":
            level = 1 - (fmt.bitrate * 1000 - _OPUS_MIN_BPS) / (_OPUS_MAX_BPS - _OPUS_MIN_BPS)
            kwargs = {"format": "OGG", "subtype": "OPUS", "compression_level": level}
        else:
            raise ValueError(f"{fmt.name} is not encoded by libsndfile")
        self._file = sf.SoundFile(str(path), "w", fmt.rate, 2, **kwargs)
        for key, value in tags.items():  # before the first sample: FLAC writes its comments up front
            setattr(self._file, key, value)

    def write(self, block: np.ndarray) -> None:
        n = block.shape[1]
        if self._written + n > self._frames:
            raise ValueError("more frames written than announced")
        if self.format.codec == "flac":
            ints = block.T.astype(np.int32)
            data = ints.astype(np.int16) if self.format.bits == 16 else ints << 8  # 24-bit: the top 24 of 32
        else:
            data = np.ascontiguousarray(block.T, dtype=np.float32)
        self._file.write(data)
        self._written += n

    def finish(self) -> None:
        if self._written != self._frames:
            raise RuntimeError(f"internal error: {self._written} of {self._frames} frames encoded")
        self._file.close()

    def abort(self) -> None:
        self._file.close()


def open_encoder(path: Path, fmt: Format, frames: int, tags: dict[str, str]) -> SoundfileEncoder:
    return SoundfileEncoder(path, fmt, frames, tags)
