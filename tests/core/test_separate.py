import numpy as np
from support.core import Collect, TimeBranchModel, fake_sources, music_like, raises

from pycore.model_contract import FRAMES, FREQ_BINS, SEGMENT
from pycore.separate import Cancelled, Options, pass_starts, run_sync, separate
from pycore.sources import ArraySource


def reference_apply_model(mix, overlap, starts, augment=()):
    """Demucs's apply_model + separate.py standardisation, on whole arrays, written plainly."""
    ref = mix.astype(np.float64).mean(axis=0)
    mean, std = ref.mean(), ref.std(ddof=1)
    x = (mix - mean) / std
    n = x.shape[1]
    weight = np.concatenate([np.arange(1, SEGMENT // 2 + 1), np.arange(SEGMENT - SEGMENT // 2, 0, -1)])
    weight = weight / weight.max()
    stride = int((1 - overlap) * SEGMENT)
    total, undo = 0, {"": lambda a: a, "negate": lambda a: -a, "swap": lambda a: a[..., ::-1, :]}
    for p, aug in [(p, a) for p in starts for a in ("", *augment)]:  # the view covers mix positions [p, n)
        view = n - p
        out, wsum = np.zeros((4, 2, view)), np.zeros(view)
        for off in range(0, view, stride):
            chunk = min(SEGMENT, view - off)
            delta = SEGMENT - chunk
            begin = p + off - delta // 2
            window = np.zeros((2, SEGMENT), np.float32)
            lo, hi = max(begin, 0), min(begin + SEGMENT, n)
            window[:, lo - begin : hi - begin] = x[:, lo:hi]
            res = undo[aug](fake_sources(undo[aug](window)))[..., delta // 2 : delta // 2 + chunk]
            out[..., off : off + chunk] += weight[:chunk] * res
            wsum[off : off + chunk] += weight[:chunk]
        total = total + (out / wsum)[..., -p:] if p else total + out / wsum
    return total / (len(starts) * (1 + len(augment))) * std + mean


def _separate(mix, **options):
    sink = Collect()
    report = run_sync(separate(ArraySource(mix), TimeBranchModel(), sink, Options(**options)))
    return sink, report


def test_streaming_matches_whole_array_apply_model():
    for length in (22_050, SEGMENT, 800_000):
        mix = music_like(length, seed=length)
        sink, report = _separate(mix)
        expected = reference_apply_model(mix, 0.25, [0])
        assert sink.audio.shape == (4, 2, length)
        assert np.abs(sink.audio - expected).max() < 1e-4, length
        assert report.segments == len(range(0, length, int(0.75 * SEGMENT)))


def test_shifts_and_overlap_match_whole_array_apply_model():
    mix = music_like(400_000, seed=3)
    for options in (dict(shifts=2, seed=5), dict(overlap=0.5), dict(overlap=0.0)):
        sink, _ = _separate(mix, **options)
        opts = Options(**options)
        expected = reference_apply_model(mix, opts.overlap, pass_starts(opts))
        assert np.abs(sink.audio - expected).max() < 1e-4, options


def test_augmented_passes_are_undone_and_averaged():
    mix = music_like(400_000, seed=4)
    mix[1] *= 0.5  # unequal channels, so a swap that is not undone would show
    for options in (dict(augment=("negate",)), dict(augment=("swap",), shifts=2, seed=1)):
        sink, report = _separate(mix, **options)
        opts = Options(**options)
        expected = reference_apply_model(mix, opts.overlap, pass_starts(opts), opts.augment)
        assert np.abs(sink.audio - expected).max() < 1e-4, options
        assert report.segments == 2 * max(1, opts.shifts) * len(range(0, 400_000, int(0.75 * SEGMENT)))


def test_presets_are_named_options_and_unknown_ones_are_refused():
    assert Options.preset("balanced") == Options()
    fast, best = Options.preset("fast", stems="two"), Options.preset("best")
    assert fast.stems == "two" and fast.overlap < Options().overlap
    assert best.shifts >= 2 and best.augment
    with raises(ValueError, match="presets are fast, balanced, best"):
        Options.preset("ultra")
    with raises(ValueError, match="augmentations are negate, swap"):
        Options(augment=("flip",))


def test_next_segment_starts_before_the_last_one_is_blended():
    events = []

    class Deferred:  # an awaitable that is already resolved: what a promise from a worker is
        def __init__(self, k, result):
            self.k, self.result = k, result

        def __await__(self):
            events.append(f"await {self.k}")
            return self.result
            yield  # makes this a generator that never suspends

    class StartsElsewhere(TimeBranchModel):
        def run(self, wave, spec):
            events.append(f"start {self.calls}")
            return Deferred(self.calls, super().run(wave, spec))

    run_sync(separate(ArraySource(music_like(600_000)), StartsElsewhere(), Collect(),
                      on_progress=lambda done, total: events.append(f"blended {done}")))
    assert events == ["blended 0", "start 0", "await 0", "start 1", "blended 1",
                      "await 1", "start 2", "blended 2", "await 2", "blended 3"]


def test_a_runner_with_two_sessions_gets_two_segments_at_once_and_the_same_stems():
    events = []

    class Deferred:
        def __init__(self, k, result):
            self.k, self.result = k, result

        def __await__(self):
            events.append(f"await {self.k}")
            return self.result
            yield

    class TwoSessions(TimeBranchModel):
        in_flight = 2

        def run(self, wave, spec):
            events.append(f"start {self.calls}")
            return Deferred(self.calls, super().run(wave, spec))

    mix = music_like(900_000)
    two = Collect()
    run_sync(separate(ArraySource(mix), TwoSessions(), two, Options(overlap=0.25),
                      on_progress=lambda done, total: events.append(f"blended {done}")))
    # Segment k+2 starts as soon as segment k is back, before k is blended; never more than two out.
    assert events == ["blended 0", "start 0", "start 1", "await 0", "start 2", "blended 1",
                      "await 1", "start 3", "blended 2", "await 2", "blended 3", "await 3", "blended 4"]
    one, _ = _separate(mix, overlap=0.25)
    assert two.state == "finished" and np.array_equal(two.audio, one.audio)


def test_two_stem_layout_is_vocals_and_the_rest():
    mix = music_like(30_000)
    four, _ = _separate(mix)
    two, report = _separate(mix, stems="two")
    assert report.stems == ("vocals", "instrumental")
    assert np.allclose(two.audio[0], four.audio[3], atol=1e-6)
    assert np.allclose(two.audio[1], four.audio[:3].sum(axis=0), atol=1e-5)


def test_frequency_branch_is_inverted_and_added():
    class VocalsAreTheSpectrum:
        def run(self, wave, spec):
            freq = np.zeros((1, 4, 4, FREQ_BINS, FRAMES), np.float32)
            freq[0, 3] = spec[0]  # same complex-as-channels layout in and out
            return freq, np.zeros((1, 4, 2, SEGMENT), np.float32)

    mix = music_like(500_000, seed=9)
    sink = Collect()
    run_sync(separate(ArraySource(mix), VocalsAreTheSpectrum(), sink))
    vocals = sink.audio[3]
    inner = slice(4096, -4096)  # Demucs's inverse is inexact at the song's very ends
    err = np.linalg.norm(vocals[:, inner] - mix[:, inner]) / np.linalg.norm(mix[:, inner])
    assert err < 1e-4, err


def test_output_streams_in_blocks_no_longer_than_a_segment():
    sink, report = _separate(music_like(1_300_000, seed=1))
    assert len(sink.blocks) == report.segments == 6
    assert max(b.shape[-1] for b in sink.blocks) <= SEGMENT


def test_progress_reports_every_segment():
    seen = []
    sink = Collect()
    run_sync(separate(ArraySource(music_like(600_000)), TimeBranchModel(), sink,
                      on_progress=lambda done, total: seen.append((done, total))))
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)] and sink.state == "finished"


def test_cancel_stops_promptly_and_aborts_the_sink():
    model, sink = TimeBranchModel(), Collect()
    with raises(Cancelled):
        run_sync(separate(ArraySource(music_like(1_300_000)), model, sink,
                          is_cancelled=lambda: model.calls >= 2))
    assert model.calls == 2 and sink.state == "aborted"


def test_a_failing_model_aborts_the_sink():
    class Broken:
        def run(self, wave, spec):
            raise RuntimeError("out of memory")

    sink = Collect()
    with raises(RuntimeError, "out of memory"):
        run_sync(separate(ArraySource(music_like(30_000)), Broken(), sink))
    assert sink.state == "aborted"


def test_silence_gives_silent_stems_and_says_so():
    sink, report = _separate(np.zeros((2, 50_000), np.float32))
    assert np.all(np.isfinite(sink.audio)) and np.abs(sink.audio).max() == 0
    assert any("silent" in w for w in report.warnings)


def test_empty_input_and_bad_options_are_refused_in_words():
    with raises(ValueError, "empty"):
        _separate(np.zeros((2, 0), np.float32))
    with raises(ValueError, "stems"):
        Options(stems="five")
    with raises(ValueError, "overlap"):
        Options(overlap=1.0)
    with raises(ValueError, "shifts"):
        Options(shifts=-1)
