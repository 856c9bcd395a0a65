"""The waveform overview (pycore/peaks.py): (min, max) of both channels per PEAKS_BIN frames as
int8 of full scale 127, however the blocks fall, written at the gain the stems got; and the
chain separate_file builds for the library (sink -> PlayCopy -> PeaksTap)."""

import io

import numpy as np
from support.core import Collect, music_like, raises

from pycore.peaks import PEAKS_BIN, PeaksTap, peaks_of, read_peaks
from pycore.separate import run_sync
from pycore.stem_files import EncodedStems, PlayCopy, WavStems
from pycore.wav import WavReader


class Kept(io.BytesIO):
    """A stream whose bytes survive close() (the sinks close theirs), as a file's do."""

    def close(self):
        pass


def test_peaks_of_known_signals_with_a_short_last_bin():
    n = 2 * PEAKS_BIN + 452
    x = np.zeros((2, n), np.float32)
    x[0, :PEAKS_BIN] = 0.25  # bin 0: left up, right at 0
    x[1, 10] = -1.0
    x[0, PEAKS_BIN] = 1.5  # bin 1: beyond full scale, clipped to 127
    x[1, 2 * PEAKS_BIN - 1] = -0.1
    x[0, n - 1] = -0.5  # the short last bin, its last frame
    p = peaks_of(x)
    assert p.dtype == np.int8 and p.shape == (3, 2)
    assert p.tolist() == [[-127, 32], [-13, 127], [-64, 0]], p.tolist()  # 0.25*127 = 31.75, 0.1*127 = 12.7
    assert peaks_of(np.zeros((2, 0), np.float32)).shape == (0, 2)


def test_blocks_split_anywhere_give_the_overview_of_the_whole():
    x = np.stack([music_like(5 * PEAKS_BIN + 77, seed=s) for s in (1, 2)])
    x[1, 1, PEAKS_BIN - 1], x[1, 0, PEAKS_BIN] = 0.9, -0.95  # either side of a boundary between blocks
    tap = PeaksTap(Collect(), lambda stem: files.setdefault(stem, Kept()))
    files = {}
    tap.begin(("a", "b"), x.shape[-1])
    for a, b in ((0, 1), (1, PEAKS_BIN), (PEAKS_BIN, PEAKS_BIN), (PEAKS_BIN, 3000), (3000, 3001), (3001, x.shape[-1])):
        tap.write(x[:, :, a:b])
    assert tap.finish() is None  # the sink's finish is plain: so is the tap's
    for i, stem in enumerate(("a", "b")):
        assert np.array_equal(read_peaks(files[stem].getvalue()), peaks_of(x[i])), stem
    b = read_peaks(files["b"].getvalue())
    assert b[0, 1] == round(0.9 * 127) and b[1, 0] == round(-0.95 * 127)
    assert tap.sink.state == "finished"


def test_file_format_is_min_max_pairs_and_round_trips():
    x = np.array([[0.5, -0.25] * PEAKS_BIN, [0.1, 0.0] * PEAKS_BIN], np.float32)  # two bins
    p = peaks_of(x)
    raw = p.tobytes()
    assert raw == bytes([(-32) & 0xFF, 64, (-32) & 0xFF, 64])  # min, max of bin 0, then bin 1
    assert np.array_equal(read_peaks(raw), p)
    with raises(ValueError, "odd number of bytes"):
        read_peaks(b"\x00\x01\x02")


