"""The note decoding of pycore/transcribe.py on made-up model outputs (no model needed): the
windowing and timing, the notes recovered from a score, the bounded-memory decoding agreeing
with decoding at once, the pitch range and the monophonic mode, and the options' messages."""

from __future__ import annotations

import numpy as np

from pycore.notes_contract import HOP, LOWEST_MIDI, PITCHES, SAMPLE_RATE, WINDOW, WINDOW_FRAMES
from pycore.separate import run_sync
from pycore.stem_notes import NotesTap, midi_stems
from pycore.transcribe import (
    FRAMES_PER_WINDOW,
    LEAD,
    STRIDE,
    NoteOptions,
    NoteTracker,
    Transcriber,
    frame_time,
    frames_for,
    parse_note,
)
from support.core import raises


class ScoreRunner:
    """A stand-in for the model: each window's frames are read from activations drawn from a
    score (the audio is ignored, windows come in order), as the real model lays them out."""

    def __init__(self, score: list[tuple[float, float, int]], seconds: float, level: float = 0.9):
        n = frames_for(int(seconds * SAMPLE_RATE)) + 2 * WINDOW_FRAMES
        self.note = np.zeros((n, PITCHES), np.float32)
        self.onset = np.zeros((n, PITCHES), np.float32)
        times = frame_time(np.arange(n))
        for start, end, pitch in score:
            on = (times >= start) & (times < end)
            self.note[on, pitch - LOWEST_MIDI] = level
            first = int(np.argmax(on))
            self.onset[first, pitch - LOWEST_MIDI] = level
        self.windows = 0

    def run(self, audio: np.ndarray):
        assert audio.shape == (WINDOW,) and audio.dtype == np.float32
        w = self.windows
        self.windows += 1
        # Window w's frame j is kept frame w * 142 + j - 15: pad the first window's lead-in.
        rows = np.arange(WINDOW_FRAMES) + w * FRAMES_PER_WINDOW - 15
        pick = lambda a: np.where((rows >= 0)[:, None], a[np.clip(rows, 0, None)], 0)  # noqa: E731
        return pick(self.note), pick(self.onset), np.zeros((WINDOW_FRAMES, 3 * PITCHES), np.float32)


def transcribe(score, seconds, options=NoteOptions(), block=10_000, tracker=None):
    runner = ScoreRunner(score, seconds)
    t = Transcriber(runner, options, tracker)

    async def go():
        samples = int(seconds * SAMPLE_RATE)
        for start in range(0, samples, block):
            await t.feed(np.zeros(min(block, samples - start), np.float32))
        return await t.finish()

    return run_sync(go()), runner


SCORE = [(0.5, 1.0, 40), (1.0, 1.5, 43), (1.6, 2.6, 45), (3.0, 3.4, 40), (3.4, 3.8, 40), (5.0, 7.5, 52), (6.0, 6.5, 64)]


def test_frames_cover_the_audio_and_times_follow_the_windows():
    assert frames_for(0) == 0
    assert frames_for(1) == 1 and frames_for(HOP) == 1 and frames_for(HOP + 1) == 2
    assert frames_for(STRIDE) == FRAMES_PER_WINDOW and frames_for(STRIDE + 1) == FRAMES_PER_WINDOW + 1
    seconds = 100.0
    n = frames_for(int(seconds * SAMPLE_RATE))
    assert frame_time(n - 1) < seconds <= frame_time(n - 1) + 2 * HOP / SAMPLE_RATE
    t = frame_time(np.arange(n))
    assert np.all(np.diff(t) > 0) and np.all(np.diff(t) <= HOP / SAMPLE_RATE + 1e-12)
    assert LEAD == 15 * HOP  # the zeros before the audio line window 0's 16th frame up with sample 0


