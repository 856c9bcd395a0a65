"""The bad-input corpus at the core's level: generated here, each case a correct result or a plain message.

Runs natively and, unchanged, inside Pyodide (numpy only; the files are built in
memory). The same cases as real files, with real music and the real model, go
through the command line in tests/test_bad_inputs_cli.py.
"""

import io
import struct

import numpy as np
from support.core import Collect, TimeBranchModel, music_like, raises, wav_bytes

from pycore import wav
from pycore.model_contract import FRAMES, FREQ_BINS
from pycore.separate import Options, run_sync, separate
from pycore.sources import wav_source
from pycore.stem_files import WavStems
from pycore.wav import WavError

RATE = 44_100


def _pcm16(x: np.ndarray) -> bytes:
    return np.round(np.clip(x, -1, 32767 / 32768) * 32768).T.reshape(-1).astype("<i2").tobytes()


def _source(data: bytes):
    return wav_source(io.BytesIO(data))


def _separate(source, runner=None):
    sink = Collect()
    report = run_sync(separate(source, runner or TimeBranchModel(), sink, Options(stems="two")))
    return sink, report


def _song(seconds=1.0, seed=0):
    return music_like(int(RATE * seconds), seed=seed)


def test_empty_and_non_wav_files_are_named_as_such():
    with raises(WavError, "the file is empty"):
        _source(b"")
    with raises(WavError, "not a WAV file"):
        _source(b"This is a text file that someone named song.mp3\n" * 20)
    with raises(WavError, "not a WAV file"):
        _source(b"RIFF")  # cut inside the first header


