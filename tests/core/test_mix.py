"""The mix you hear, rendered offline (pycore/mix.py) from stem WAVs: a stem alone is exactly that
stem, muted stems are left out, all muted is digital silence, stems not of one song are refused."""

import io

import numpy as np
from support.core import Collect, music_like, raises

from pycore.mix import mix_stems
from pycore.separate import Cancelled, run_sync
from pycore.sources import wav_source
from pycore.stem_files import EncodedStems, WavStems
from pycore.wav import WavReader, WavWriter

STEMS = ("drums", "bass", "other", "vocals")
FRAMES = 70_001  # more than one block, and not a multiple of one


class Kept(io.BytesIO):
    def close(self):
        pass


def _stem_wavs(frames=FRAMES, fmt="wav16", rate=44_100, channels=2):
    """Four stems as the library holds them: WAV files, here in memory."""
    files = {}
    for k, stem in enumerate(STEMS):
        f = io.BytesIO()
        audio = music_like(frames, seed=k, rate=rate) * 0.5
        WavWriter(f, fmt, channels, rate, frames).write(audio[:channels])
        files[stem] = f.getvalue()
    return files


def _sources(files):
    return {stem: wav_source(io.BytesIO(data)) for stem, data in files.items()}


def _mix(files, gains, fmt="wav16", clip="rescale", block=65536):
    out = Kept()
    frames = run_sync(mix_stems(_sources(files), gains, WavStems(fmt, lambda stem: out, clip), block))
    return frames, WavReader(io.BytesIO(out.getvalue())), out.getvalue()


def _data(wav_bytes, frames):
    return wav_bytes[-frames * 4 :]  # 16-bit stereo samples after the header


def test_a_stem_alone_is_exactly_that_stem():
    files = _stem_wavs()
    for solo in ("bass", "vocals"):
        frames, reader, raw = _mix(files, {s: 1.0 if s == solo else 0.0 for s in STEMS})
        assert frames == FRAMES and reader.frames == FRAMES
        assert _data(raw, FRAMES) == _data(files[solo], FRAMES), solo  # bit for bit


def test_muting_one_leaves_the_sum_of_the_others_at_their_gains():
    files = _stem_wavs()
    gains = {"drums": 0.5, "bass": 0.0, "other": 1.0, "vocals": 0.8}
    _, reader, _ = _mix(files, gains, fmt="float32", block=10_000)
    got = reader.read(0, FRAMES)
    stems = {s: WavReader(io.BytesIO(files[s])).read(0, FRAMES) for s in STEMS}
    want = sum(stems[s].astype(np.float64) * g for s, g in gains.items())
    assert np.abs(got - want).max() < 1e-6
    # and a stem without a gain plays at 1: the same mix
    _, again, _ = _mix(files, {"drums": 0.5, "bass": 0.0, "vocals": 0.8}, fmt="float32")
    assert np.array_equal(again.read(0, FRAMES), got)


def test_everything_muted_is_digital_silence():
    files = _stem_wavs()
    for fmt in ("wav16", "float32"):
        _, reader, raw = _mix(files, dict.fromkeys(STEMS, 0.0), fmt=fmt)
        assert reader.frames == FRAMES and not np.any(reader.read(0, FRAMES))
        assert set(raw[-FRAMES * 4 :]) == {0}


def test_a_loud_mix_is_rescaled_like_stems_and_says_so():
    files = _stem_wavs()
    sink = WavStems("wav16", lambda stem: Kept())
    run_sync(mix_stems(_sources(files), dict.fromkeys(STEMS, 4.0), sink))
    assert sink.report["mix"].gain < 1, sink.report
    assert [m for m in sink.messages() if "; lowered by " in m and "all stems" not in m], sink.messages()


def test_stems_not_of_one_song_are_refused_in_words():
    files = _stem_wavs()
    files["vocals"] = _stem_wavs(frames=FRAMES - 1)["vocals"]
    sink = Collect()
    with raises(ValueError, "not the same length"):
        run_sync(mix_stems(_sources(files), {}, sink))
    assert not hasattr(sink, "state")  # refused before anything was begun
    for odd in (_stem_wavs(rate=48_000), _stem_wavs(channels=1)):
        with raises(ValueError, "is not a 44.1 kHz stereo WAV"):
            run_sync(mix_stems(_sources(odd), {}, Collect()))
    files = _stem_wavs(frames=100)
    with raises(ValueError, "no voice stem"):
        run_sync(mix_stems(_sources(files), {"voice": 1.0}, Collect()))
    with raises(ValueError, "0 or more"):
        run_sync(mix_stems(_sources(files), {"bass": -1.0}, Collect()))
    with raises(ValueError, "no stems"):
        run_sync(mix_stems({}, {}, Collect()))


class Pause:
    """What a browser encoder's write returns when it is behind: awaited, here without suspending."""

    awaited = 0

    def __await__(self):
        Pause.awaited += 1
        return
        yield


class Encoder(Collect):
    def __init__(self, pause=False):
        self.begin((), 0)
        self.pause = pause

    def write(self, block):
        super().write(block)
        return Pause() if self.pause else None


def test_an_encoded_mix_gets_the_wav_mixes_integers_and_waits_for_a_busy_encoder():
    files = _stem_wavs()
    gains = {"drums": 0.7, "bass": 1.0, "other": 0.0, "vocals": 1.3}
    _, _, raw = _mix(files, gains, clip="clamp")
    wav_ints = np.frombuffer(_data(raw, FRAMES), dtype="<i2").reshape(-1, 2).T
    Pause.awaited = 0
    encoder = Encoder(pause=True)
    sink = EncodedStems("flac16", lambda stem, frames: encoder, "clamp")
    assert run_sync(mix_stems(_sources(files), gains, sink, block=30_000)) == FRAMES
    assert encoder.state == "finished" and np.array_equal(encoder.audio, wav_ints)
    assert Pause.awaited == 3  # once a block: the mix never runs ahead of the encoder


def test_cancelling_aborts_the_sink():
    encoder = Encoder()
    sink = EncodedStems("mp3-320", lambda stem, frames: encoder, "clamp")
    calls = []
    with raises(Cancelled, "cancelled"):
        run_sync(mix_stems(_sources(_stem_wavs()), {}, sink, block=20_000,
                           is_cancelled=lambda: calls.append(1) or len(calls) > 2))
    assert encoder.state == "aborted" and encoder.audio.shape == (2, 40_000)