def test_a_score_comes_back_note_for_note():
    notes, runner = transcribe(SCORE, 9.0)
    assert runner.windows == -(-int(9.0 * SAMPLE_RATE) // STRIDE), runner.windows
    got = [(round(n.start, 2), round(n.end, 2), n.pitch) for n in notes]
    assert [g[2] for g in got] == [p for _, _, p in SCORE], got
    for (start, end, pitch), n in zip(SCORE, notes):
        assert abs(n.start - start) <= 0.012 and abs(n.end - end) <= 0.012, (start, end, pitch, n)
        assert n.velocity == round(127 * 0.9) and n.bends is None


def test_a_range_keeps_only_its_notes():
    notes, _ = transcribe(SCORE, 9.0, NoteOptions(lowest=41, highest=52))
    assert sorted({n.pitch for n in notes}) == [43, 45, 52], notes


def test_monophonic_keeps_the_louder_and_cuts_what_it_overlaps():
    notes, _ = transcribe(SCORE, 9.0, NoteOptions(monophonic=True))
    for a, b in zip(notes, notes[1:]):
        assert a.end <= b.start + 1e-9, (a, b)
    # 64 sounds inside 52: both equally loud, the one found first (longer) stays whole.
    assert [n.pitch for n in notes].count(64) + [n.pitch for n in notes].count(52) >= 1


def test_decoding_a_minute_at_a_time_finds_the_notes_of_decoding_at_once():
    rng = np.random.default_rng(1)
    score, t = [], 0.3
    while t < 170:  # under three minutes of notes, some long, some chords
        length = float(rng.choice([0.2, 0.4, 0.8, 3.0]))
        pitch = int(rng.integers(30, 80))
        score.append((t, t + length, pitch))
        if rng.random() < 0.3:
            score.append((t, t + length, pitch + 4))
        t += length + float(rng.choice([0.0, 0.1, 0.3]))
    whole, _ = transcribe(score, 175, tracker=NoteTracker(NoteOptions(), core=10**9))
    assert len(whole) >= 0.95 * len(score), (len(whole), len(score))
    key = lambda n: (round(n.start, 3), n.pitch, round(n.end, 3))  # noqa: E731
    for core, context in ((1_000, 400), (300, 400)):  # also pieces shorter than their context
        pieces, _ = transcribe(score, 175, tracker=NoteTracker(NoteOptions(), core=core, context=context))
        assert sorted(map(key, pieces)) == sorted(map(key, whole)), (core, set(map(key, pieces)) ^ set(map(key, whole)))


def test_the_tracker_holds_a_bounded_stretch_of_frames():
    tracker = NoteTracker(NoteOptions(), core=1_000, context=400)
    block = np.zeros((FRAMES_PER_WINDOW, PITCHES), np.float32)
    most = 0
    for _ in range(200):  # ~330 s of frames
        tracker.push(block, block, np.zeros((FRAMES_PER_WINDOW, 3 * PITCHES), np.float32))
        most = max(most, len(tracker._note))
    assert most <= 1_000 + 2 * 400 + FRAMES_PER_WINDOW, most
    assert tracker.finish(200 * FRAMES_PER_WINDOW) == []


def test_silence_and_nothing_give_no_notes():
    assert transcribe([], 3.0)[0] == []
    assert transcribe([], 0.0)[0] == []


def test_the_options_say_what_is_wrong():
    with raises(ValueError, "onset threshold must be between 0 and 1"):
        NoteOptions(onset_threshold=1.5)
    with raises(ValueError, "lowest note (60) is above the highest (40)"):
        NoteOptions(lowest=60, highest=40)
    with raises(ValueError, "MIDI number from 21 (A0) to 108 (C8)"):
        NoteOptions(highest=120)
    with raises(ValueError, "tempo must be 20 to 400 BPM"):
        NoteOptions(tempo=5)
    assert NoteOptions.for_stem("bass") == NoteOptions(lowest=28, highest=67, monophonic=True)
    assert NoteOptions.for_stem("bass", lowest=33, tempo=None).lowest == 33


def test_note_names():
    assert [parse_note(x) for x in ("E1", "G4", "C4", "F#2", "Bb3", "a0", "64")] == [28, 67, 60, 42, 58, 21, 64]
    with raises(ValueError, "not a note"):
        parse_note("H2")
    with raises(ValueError, "not a note"):
        parse_note("E")


def test_the_pitched_stems_are_transcribed_by_default():
    assert midi_stems(("drums", "bass", "other", "vocals")) == ("bass", "other", "vocals")
    assert midi_stems(("vocals", "instrumental")) == ("vocals",)
    assert midi_stems(("drums", "bass", "other", "vocals"), ("drums",)) == ("drums",)
    with raises(ValueError, "no 'bass' stem to transcribe"):
        midi_stems(("vocals", "instrumental"), ("bass",))


def test_the_tap_passes_every_block_on_and_keeps_the_stems_audio():
    import io

    class Sink:
        def __init__(self):
            self.blocks = []

        def begin(self, stems, frames):
            self.stems = stems

        def write(self, block):
            self.blocks.append(block)

        def finish(self):
            self.finished = True

        def abort(self):
            pass

    scratch = {}
    sink = Sink()
    tap = NotesTap(sink, None, lambda stem: scratch.setdefault(stem, io.BytesIO()))
    frames = 44_100 * 3
    tap.begin(("drums", "bass", "other", "vocals"), frames)
    t = np.arange(frames) / 44_100
    tone = (0.5 * np.sin(2 * np.pi * 110 * t)).astype(np.float32)
    for start in range(0, frames, 30_000):
        block = np.zeros((4, 2, min(30_000, frames - start)), np.float32)
        block[1] = tone[start : start + block.shape[-1]]
        tap.write(block)
    tap.finish()
    assert sink.finished and sum(b.shape[-1] for b in sink.blocks) == frames
    assert sorted(scratch) == ["bass", "other", "vocals"]
    bass = np.frombuffer(scratch["bass"].getvalue(), "<f4")
    assert len(bass) == frames // 2, len(bass)
    assert abs(np.abs(bass[1000:-1000]).max() - 0.5) < 0.01  # the mono mix at 22,050 Hz, level kept
    assert not np.frombuffer(scratch["vocals"].getvalue(), "<f4").any()
