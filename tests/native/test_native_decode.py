"""The command line's decoder for non-WAV files (libsndfile, read forward only): exact reads, damage handled."""

import numpy as np
import pytest
import soundfile as sf

from pycore.native_decode import DecodeError, _SoundFileReader, open_audio


@pytest.fixture(scope="module")
def flac(tmp_path_factory):
    path = tmp_path_factory.mktemp("decode") / "noise.flac"
    rng = np.random.default_rng(0)
    sf.write(path, rng.uniform(-0.5, 0.5, (44_100 * 60, 2)).astype(np.float32), 44_100, subtype="PCM_16")
    return path


def test_any_sequence_of_reads_matches_decoding_the_whole_file(flac):
    whole = sf.read(flac, dtype="float32", always_2d=True)[0].T
    reader = _SoundFileReader(flac)
    assert reader.frames == whole.shape[1] and reader.warnings == []
    rng = np.random.default_rng(1)
    start = 0
    for _ in range(80):  # mostly forward with overlaps, as the separator reads; sometimes far back
        start = int(np.clip(start + rng.integers(-400_000, 700_000), 0, whole.shape[1]))
        count = int(rng.integers(0, 400_000))
        got = reader.read(start, count)
        assert np.array_equal(got, whole[:, start : start + count]), (start, count)


def test_a_cut_short_flac_gives_what_decodes_and_says_so(flac, tmp_path):
    data = flac.read_bytes()
    half = tmp_path / "half.flac"
    half.write_bytes(data[: len(data) // 2])
    source = open_audio(half)
    assert 0.4 * 44_100 * 60 < source.frames < 0.55 * 44_100 * 60
    assert any("the file ends early" in w for w in source.warnings)
    tail = source.read(source.frames - 10_000, 10_000)
    assert tail.shape == (2, 10_000) and np.abs(tail).max() > 0.1  # real audio up to the end it reports
    sliver = tmp_path / "sliver.flac"
    sliver.write_bytes(data[:2000])
    with pytest.raises(DecodeError, match="damaged"):
        open_audio(sliver)
