import io
import struct

import numpy as np
from support.core import as_file, raises, wav_bytes

from pycore import wav


def _round_trip(fmt, x):
    buf = io.BytesIO()
    writer = wav.WavWriter(buf, fmt, x.shape[0], 44_100, x.shape[1])
    writer.write(x[:, :123])
    writer.write(x[:, 123:])
    assert writer.complete
    buf.seek(0)
    reader = wav.WavReader(buf)
    return reader.read(0, reader.frames), reader


def test_16_and_24_bit_round_trips_are_bit_exact():
    rng = np.random.default_rng(1)
    for fmt, bits in (("wav16", 16), ("wav24", 24)):
        scale = 1 << (bits - 1)
        ints = rng.integers(-scale, scale, size=(2, 1000))
        ints[:, :2] = [[-scale, scale - 1], [0, 1]]  # the extremes too
        back, reader = _round_trip(fmt, (ints / scale).astype(np.float32))
        assert reader.info.bits == bits and not reader.info.float
        assert np.array_equal(np.round(back.astype(np.float64) * scale).astype(np.int64), ints), fmt


def test_float32_round_trip_is_exact_and_has_a_fact_chunk():
    x = np.random.default_rng(2).uniform(-1.5, 1.5, size=(2, 500)).astype(np.float32)
    back, reader = _round_trip("float32", x)
    assert reader.info.float and np.array_equal(back, x)
    assert b"fact" in wav.header("float32", 2, 44_100, 500)


def test_writer_reports_clamped_samples():
    buf = io.BytesIO()
    writer = wav.WavWriter(buf, "wav16", 2, 44_100, 3)
    writer.write(np.array([[0.5, 1.2, -1.5], [0.0, 0.0, 0.0]], dtype=np.float32))
    assert writer.clipped == 2


def test_reads_every_pcm_and_float_width():
    x = np.array([[0.5, -0.25, 0.0], [-1.0, 0.75, 0.125]])
    inter = x.T.reshape(-1)
    cases = {
        (8, 1): ((inter * 128 + 128).astype(np.uint8).tobytes()),
        (16, 1): (inter * 32768).astype("<i2").tobytes(),
        (32, 1): (inter * 2**31).astype("<i4").tobytes(),
        (32, 3): inter.astype("<f4").tobytes(),
        (64, 3): inter.astype("<f8").tobytes(),
    }
    for (bits, tag), payload in cases.items():
        for extensible in (False, True):
            reader = wav.WavReader(as_file(wav_bytes(payload, 2, 48_000, bits, tag, extensible)))
            assert reader.sample_rate == 48_000 and reader.frames == 3
            assert np.allclose(reader.read(0, 3), x, atol=1e-6), (bits, tag, extensible)


def test_reads_24_bit_negative_values():
    ints = np.array([-(1 << 23), -1, 1, (1 << 23) - 1], dtype="<i4")
    payload = ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    reader = wav.WavReader(as_file(wav_bytes(payload, 1, 44_100, 24)))
    assert np.array_equal(reader.read(0, 4)[0] * (1 << 23), ints)


def test_chunks_in_any_order_and_odd_sizes():
    odd_chunk = b"LIST" + struct.pack("<I", 3) + b"abc" + b"\x00"  # padded to even
    payload = np.array([1000, -1000], dtype="<i2").tobytes()
    reader = wav.WavReader(as_file(wav_bytes(payload, 2, 44_100, 16, chunks_before=odd_chunk)))
    assert reader.frames == 1 and np.allclose(reader.read(0, 1)[:, 0], [1000 / 32768, -1000 / 32768])


def test_random_access_reads_the_right_frames():
    payload = np.arange(200, dtype="<i2").tobytes()  # 100 stereo frames
    reader = wav.WavReader(as_file(wav_bytes(payload, 2, 44_100, 16)))
    block = reader.read(40, 5)
    assert np.array_equal(np.round(block[0] * 32768), np.arange(80, 90, 2))
    assert reader.read(98, 10).shape == (2, 2)  # clipped at the end


def test_header_claiming_more_data_than_the_file_holds_is_read_with_a_warning():
    payload = np.zeros(20, dtype="<i2").tobytes()
    reader = wav.WavReader(as_file(wav_bytes(payload, 2, 44_100, 16, declared=10**9)))
    assert reader.frames == 10
    assert any("truncated" in w for w in reader.info.warnings)


def test_bad_files_get_plain_messages():
    with raises(wav.WavError, "empty"):
        wav.WavReader(as_file(b""))
    with raises(wav.WavError, "not a wav"):
        wav.WavReader(as_file(b"ID3\x03hello this is an mp3 pretending"))
    with raises(wav.WavError, "fmt"):
        wav.WavReader(as_file(b"RIFF\x04\x00\x00\x00WAVE"))
    no_data = wav_bytes(b"", 2, 44_100, 16)[:-8]  # drop the data chunk header
    with raises(wav.WavError, "data"):
        wav.WavReader(as_file(no_data))
    with raises(wav.WavError, "unsupported"):
        wav.WavReader(as_file(wav_bytes(b"\x00" * 8, 2, 44_100, 4, tag=2)))  # ADPCM
    with raises(wav.WavError, "inconsistent"):
        bad = bytearray(wav_bytes(b"\x00" * 8, 2, 44_100, 16))
        bad[32:34] = struct.pack("<H", 3)  # block align
        wav.WavReader(as_file(bytes(bad)))


def test_output_over_4_gb_is_refused_with_a_reason():
    with raises(wav.WavError, "4 GB"):
        wav.header("float32", 2, 44_100, 600_000_000)
