"""A small additive synthesiser: scores [(start s, end s, MIDI pitch, velocity)] as audio whose
notes are known exactly, for testing the transcription against ground truth."""

from __future__ import annotations

import numpy as np

RATE = 44_100
BASS = (1.0, 0.5, 0.3, 0.18, 0.1, 0.06)  # harmonics 1..6: a strong fundamental, the rest decaying
VOICE = (1.0, 0.25, 0.08)  # nearly a sine


def midi_hz(pitch: float) -> float:
    return 440.0 * 2 ** ((pitch - 69) / 12)


def render(score, seconds: float, harmonics=BASS, attack: float = 0.01, decay: float = 0.3,
           sustain: float = 0.6, release: float = 0.05, vibrato_cents: float = 0.0, vibrato_hz: float = 5.5,
           peak: float = 0.5) -> np.ndarray:
    """float32 [2, n] at 44.1 kHz: each note its harmonics under an attack/decay/release envelope
    (the release after the note's end), with optional vibrato; the whole scaled to `peak`."""
    n = round(seconds * RATE)
    out = np.zeros(n)
    for start, end, pitch, velocity in score:
        a = round(start * RATE)
        length = round((end - start + release) * RATE)
        t = np.arange(min(length, n - a)) / RATE
        held = end - start
        # Attack to 1, decay towards `sustain`, then a linear release from where it was at the end.
        env = np.minimum(t / attack, 1.0) * (sustain + (1 - sustain) * np.exp(-np.maximum(t - attack, 0) / decay))
        env = np.where(t < held, env, np.interp(held, t, env) * np.clip(1 - (t - held) / release, 0, 1))
        # Vibrato as a phase: the integral of the wobbling frequency.
        f = midi_hz(pitch) * 2 ** (vibrato_cents / 1200 * np.sin(2 * np.pi * vibrato_hz * t))
        phase = 2 * np.pi * np.cumsum(f) / RATE
        tone = sum(amp * np.sin(k * phase) for k, amp in enumerate(harmonics, 1) if k * f.max() < RATE / 2)
        out[a : a + len(t)] += velocity / 127 * env * tone
    out *= peak / max(np.abs(out).max(), 1e-9)
    return np.stack([out, out]).astype(np.float32)


def bass_line(bpm: float = 100.0) -> list[tuple[float, float, int, int]]:
    """A monophonic bass line, E1 to G3: 25 quarters, eighths and a half, some repeated notes, about 13 s."""
    beat = 60 / bpm
    # (MIDI pitch, beats); 28 = E1, 55 = G3.
    line = [(28, 1), (28, 1), (31, 0.5), (33, 0.5), (35, 1),
            (40, 1), (40, 0.5), (40, 0.5), (38, 1), (36, 1),
            (33, 1), (45, 0.5), (43, 0.5), (41, 1), (40, 1),
            (47, 1), (47, 1), (50, 0.5), (52, 0.5), (55, 1),
            (52, 1), (48, 0.5), (45, 0.5), (43, 1), (28, 2)]
    score, t = [], 0.5
    for i, (pitch, beats) in enumerate(line):
        length = beats * beat
        score.append((t, t + 0.85 * length, pitch, 80 + 30 * (i % 3 == 0)))  # slightly detached
        t += length
    return score


def melody(bpm: float = 90.0) -> list[tuple[float, float, int, int]]:
    """A monophonic vocal-like melody, C4 to C5, legato: 14 notes, about 12.5 s."""
    beat = 60 / bpm
    line = [(60, 1), (62, 1), (64, 1), (65, 1), (67, 2), (67, 1), (69, 1),
            (72, 2), (71, 1), (69, 1), (67, 2), (64, 1), (62, 1), (60, 2)]
    score, t = [], 0.5
    for pitch, beats in line:
        length = beats * beat
        score.append((t, t + 0.95 * length, pitch, 100))
        t += length
    return score