def test_peaks_are_written_at_the_gain_the_rescaled_stems_got():
    frames = 3 * PEAKS_BIN + 5
    t = np.arange(frames) / 44_100
    loud = 2.0 * np.sin(2 * np.pi * 440 * t)
    x = np.stack([np.stack([loud, -loud]), np.full((2, frames), 0.4)]).astype(np.float32)
    stems, peaks = {}, {}
    tap = PeaksTap(WavStems("wav16", lambda s: stems.setdefault(s, Kept())), lambda s: peaks.setdefault(s, Kept()))
    tap.begin(("loud", "flat"), frames)
    tap.write(x[:, :, :1000])
    tap.write(x[:, :, 1000:])
    tap.finish()
    gain = tap.report["loud"].gain
    assert abs(gain - 32767 / 32768 / np.abs(x).max()) < 1e-9 and gain < 0.51, gain
    for i, stem in enumerate(("loud", "flat")):
        got = read_peaks(peaks[stem].getvalue()).astype(int)
        written = WavReader(io.BytesIO(stems[stem].getvalue())).read(0, frames)  # what the player shows
        assert np.abs(got - peaks_of(written).astype(int)).max() <= 1, stem
    assert read_peaks(peaks["flat"].getvalue())[0].tolist() == [25, 25]  # 0.4 * gain * 127 = 25.4, not 51
    assert np.abs(read_peaks(peaks["loud"].getvalue())).max() == 127  # lowered to full scale, not clipped from 254


class Encoder(Collect):
    def __init__(self):
        self.begin((), 0)


def test_the_library_chain_around_an_encoder_writes_stems_play_copies_and_peaks():
    x = np.stack([music_like(4 * PEAKS_BIN, seed=3), music_like(4 * PEAKS_BIN, seed=4) * 3.0])  # b over full scale
    encoders, scratch, play, peaks = {}, {}, {}, {}
    encoded = EncodedStems("flac16", lambda s, n: encoders.setdefault(s, Encoder()), "rescale",
                           open_scratch=lambda s: scratch.setdefault(s, Kept()))
    sink = PeaksTap(PlayCopy(encoded, lambda s: play.setdefault(s, Kept()), clip="rescale"),
                    lambda s: peaks.setdefault(s, Kept()))
    sink.begin(("a", "b"), x.shape[-1])
    sink.write(x[:, :, :1500])
    sink.write(x[:, :, 1500:])
    done = sink.finish()
    assert done is not None and not peaks  # EncodedStems finishes asynchronously: peaks come after it
    run_sync(done)
    gain = encoded.report["b"].gain
    assert gain < 0.99 and sink.report is encoded.report
    for i, stem in enumerate(("a", "b")):
        ints = np.frombuffer(play[stem].getvalue()[-x.shape[-1] * 4 :], dtype="<i2").reshape(-1, 2).T
        assert np.array_equal(encoders[stem].audio, ints), stem  # the play copy holds the FLAC's samples
        assert encoders[stem].state == "finished"
        assert np.array_equal(read_peaks(peaks[stem].getvalue()), _at_gain(x[i], gain)), stem
    assert sink.messages() == encoded.messages() and any("lowered" in m for m in sink.messages())


def _at_gain(samples, gain):
    """The overview of whole bins at a gain, as the tap makes it: float32 min and max times the gain."""
    lo = samples.reshape(2, -1, PEAKS_BIN).min(axis=(0, 2)).astype(np.float64) * (gain * 127)
    hi = samples.reshape(2, -1, PEAKS_BIN).max(axis=(0, 2)).astype(np.float64) * (gain * 127)
    return np.clip(np.round(np.stack([lo, hi], axis=-1)), -127, 127).astype(np.int8)


def test_play_copy_abort_aborts_both_and_its_messages_are_the_sinks():
    encoders, play = {}, {}
    encoded = EncodedStems("mp3-320", lambda s, n: encoders.setdefault(s, Encoder()), "clamp")
    sink = PlayCopy(encoded, lambda s: play.setdefault(s, Kept()), clip="clamp")
    sink.begin(("a",), 100)
    sink.write(np.full((1, 2, 50), 1.5, np.float32))
    sink.abort()
    assert encoders["a"].state == "aborted" and play["a"].getvalue()[:4] == b"RIFF"
    sink = PlayCopy(WavStems("wav24", lambda s: Kept(), clip="clamp"), lambda s: Kept(), clip="rescale")
    sink.begin(("a",), 10)
    sink.write(np.full((1, 2, 10), 1.5, np.float32))
    assert sink.finish() is None
    assert sink.report["a"].clamped == 20 and sink.play.report["a"].gain < 0.7  # each its own clip mode
    assert sink.messages() == sink.sink.messages() and not any("lowered" in m for m in sink.messages())
