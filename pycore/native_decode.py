"""Opening an audio file natively: WAV through our own reader, anything else through libsndfile.

Only the command line uses this; in the browser, the browser's decoders do this job.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .sources import MixSource, ResampledSource, _StereoReader, wav_source
from .model_contract import SAMPLE_RATE
from .wav import WavError


class DecodeError(ValueError):
    """The file cannot be decoded; the message says why."""


_STEP = 8_192  # frames decoded per call: small, as a call that hits damage loses its whole block
_KEEP = 1 << 20  # decoded frames kept behind the read position (23 s), for overlapping windows


class _SoundFileReader:
    """libsndfile's decoders (FLAC, MP3, OGG, ...) read forward only, with the recent past kept.

    A compressed file's header can announce more audio than a cut-short file holds,
    and libsndfile then fails mid-song, or cannot seek at all (a truncated FLAC), and
    its MP3 seeking is approximate. So nothing seeks: opening makes one sequential
    pass that counts the frames that really decode (the source is that long, and says
    so when it is shorter), and reads decode forward, keeping the last _KEEP frames
    for the separator's overlapping windows; a read further back starts over.
    Memory stays flat whatever the length.
    """

    def __init__(self, path: Path):
        import soundfile

        self._soundfile, self._path = soundfile, path
        self._errors = (soundfile.LibsndfileError, RuntimeError)
        try:
            self._file = soundfile.SoundFile(str(path))
        except self._errors:
            # libsndfile's own reasons ("possibly a pipe?") mislead here; the user needs this:
            raise DecodeError("not an audio file Demixer can read, or a damaged one") from None
        self.channels = self._file.channels
        self.sample_rate = self._file.samplerate
        self.warnings: list[str] = []
        announced = self._file.frames
        self.frames = self._count()
        if self.frames < announced:
            self.warnings.append(
                f"the file ends early: {self.frames / self.sample_rate:.1f} s of the "
                f"{announced / self.sample_rate:.1f} s its header announces could be decoded "
                "(it may be truncated); separating what is there")
        self._restart()

    def _count(self) -> int:
        n = 0
        try:
            while True:
                got = len(self._file.read(_STEP, dtype="float32", always_2d=True))
                n += got
                if got < _STEP:
                    return n
        except self._errors:
            return n  # decoding stopped at damage: what came before is the song

    def _restart(self) -> None:
        self._file.close()
        self._file = self._soundfile.SoundFile(str(self._path))
        self._pos = 0  # next frame the decoder gives
        self._blocks: list[np.ndarray] = []  # decoded [channels, n] blocks, contiguous, ending at _pos
        self._kept_from = 0  # frame index of the first kept block's first frame

    def _decode(self, n: int) -> np.ndarray:
        try:
            x = self._file.read(n, dtype="float32", always_2d=True).T
        except self._errors as e:
            raise DecodeError(f"the file could not be decoded at {self._pos / self.sample_rate:.1f} s "
                              f"(it is damaged: {e})") from None
        if x.shape[1] < n:  # cannot happen within the counted length; never let a shape error escape
            x = np.concatenate([x, np.zeros((x.shape[0], n - x.shape[1]), np.float32)], axis=1)
        return x

    def read(self, start: int, count: int) -> np.ndarray:
        count = max(0, min(count, self.frames - start))
        end = start + count
        if count == 0:
            return np.zeros((self.channels, 0), np.float32)
        if start < self._kept_from:
            self._restart()
        keep = max(_KEEP, count)
        while self._pos < end:
            block = self._decode(min(_STEP, end - self._pos))
            self._blocks.append(block)
            self._pos += block.shape[1]
            while self._blocks and self._pos - self._kept_from - self._blocks[0].shape[1] >= keep:
                self._kept_from += self._blocks.pop(0).shape[1]
        kept = np.concatenate(self._blocks, axis=1) if len(self._blocks) > 1 else self._blocks[0]
        return kept[:, start - self._kept_from : end - self._kept_from]


def open_audio(path: Path) -> MixSource:
    """A 44.1 kHz stereo source for `path`, or DecodeError/WavError with a plain message."""
    if not path.exists():
        raise DecodeError("no such file")
    if path.is_dir():
        raise DecodeError("this is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise DecodeError("the file is empty")
    with open(path, "rb") as f:
        is_wav = f.read(4) in (b"RIFF", b"RF64")
    if is_wav:
        try:
            source = wav_source(open(path, "rb"))
        except WavError as e:
            if "unsupported WAV encoding" not in str(e):
                raise
            # Compressed WAV encodings (ADPCM, µ-law, ...) are left to libsndfile.
        else:
            if source.frames == 0:
                raise DecodeError("the file holds no audio samples")
            return source
    reader = _SoundFileReader(path)
    if reader.frames == 0:
        raise DecodeError("no audio could be decoded from this file (it is empty, damaged or cut short)")
    stereo = _StereoReader(reader)
    stereo.warnings = reader.warnings + stereo.warnings
    return stereo if stereo.sample_rate == SAMPLE_RATE else ResampledSource(stereo, stereo.sample_rate)