def test_truncated_wav_reads_what_is_there_and_says_so():
    full = wav_bytes(_pcm16(_song()), 2, RATE, 16)
    for cut in (len(full) // 2, len(full) // 2 + 1, len(full) // 2 + 3):  # on and off a frame boundary
        source = _source(full[:cut])
        assert source.frames == (cut - 44) // 4
        assert any("truncated" in w for w in source.warnings), source.warnings
        sink, _ = _separate(source)
        assert sink.audio.shape == (2, 2, source.frames) and np.isfinite(sink.audio).all()
    with raises(WavError, "'fmt ' chunk"):
        _source(full[:30])  # cut inside the format chunk
    with raises(WavError, "no audio data"):
        _source(full[:40])  # cut before the data chunk


def test_absurd_sizes_in_the_header():
    audio = _pcm16(_song(0.5))
    frames = len(audio) // 4
    # The data size placeholder of an unfinished recording: read to the end.
    source = _source(wav_bytes(audio, 2, RATE, 16, declared=0xFFFFFFFF))
    assert source.frames == frames and any("length" in w for w in source.warnings)
    # Data larger than the RIFF size (and than the file).
    data = bytearray(wav_bytes(audio, 2, RATE, 16, declared=len(audio) * 3))
    data[4:8] = struct.pack("<I", 100)
    source = _source(bytes(data))
    assert source.frames == frames and any("truncated" in w for w in source.warnings)
    # A chunk before 'fmt ' whose size runs past the end of the file.
    junk = b"LIST" + struct.pack("<I", 0xFFFFFFF0)
    with raises(WavError, "'fmt ' chunk"):
        _source(wav_bytes(audio, 2, RATE, 16, chunks_before=junk))
    # An empty data chunk followed by another chunk really is empty.
    empty = wav_bytes(b"", 2, RATE, 16) + b"LIST" + struct.pack("<I", 4) + b"INFO"
    assert _source(empty).frames == 0
    with raises(ValueError, "empty"):
        _separate(_source(empty))


def test_impossible_format_fields_get_plain_messages():
    audio = _pcm16(_song(0.1))
    with raises(WavError, "0 channels"):
        _source(wav_bytes(audio, 0, RATE, 16))
    with raises(WavError, "at 0 Hz"):
        _source(wav_bytes(audio, 2, 0, 16))
    for rate in (1, 0xFFFFFFFF):  # would mean hours of audio per second, or a filter of gigabytes
        with raises(ValueError, "not a real audio rate"):
            _source(wav_bytes(audio, 2, rate, 16))
    with raises(WavError, "channels; Demixer reads up to"):
        _source(wav_bytes(bytes(255 * 10), 255, RATE, 8))
    bad = bytearray(wav_bytes(audio, 2, RATE, 16))
    bad[32:34] = struct.pack("<H", 3)  # block align that fits no channel count
    with raises(WavError, "inconsistent"):
        _source(bytes(bad))


def test_odd_sample_rates_are_read_without_a_huge_filter():
    x = _song(0.3)
    for rate in (44_101, 192_001):
        source = _source(wav_bytes(_pcm16(x), 2, rate, 16))
        assert abs(source.frames - x.shape[1] * RATE / rate) <= 2, rate
        assert np.isfinite(source.read(0, source.frames)).all()


def test_nan_or_infinite_samples_are_refused_and_the_engine_goes_on():
    runner = TimeBranchModel()
    x = _song(0.5)
    for bad_value in (np.nan, np.inf):
        y = x.copy()
        y[1, 10_000] = bad_value
        data = wav_bytes(y.T.reshape(-1).astype("<f4").tobytes(), 2, RATE, 32, tag=3)
        sink = Collect()
        with raises(ValueError, "invalid samples"):
            run_sync(separate(_source(data), runner, sink))
        assert "0.2 s" in _message(lambda: run_sync(separate(_source(data), runner, Collect())))
    sink, _ = _separate(_source(wav_bytes(_pcm16(x), 2, RATE, 16)), runner)  # the next job runs normally
    assert sink.state == "finished" and sink.audio.shape == (2, 2, x.shape[1])


def _message(call) -> str:
    try:
        call()
    except ValueError as e:
        return str(e)
    raise AssertionError("no error")


def test_a_fifth_of_a_second_gives_stems_of_the_same_length():
    x = _song(0.2)
    sink, report = _separate(_source(wav_bytes(_pcm16(x), 2, RATE, 16)))
    assert x.shape[1] == 8_820 and sink.audio.shape == (2, 2, 8_820) and report.segments == 1
    assert np.abs(sink.audio.sum(axis=0)).max() > 0.01 and np.isfinite(sink.audio).all()


def test_pure_silence_gives_silent_stems_and_a_warning():
    for payload, bits, tag in ((bytes(4 * RATE), 16, 1), (bytes(8 * RATE), 32, 3)):
        sink, report = _separate(_source(wav_bytes(payload, 2, RATE, bits, tag)))
        assert sink.audio.shape == (2, 2, RATE) and np.isfinite(sink.audio).all()
        assert np.abs(sink.audio).max() == 0.0
        assert any("the input is silent" in w for w in report.warnings), report.warnings
    dc = np.full(2 * RATE, 8192, "<i2").tobytes()  # a constant level: no sound either, and no NaN from it
    sink, report = _separate(_source(wav_bytes(dc, 2, RATE, 16)))
    assert np.isfinite(sink.audio).all() and any("constant level" in w for w in report.warnings)


def test_mono_and_six_channels_become_stereo_and_say_so():
    x = _song(0.5)
    mono = _source(wav_bytes(_pcm16(x[:1]), 1, RATE, 16))
    assert any("mono" in w for w in mono.warnings)
    both = mono.read(0, mono.frames)
    assert np.array_equal(both[0], both[1]) and np.allclose(both[0], x[0], atol=1 / 32768)
    six = np.zeros((6, x.shape[1]), dtype=np.float32)
    six[0], six[1], six[3] = x[0], x[1], 0.9  # LFE full of DC, which the downmix drops
    surround = _source(wav_bytes(_pcm16(six), 6, RATE, 16))
    assert any("6-channel" in w and "LFE" in w for w in surround.warnings)
    out = surround.read(0, surround.frames)
    gain = out[0] @ x[0] / (x[0] @ x[0])  # front left comes through, scaled, with nothing added
    assert 0.3 < gain < 1 and np.allclose(out, x * gain, atol=1e-4)
    sink, report = _separate(surround)
    assert sink.audio.shape == (2, 2, x.shape[1]) and any("6-channel" in w for w in report.warnings)


def test_every_sample_rate_comes_out_at_44_1_khz_with_the_same_pitch():
    for rate in (8_000, 22_050, 48_000, 96_000, 192_000):
        n = rate // 2
        t = np.arange(n) / rate
        tone = 0.5 * np.sin(2 * np.pi * 1000 * t)
        source = _source(wav_bytes(np.stack([tone, tone]).T.reshape(-1).astype("<f4").tobytes(), 2, rate, 32, tag=3))
        assert source.frames == -(-n * RATE // rate), rate
        assert any(f"resampled from {rate} Hz" in w for w in source.warnings)
        y = source.read(0, source.frames)[0]
        expected = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(source.frames) / RATE)
        inner = slice(source.frames // 4, 3 * source.frames // 4)  # the filter's edges aside
        assert np.abs(y[inner] - expected[inner]).max() < 0.01, rate


def test_every_pcm_and_float_width_reads_back_the_same_music():
    x = _song(0.25) * 0.8
    inter = x.T.reshape(-1).astype(np.float64)
    payloads = {
        (8, 1): (np.round(inter * 127) + 128).astype(np.uint8).tobytes(),
        (16, 1): np.round(inter * 32767).astype("<i2").tobytes(),
        (24, 1): np.round(inter * 8388607).astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes(),
        (32, 1): np.round(inter * 2147483647).astype("<i4").tobytes(),
        (32, 3): inter.astype("<f4").tobytes(),
        (64, 3): inter.astype("<f8").tobytes(),
    }
    for (bits, tag), payload in payloads.items():
        source = _source(wav_bytes(payload, 2, RATE, bits, tag))
        assert source.frames == x.shape[1] and source.warnings == []
        tolerance = 1.5 / 128 if bits == 8 else 1e-4
        assert np.abs(source.read(0, source.frames) - x).max() < tolerance, (bits, tag)


def test_stems_go_to_any_random_access_stream_and_are_rescaled_there():
    """A loud mix through the whole core into in-memory streams, as the browser's files would be."""
    kept = {}

    class Stream(io.BytesIO):
        def close(self):
            kept[self.name] = self.getvalue()
            super().close()

    def open_stream(stem):
        s = Stream()
        s.name = stem
        return s

    class Doubling:  # every stem is the mix twice over: beyond full scale wherever the mix passes half
        def run(self, wave, spec):
            return np.zeros((1, 4, 4, FREQ_BINS, FRAMES), np.float32), np.repeat(2 * wave[:, None], 4, axis=1)

    x = _song(0.5)
    x *= 0.9 / np.abs(x).max()
    sink = WavStems("wav16", open_stream)
    run_sync(separate(_source(wav_bytes(_pcm16(x), 2, RATE, 16)), Doubling(), sink))
    assert sorted(kept) == ["bass", "drums", "other", "vocals"]
    assert any("all stems lowered by" in m for m in sink.messages()), sink.messages()
    for data in kept.values():
        out = wav_source(io.BytesIO(data)).read(0, x.shape[1])
        assert len(data) == len(wav.header("wav16", 2, 44_100, x.shape[1])) + 4 * x.shape[1] and 0.99 < np.abs(out).max() <= 1.0
