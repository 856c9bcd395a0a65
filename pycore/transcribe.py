"""Notes from audio: Basic Pitch's model over the audio, window by window, then its notes.

What Basic Pitch 0.4.0 does (basic_pitch/inference.py and note_creation.py), and so what we do:
  1. the audio as mono at 22,050 Hz, after half the windows' overlap of zeros (3,840 samples);
  2. windows of 43,844 samples, 36,164 apart (30 frames shared), the last filled with zeros;
  3. the model's note, onset and contour frames for each, 15 frames cut from each side;
  4. onsets: the model's, raised where a key's note likelihood jumps (the smaller of its rise
     over one and over two frames, scaled to the onsets' maximum);
  5. every onset peak (a strict maximum in time) at or above the onset threshold, latest first,
     starts a note that lasts while the key's note likelihood stays at or above the frame
     threshold, gaps of up to 10 frames bridged; a note must be longer than the minimum length;
     it claims its key and both neighbours for its length;
  6. the "melodia trick": while any unclaimed likelihood is above the frame threshold, the
     strongest grows a note both ways by the same rule;
  7. velocity from the note's mean likelihood; pitch bends, where asked, from the contour
     (and dropped from notes that overlap another, as MIDI bends a whole channel).
Where we differ, on purpose: a frame's time follows its own window's position (the reference
applies one average correction, about 0.1 s off after an hour); the frames run to the end of
the audio (the reference drops the last 0.7 %); and the notes are decoded from 80 s of frames
at a time (60 s kept, 10 s of context each side), so memory stays bounded for any length. A
song of up to 70 s is decoded at once, exactly as the reference does. In a longer one each
stretch scales its inferred onsets (step 4) by its own maxima, so an onset near the threshold
may move by a frame or two (bench/midi.py: 4 of 215 notes, same F), and a note held for over
10 s across a 60 s boundary can end differently.
Ours too: a pitch range and a monophonic mode (one note at a time, the louder wins, legato kept), per stem.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, replace
from typing import Callable, Protocol

import numpy as np

from .notes_contract import (
    CONTOUR_BINS_PER_SEMITONE,
    HOP,
    LOWEST_MIDI,
    OVERLAP_FRAMES,
    PITCHES,
    SAMPLE_RATE,
    WINDOW,
    WINDOW_FRAMES,
)

_TRIM = OVERLAP_FRAMES // 2
FRAMES_PER_WINDOW = WINDOW_FRAMES - OVERLAP_FRAMES  # 142 kept
STRIDE = WINDOW - OVERLAP_FRAMES * HOP  # 36,164 samples between windows
LEAD = OVERLAP_FRAMES * HOP // 2  # zeros before the audio
GAP_FRAMES = 11  # a note ends after this many frames below the frame threshold
BEND_REACH = 25  # contour bins either side of a note's pitch searched for its bend
PITCH_BEND_RANGE = 2  # semitones, MIDI's default (what a bend of 8191 means)

# The notes each stem gets unless told otherwise (MIDI numbers; 28 = E1, 67 = G4).
STEM_DEFAULTS: dict[str, dict] = {
    "bass": {"lowest": 28, "highest": 67, "monophonic": True},  # a 4-string bass's range, one line
    "vocals": {"lowest": 36, "highest": 84, "monophonic": True},  # C2 to C6, the melody
    "other": {},
    "instrumental": {},
    "drums": {},  # unpitched: transcribed only when asked
}
MIDI_STEMS_DEFAULT = ("bass", "vocals", "other")


class NotesRunner(Protocol):
    """The note model: `run(audio [WINDOW] float32)` -> (note, onset, contour), each
    [WINDOW_FRAMES, bins] float32; or an awaitable of them (the browser's)."""

    def run(self, audio: np.ndarray): ...


@dataclass(frozen=True)
class NoteOptions:
    onset_threshold: float = 0.5  # Basic Pitch's defaults
    frame_threshold: float = 0.3
    min_note_ms: float = 127.7
    lowest: int | None = None  # MIDI note numbers, inclusive; None: the model's whole range
    highest: int | None = None
    monophonic: bool = False
    bends: bool = False
    melodia: bool = True
    tempo: float | None = None  # the song's BPM, for the MIDI file's grid; None: 120

    def __post_init__(self):
        for name in ("onset_threshold", "frame_threshold"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', ' ')} must be between 0 and 1, not {getattr(self, name)}")
        if not 0 <= self.min_note_ms <= 10_000:
            raise ValueError(f"the minimum note length must be 0 to 10,000 ms, not {self.min_note_ms}")
        top = LOWEST_MIDI + PITCHES - 1
        for name in ("lowest", "highest"):
            v = getattr(self, name)
            if v is not None and not LOWEST_MIDI <= v <= top:
                raise ValueError(f"the {name} note must be a MIDI number from {LOWEST_MIDI} (A0) to {top} (C8), not {v}")
        if self.lowest is not None and self.highest is not None and self.lowest > self.highest:
            raise ValueError(f"the lowest note ({self.lowest}) is above the highest ({self.highest})")
        if self.tempo is not None and not 20 <= self.tempo <= 400:
            raise ValueError(f"the tempo must be 20 to 400 BPM, not {self.tempo}")

    @classmethod
    def for_stem(cls, stem: str, **changes) -> "NoteOptions":
        """The stem's defaults (STEM_DEFAULTS), with `changes` (None values ignored) on top."""
        return cls(**{**STEM_DEFAULTS.get(stem, {}), **{k: v for k, v in changes.items() if v is not None}})

    @property
    def min_note_frames(self) -> int:
        return int(round(self.min_note_ms / 1000 * SAMPLE_RATE / HOP))  # as the reference rounds it


@dataclass(frozen=True)
class Note:
    start: float  # seconds
    end: float
    pitch: int  # MIDI note number
    velocity: int  # 1-127
    bends: tuple[int, ...] | None = None  # thirds of a semitone, evenly spread over the note


def frame_time(frame: int | np.ndarray) -> float | np.ndarray:
    """Seconds from the audio's start of kept frame `frame` (its window's own position)."""
    window, within = np.divmod(frame, FRAMES_PER_WINDOW)
    return (window * STRIDE + within * HOP) / SAMPLE_RATE


def frames_for(samples: int) -> int:
    """How many kept frames fall inside `samples` of audio at SAMPLE_RATE."""
    windows = -(-samples // STRIDE)
    if windows == 0:
        return 0
    last = samples - (windows - 1) * STRIDE  # samples in the last window's stretch
    return (windows - 1) * FRAMES_PER_WINDOW + min(FRAMES_PER_WINDOW, -(-last // HOP))


def _track(remaining: np.ndarray, t: int, key: int, step: int, stop: int, threshold: float, clear: bool) -> tuple[int, int]:
    """Walk from frame t along `key` (step +1 or -1) until GAP_FRAMES frames in a row are below
    threshold or `stop` is reached; returns where the walk stopped and the gap it ended on. With `clear`, each frame
    passed (and its two neighbouring keys) is claimed on the way, as melodia does."""
    gap = 0
    column = remaining[:, key]
    while (t < stop if step > 0 else t > stop) and gap < GAP_FRAMES:
        gap = gap + 1 if column[t] < threshold else 0
        if clear:
            remaining[t, max(key - 1, 0) : key + 2] = 0
        t += step
    return t, gap


def decode(note: np.ndarray, onset: np.ndarray, options: NoteOptions) -> list[tuple[int, int, int, float]]:
    """Note events [(start frame, end frame, MIDI pitch, amplitude)] from one stretch of frames."""
    n = len(note)
    if n == 0:
        return []
    frames = np.array(note, dtype=np.float32)
    onsets = np.array(onset, dtype=np.float32)
    lo = 0 if options.lowest is None else options.lowest - LOWEST_MIDI
    hi = PITCHES if options.highest is None else options.highest - LOWEST_MIDI + 1
    for a in (frames, onsets):
        a[:, :lo] = 0
        a[:, hi:] = 0
    # Onsets where the note likelihood jumps (step 4).
    rise = np.minimum(frames - _delayed(frames, 1), frames - _delayed(frames, 2))
    rise[rise < 0] = 0
    rise[:2] = 0
    if rise.max() > 0:
        onsets = np.maximum(onsets, onsets.max() * rise / rise.max())
    # Step 5: strict maxima in time (never the first or last frame), latest first.
    peak = np.zeros_like(onsets, dtype=bool)
    peak[1:-1] = (onsets[1:-1] > onsets[:-2]) & (onsets[1:-1] > onsets[2:])
    times, keys = np.nonzero(peak & (onsets >= options.onset_threshold))
    threshold, shortest = options.frame_threshold, options.min_note_frames
    remaining = frames.copy()
    events = []
    for t0, key in zip(times[::-1].tolist(), keys[::-1].tolist()):
        if t0 >= n - 1:
            continue
        t, gap = _track(remaining, t0 + 1, key, +1, n - 1, threshold, clear=False)
        end = t - gap
        if end - t0 <= shortest:
            continue
        remaining[t0:end, max(key - 1, 0) : key + 2] = 0
        events.append((t0, end, key + LOWEST_MIDI, float(frames[t0:end, key].mean())))
    if options.melodia:  # step 6
        while True:
            at = int(np.argmax(remaining))
            t_mid, key = divmod(at, PITCHES)
            if remaining[t_mid, key] <= threshold:
                break
            remaining[t_mid, key] = 0
            t, gap = _track(remaining, t_mid + 1, key, +1, n - 1, threshold, clear=True)
            end = t - 1 - gap
            t, gap = _track(remaining, t_mid - 1, key, -1, 0, threshold, clear=True)
            start = t + 1 + gap
            if end - start <= shortest:
                continue
            events.append((start, end, key + LOWEST_MIDI, float(frames[start:end, key].mean())))
    return events


def _delayed(x: np.ndarray, k: int) -> np.ndarray:
    """x shifted k frames later, zeros first."""
    out = np.zeros_like(x)
    out[k:] = x[:-k] if k < len(x) else 0
    return out


def bends_of(contour: np.ndarray, start: int, end: int, pitch: int) -> tuple[int, ...]:
    """A note's pitch, frame by frame, in thirds of a semitone from `pitch`: the contour's
    peak near it, weighted by a Gaussian (std 5 bins) around it (the reference's rule)."""
    bins = contour.shape[1]
    centre = (pitch - LOWEST_MIDI) * CONTOUR_BINS_PER_SEMITONE
    a, b = max(centre - BEND_REACH, 0), min(bins, centre + BEND_REACH + 1)
    offsets = np.arange(a, b) - centre
    weights = np.exp(-0.5 * (offsets / 5.0) ** 2)
    return tuple(int(v) for v in np.argmax(contour[start:end, a:b] * weights, axis=1) + offsets[0])


LEGATO_FRAMES = 3  # a note may start this close to the end of the one before it (legato, a slide)


def _monophonic(events: list, shortest: int) -> list:
    """One note at a time, louder notes first. A quieter note that starts inside a kept one is
    dropped, unless it starts in that note's last LEGATO_FRAMES frames (a legato line: the kept
    note then ends where it starts); one that starts in the clear is cut short by a kept note
    starting inside it (and dropped if that leaves it too short)."""
    kept: list[list] = []
    for start, end, pitch, amp in sorted(events, key=lambda e: -e[3]):
        inside = [k for k in kept if k[0] <= start < k[1]]
        if inside:
            k = inside[0]
            if k[1] - start > LEGATO_FRAMES or start - k[0] <= shortest:
                continue
            k[1] = start
        end = min([end, *(k[0] for k in kept if start < k[0] < end)])
        if end - start <= shortest:
            continue
        kept.append([start, end, pitch, amp])
    return [tuple(k) for k in kept]


class NoteTracker:
    """Kept frames in, notes out: decodes CORE frames at a time with CONTEXT either side."""

    CORE = 5_200  # about 60 s
    CONTEXT = 870  # about 10 s

    def __init__(self, options: NoteOptions, core: int | None = None, context: int | None = None):
        self.options = options
        self.core = core or self.CORE
        self.context = self.CONTEXT if context is None else context
        self._note = np.zeros((0, PITCHES), np.float32)
        self._onset = np.zeros((0, PITCHES), np.float32)
        self._contour = np.zeros((0, PITCHES * CONTOUR_BINS_PER_SEMITONE), np.float32)
        self._base = 0  # global frame of the buffers' first row
        self._done = 0  # notes starting before this frame are out
        self.limit: int | None = None  # the audio's length in frames, once known: nothing past it is kept
        self.notes: list[Note] = []

    def push(self, note: np.ndarray, onset: np.ndarray, contour: np.ndarray) -> None:
        if self.limit is not None:
            room = max(self.limit - self._base - len(self._note), 0)
            note, onset, contour = note[:room], onset[:room], contour[:room]
        self._note = np.concatenate([self._note, note])
        self._onset = np.concatenate([self._onset, onset])
        if self.options.bends:
            self._contour = np.concatenate([self._contour, contour])
        while self._base + len(self._note) >= self._done + self.core + self.context:
            self._emit(self._done + self.core)
            self._done += self.core
            drop = max(self._done - self.context - self._base, 0)
            self._note, self._onset = self._note[drop:], self._onset[drop:]
            if self.options.bends:
                self._contour = self._contour[drop:]
            self._base += drop

    def finish(self, frames: int) -> list[Note]:
        """All the notes, once `frames` kept frames (the audio's length) have been pushed or more."""
        keep = max(frames - self._base, 0)
        self._note, self._onset, self._contour = self._note[:keep], self._onset[:keep], self._contour[:keep]
        self._emit(None)
        notes = sorted(self.notes, key=lambda x: (x.start, x.pitch))
        if self.options.bends:  # MIDI bends a whole channel: only notes on their own keep theirs
            for i, a in enumerate(notes):
                if any(b is not a and b.start < a.end and a.start < b.end for b in notes[max(i - 64, 0) : i + 64]):
                    notes[i] = replace(a, bends=None)
        return notes

    def _emit(self, until: int | None) -> None:
        events = decode(self._note, self._onset, self.options)
        if self.options.monophonic:
            events = _monophonic(events, self.options.min_note_frames)
        for start, end, pitch, amp in events:
            g = self._base + start
            if g < self._done or (until is not None and g >= until):
                continue
            bends = bends_of(self._contour, start, end, pitch) if self.options.bends else None
            velocity = min(127, max(1, int(round(127 * amp))))
            self.notes.append(Note(float(frame_time(g)), float(frame_time(self._base + end)), pitch, velocity, bends))


class Transcriber:
    """Mono audio at 22,050 Hz in, block by block (`await feed(x)`), notes out (`await finish()`)."""

    def __init__(self, runner: NotesRunner, options: NoteOptions = NoteOptions(), tracker: NoteTracker | None = None):
        self.runner = runner
        self.tracker = tracker or NoteTracker(options)
        self._buf = np.zeros(LEAD, np.float32)
        self._samples = 0

    async def feed(self, audio: np.ndarray) -> None:
        self._samples += len(audio)
        self._buf = np.concatenate([self._buf, np.asarray(audio, np.float32)])
        while len(self._buf) >= WINDOW:
            await self._window(self._buf[:WINDOW])
            self._buf = self._buf[STRIDE:]

    async def finish(self) -> list[Note]:
        frames = frames_for(self._samples)
        self.tracker.limit = frames  # the zeros that fill the last windows are not decoded
        while self._pushed() < frames:
            window = np.zeros(WINDOW, np.float32)
            window[: len(self._buf)] = self._buf[:WINDOW]
            await self._window(window)
            self._buf = self._buf[STRIDE:] if len(self._buf) > STRIDE else np.zeros(0, np.float32)
        return self.tracker.finish(frames)

    def _pushed(self) -> int:
        return self.tracker._base + len(self.tracker._note)

    async def _window(self, window: np.ndarray) -> None:
        result = self.runner.run(np.ascontiguousarray(window))
        note, onset, contour = (await result) if inspect.isawaitable(result) else result
        cut = slice(_TRIM, WINDOW_FRAMES - _TRIM)
        self.tracker.push(np.asarray(note)[cut], np.asarray(onset)[cut], np.asarray(contour)[cut])


class MonoTap:
    """A stem's audio at 44.1 kHz stereo in, 22,050 Hz mono float32 out, into `write` (a scratch file)."""

    def __init__(self, frames: int, rate: int, write: Callable[[bytes], object]):
        from .resample import StreamResampler

        self._resampler = StreamResampler(rate, SAMPLE_RATE, frames, channels=1)
        self._write = write

    def push(self, block: np.ndarray) -> None:
        mono = block.mean(axis=0, dtype=np.float32)[None]
        out = self._resampler.push(mono)[0]
        if len(out):
            self._write(out.astype("<f4").tobytes())


async def transcribe_stream(read: Callable[[int], bytes], runner: NotesRunner, options: NoteOptions,
                            on_progress: Callable[[int], None] | None = None) -> list[Note]:
    """Notes of mono float32 audio at 22,050 Hz read in blocks from `read(n bytes)` (a scratch)."""
    transcriber = Transcriber(runner, options)
    block = STRIDE * 8 * 4
    while True:
        data = read(block)
        if not data:
            break
        await transcriber.feed(np.frombuffer(data, "<f4"))
        if on_progress is not None:
            on_progress(transcriber._samples)
    return await transcriber.finish()


async def transcribe_source(source, runner: NotesRunner, options: NoteOptions, rate: int = 44_100) -> list[Note]:
    """Notes of a MixSource (stereo at `rate`), streamed: a block at a time."""
    pending: list[bytes] = []
    tap = MonoTap(source.frames, rate, pending.append)
    transcriber = Transcriber(runner, options)
    step = 1 << 18
    for start in range(0, source.frames, step):
        tap.push(source.read(start, min(step, source.frames - start)))
        for data in pending:
            await transcriber.feed(np.frombuffer(data, "<f4"))
        pending.clear()
    return await transcriber.finish()


_NAMES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def parse_note(text: str) -> int:
    """A MIDI note number from '28', 'E1', 'F#2' or 'Bb3' (C4 = 60, middle C)."""
    t = text.strip()
    if t.lstrip("-").isdigit():
        return int(t)
    name, rest = t[:1].upper(), t[1:]
    if name not in _NAMES:
        raise ValueError(f"{text!r} is not a note (write E1, F#2, Bb3 or a MIDI number)")
    shift = 0
    while rest[:1] in ("#", "b"):
        shift += 1 if rest[0] == "#" else -1
        rest = rest[1:]
    try:
        octave = int(rest)
    except ValueError:
        raise ValueError(f"{text!r} is not a note (write E1, F#2, Bb3 or a MIDI number)") from None
    return 12 * (octave + 1) + _NAMES[name] + shift
