"""Opening an audio file natively: WAV through our own reader, anything else through libsndfile.

Only the command line uses this; in the browser, the browser's decoders do this job.
"""

from __future__ import annotations

from pathlib import Path

from .sources import MixSource, ResampledSource, _StereoReader, wav_source
from .model_contract import SAMPLE_RATE
from .wav import WavError


class DecodeError(ValueError):
    """The file cannot be decoded; the message says why."""


class _SoundFileReader:
    def __init__(self, path: Path):
        import soundfile

        try:
            self._file = soundfile.SoundFile(str(path))
        except (soundfile.LibsndfileError, RuntimeError) as e:
            raise DecodeError(f"not an audio file Demixer can read ({e})") from None
        self.frames = self._file.frames
        self.channels = self._file.channels
        self.sample_rate = self._file.samplerate

    def read(self, start: int, count: int):
        self._file.seek(start)
        return self._file.read(count, dtype="float32", always_2d=True).T


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
    stereo = _StereoReader(_SoundFileReader(path))
    if stereo.frames == 0:
        raise DecodeError("the file holds no audio samples")
    return stereo if stereo.sample_rate == SAMPLE_RATE else ResampledSource(stereo, stereo.sample_rate)
