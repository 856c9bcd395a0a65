"""EncodedStems: the clip policy before an encoder, integer quantising as WAV's, Opus resampled to
48 kHz, and what finish() and abort() do. A recording stand-in encoder takes the blocks."""

import numpy as np
from support.core import Collect, raises

from pycore import formats
from pycore.resample import StreamResampler
from pycore.separate import run_sync
from pycore.stem_files import EncodedStems, WavStems


class Recorder(Collect):
    """A stem's encoder: Collect's blocks, written by write() and ended by finish() or abort()."""

    def __init__(self):
        self.begin((), 0)


class Scratch:
    """A BytesIO that survives close() (EncodedStems closes its scratch streams)."""

    def __init__(self):
        import io

        self.f = io.BytesIO()

    def __getattr__(self, name):
        return getattr(self.f, name)

    def close(self):
        pass


def _run(fmt, stems, clip="rescale", scratch=True, block=7000):
    encoders = {}

    def open_encoder(stem, frames):
        encoders[stem] = Recorder()
        encoders[stem].frames = frames
        return encoders[stem]

    sink = EncodedStems(fmt, open_encoder, clip, open_scratch=(lambda stem: Scratch()) if scratch else None)
    names = tuple(f"s{i}" for i in range(len(stems)))
    sink.begin(names, stems.shape[-1])
    for a in range(0, stems.shape[-1], block):
        sink.write(stems[:, :, a : a + block])
    run_sync(sink.finish())
    return sink, encoders


def _stems(seed=0, frames=30_000, peak=None):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((2, 2, frames)) * 0.3).astype(np.float32)
    if peak is not None:
        x[1, 0, 1234] = peak
    return x


def test_flac_gets_exactly_the_integers_of_the_wav_for_both_clip_modes():
    for clip in ("rescale", "clamp"):
        x = _stems(peak=1.4)
        sink, enc = _run("flac16", x, clip)
        kept = {}
        wav = WavStems("wav16", lambda stem: kept.setdefault(stem, Scratch()), clip=clip)
        wav.begin(("s0", "s1"), x.shape[-1])
        wav.write(x)
        wav.finish()
        for i, stem in enumerate(("s0", "s1")):
            raw = kept[stem].getvalue()
            ints = np.frombuffer(raw[-x.shape[-1] * 4 :], dtype="<i2").reshape(-1, 2).T
            assert enc[stem].audio.dtype == np.int32 and np.array_equal(enc[stem].audio, ints), (clip, stem)
            assert enc[stem].state == "finished"
        assert sink.messages() == wav.messages(), (sink.messages(), wav.messages())


def test_rescale_lowers_every_stem_by_one_gain_before_a_lossy_encoder():
    x = _stems(peak=2.0)
    sink, enc = _run("mp3-320", x)
    gain = sink.report["s0"].gain
    assert abs(gain - 0.5) < 1e-6, gain  # full scale is 1.0 for a lossy format
    for i, stem in enumerate(("s0", "s1")):
        assert np.allclose(enc[stem].audio, x[i] * gain, atol=1e-7)
        assert np.abs(enc[stem].audio).max() <= 1.0
    assert any("lowered by 6.0 dB" in m for m in sink.messages()), sink.messages()


def test_clamp_counts_what_it_cut_and_without_scratch_rescale_falls_back_to_it():
    x = _stems(peak=1.5)
    for clip, scratch in (("clamp", True), ("rescale", False)):
        sink, enc = _run("mp3-v0", x, clip, scratch=scratch)
        assert sink.report["s1"].clamped >= 1 and np.abs(enc["s1"].audio).max() <= 1.0
        if not scratch:
            assert any("clamping instead" in m for m in sink.messages()), sink.messages()


def test_opus_stems_are_resampled_to_48k_whole():
    x = _stems(frames=44_100) * 0.5  # nothing to clamp
    sink, enc = _run("opus", x, "clamp", block=3001)
    whole = StreamResampler(44_100, 48_000, x.shape[-1]).push(x[0])
    assert enc["s0"].frames == 48_000 and enc["s0"].audio.shape == (2, 48_000)
    assert np.abs(enc["s0"].audio - whole).max() < 1e-5


def test_a_failure_aborts_every_encoder_and_wav_formats_are_refused():
    x = _stems()
    encoders = {}
    sink = EncodedStems("flac24", lambda stem, n: encoders.setdefault(stem, Recorder()), "clamp")
    sink.begin(("a", "b"), x.shape[-1])
    sink.write(x[:, :, :100])
    sink.abort()
    assert [e.state for e in encoders.values()] == ["aborted", "aborted"]
    with raises(ValueError, "WAV format"):
        EncodedStems("wav16", lambda stem, n: None)
    with raises(ValueError, "unknown format"):
        EncodedStems("ogg", lambda stem, n: None)
    assert formats.get("flac16").full_scale == 32767 / 32768 and formats.get("opus").full_scale == 1.0
