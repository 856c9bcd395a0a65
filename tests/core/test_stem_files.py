import io

import numpy as np
from support.core import raises

from pycore import wav
from pycore.stem_files import StemFiles, WavStems
from pycore.wav import WavReader


def test_stems_appear_under_their_names_only_when_complete(tmp_path):
    sink = StemFiles(tmp_path / "Song", "wav24")
    sink.begin(("vocals", "instrumental"), 10)
    sink.write(np.full((2, 2, 6), 0.25, np.float32))
    names = sorted(p.name for p in (tmp_path / "Song").iterdir())
    assert names == ["instrumental.wav.part", "vocals.wav.part"]
    sink.write(np.full((2, 2, 4), -0.5, np.float32))
    sink.finish()
    assert sorted(p.name for p in (tmp_path / "Song").iterdir()) == ["instrumental.wav", "vocals.wav"]
    with open(tmp_path / "Song" / "vocals.wav", "rb") as f:
        audio = WavReader(f).read(0, 10)
    assert audio.shape == (2, 10) and np.allclose(audio[:, :6], 0.25) and np.allclose(audio[:, 6:], -0.5)


def test_abort_leaves_nothing_behind(tmp_path):
    sink = StemFiles(tmp_path / "Song", "wav16")
    sink.begin(("drums", "bass", "other", "vocals"), 100)
    sink.write(np.zeros((4, 2, 50), np.float32))
    sink.abort()
    assert list((tmp_path / "Song").iterdir()) == []


# Clip modes: rescale (default), clamp; float32 is never altered.


class _Kept(io.BytesIO):
    """A stream whose bytes survive close(), as a file's do."""

    def close(self):
        self.kept = self.getvalue()
        super().close()


def _run(fmt, stems, clip=None, stream=_Kept, block=50_000):
    """Write `stems` float [n_stems, 2, frames] through WavStems; return (sink, decoded stems, raw files)."""
    streams = {}
    kwargs = {} if clip is None else {"clip": clip}
    sink = WavStems(fmt, lambda stem: streams.setdefault(stem, stream()), **kwargs)
    names = tuple(f"s{i}" for i in range(len(stems)))
    sink.begin(names, stems.shape[-1])
    for start in range(0, stems.shape[-1], block):
        sink.write(stems[..., start : start + block])
    sink.finish()
    raw = [streams[n].kept for n in names]
    decoded = np.stack([WavReader(io.BytesIO(r)).read(0, stems.shape[-1]) for r in raw])
    return sink, decoded, raw


def _loud(frames=150_000, peak=2.0):
    """Two stems: s0 peaks at `peak` (beyond full scale), s1 stays at 0.5."""
    t = np.arange(frames) / 44_100
    s0 = peak * np.sin(2 * np.pi * 220 * t)
    s1 = 0.5 * np.sin(2 * np.pi * 330 * t + 1)
    return np.stack([np.stack([s0, -s0]), np.stack([s1, s1])]).astype(np.float32)


def test_rescale_is_the_default_and_lowers_all_stems_by_one_gain():
    stems = _loud()
    for fmt, bits in (("wav16", 16), ("wav24", 24)):
        sink, back, raw = _run(fmt, stems)  # more frames than one transcode block: exercises the in-place loop
        full = ((1 << (bits - 1)) - 1) / (1 << (bits - 1))
        gain = full / np.abs(stems).max()
        head = len(wav.header(fmt, 2, 44_100, stems.shape[-1]))
        assert all(len(r) == head + stems.shape[-1] * 2 * bits // 8 for r in raw), fmt  # float scratch truncated
        assert np.abs(back - stems * gain).max() < 2.0 / (1 << (bits - 1)), fmt
        assert np.allclose(back.sum(axis=0), stems.sum(axis=0) * gain, atol=4.0 / (1 << (bits - 1)))
        assert sink.clipped == {} and sink.report["s0"].gain == sink.report["s1"].gain < 0.51
        assert abs(sink.report["s0"].peak_dbfs - 6.02) < 0.01
        messages = sink.messages()
        assert messages == ["s0: peaks reached +6.0 dBFS; all stems lowered by 6.0 dB so none clips"], messages


def test_rescale_leaves_stems_within_full_scale_untouched():
    stems = _loud(peak=0.9)
    sink, back, raw = _run("wav16", stems, "rescale")
    clamp_sink, clamp_back, clamp_raw = _run("wav16", stems, "clamp")
    assert raw == clamp_raw and sink.messages() == [] and sink.report["s0"].gain == 1.0


def test_clamp_clamps_and_counts():
    stems = _loud(frames=10_000)
    sink, back, _ = _run("wav16", stems, "clamp")
    assert np.abs(back).max() <= 1.0 and np.allclose(back[1], stems[1], atol=1 / 32768)
    ints = np.round(stems[0].astype(np.float64) * 32768)
    expected = int(np.count_nonzero((ints > 32767) | (ints < -32768)))
    assert expected > 1000 and sink.clipped == {"s0": expected} and sink.report["s0"].clamped == expected
    assert sink.messages() == [f"s0: {expected:,} samples clamped to full scale"]


def test_float32_keeps_levels_beyond_full_scale_and_says_so():
    stems = _loud(frames=10_000)
    for clip in ("rescale", "clamp"):
        sink, back, _ = _run("float32", stems, clip)
        assert np.array_equal(back, stems)
        assert sink.messages() == ["s0: peaks reached +6.0 dBFS; kept as they are in the float output (no clipping)"]


def test_a_write_only_stream_falls_back_to_clamping_and_says_so():
    class WriteOnly:
        def __init__(self):
            self._buf = _Kept()

        def write(self, data):
            return self._buf.write(data)

        def close(self):
            self._buf.close()
            self.kept = self._buf.kept

    sink, back, _ = _run("wav16", _loud(frames=5_000), stream=WriteOnly)
    assert sink.clipped["s0"] > 0 and "clamping instead" in sink.messages()[0]


def test_unknown_clip_mode_or_format_is_refused():
    with raises(ValueError, "clip mode"):
        WavStems("wav16", lambda stem: _Kept(), clip="limit")
    with raises(ValueError, "unknown format"):
        WavStems("mp3", lambda stem: _Kept())


def test_rescaled_stem_files_appear_only_when_complete_and_abort_cleans_up(tmp_path):
    stems = _loud(frames=20_000)
    sink = StemFiles(tmp_path / "Song", "wav16")
    sink.begin(("vocals", "drums"), 20_000)
    sink.write(stems[..., :10_000])
    assert sorted(p.name for p in (tmp_path / "Song").iterdir()) == ["drums.wav.part", "vocals.wav.part"]
    sink.abort()
    assert list((tmp_path / "Song").iterdir()) == []
    sink = StemFiles(tmp_path / "Song", "wav16")
    sink.begin(("vocals", "drums"), 20_000)
    sink.write(stems)
    sink.finish()
    assert sorted(p.name for p in (tmp_path / "Song").iterdir()) == ["drums.wav", "vocals.wav"]
    with open(tmp_path / "Song" / "vocals.wav", "rb") as f:
        reader = WavReader(f)
        assert reader.frames == 20_000 and reader.info.bits == 16
        assert 0.99 < np.abs(reader.read(0, 20_000)).max() <= 1.0
