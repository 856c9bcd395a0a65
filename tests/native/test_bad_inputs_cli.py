"""The bad-input corpus through the command line, as a user meets it: real music, the real model.

The corpus is generated here at test time (in a temporary folder) from 3 s of a
CC0 song: every sample rate, bit depth and channel count the issue lists, a
fifth of a second, pure silence, MP3 and FLAC whole and cut short, names in other
scripts, with slash-like characters and at the file system's length limit, and
files that are not audio or whose headers are broken. All of them go to ONE
`python -m pycore separate` call, good and bad interleaved, so the test also shows
that a bad file never stops the next one. Each good input must give four stems of
the right length at 44.1 kHz that add back up to the music and separate it (bass
SDR against the song's true bass); each bad one, a sentence that says what is wrong.
"""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from support.tracks import REPO, load_track

from pycore.metrics import sdr
from pycore.names import song_folder

RATE = 44_100
EXCERPT = slice(22 * RATE, 25 * RATE)  # 3 s of 2.Lithium with drums, bass and vocals (its bass starts at 21 s): one segment


@dataclass
class Case:
    path: Path
    frames: int = 0  # expected stem length at 44.1 kHz; 0 for an input that must fail
    error: str = ""  # words the failure message must contain
    notes: list[str] = field(default_factory=list)  # words the notes about this input must contain
    music: bool = True  # the stems must separate the song (not silence, not a cut-short fraction)
    band: float = RATE / 2  # the input's bandwidth, for comparing with the 44.1 kHz truth
    gain: float = 1.0  # the input's level relative to the excerpt
    residual: float = 0.02  # how far the stems may add up from the music (share of its energy)


def _resample(x: np.ndarray, rate: int) -> np.ndarray:
    """Band-limited resampling by the FFT, independent of the resampler under test."""
    n = x.shape[1]
    m = int(round(n * rate / RATE))
    spectrum = np.fft.rfft(x.astype(np.float64), axis=1)
    bins = min(spectrum.shape[1], m // 2 + 1)
    out = np.zeros((x.shape[0], m // 2 + 1), complex)
    out[:, :bins] = spectrum[:, :bins]
    return (np.fft.irfft(out, m, axis=1) * (m / n)).astype(np.float32)


def _lowpass(x: np.ndarray, band: float) -> np.ndarray:
    spectrum = np.fft.rfft(x.astype(np.float64), axis=1)
    spectrum[:, int(band / (RATE / 2) * (spectrum.shape[1] - 1)) :] = 0
    return np.fft.irfft(spectrum, x.shape[1], axis=1)


def _wav_header(channels: int, rate: int, bits: int, data_size: int, block=None) -> bytes:
    block = channels * bits // 8 if block is None else block
    fmt = struct.pack("<HHIIHH", 1, channels, rate, (rate * block) & 0xFFFFFFFF, block, bits)
    return (b"RIFF" + struct.pack("<I", min(36 + data_size, 0xFFFFFFFF)) + b"WAVE"
            + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", data_size))


def build_corpus(folder: Path, mix: np.ndarray) -> list[Case]:
    n = mix.shape[1]
    pcm16 = np.round(mix.T * 32767).astype("<i2").tobytes()
    cases: list[Case] = []

    def add(name: str, data: np.ndarray | bytes, rate: int = RATE, subtype: str = "PCM_16", **expect) -> None:
        path = folder / name
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            sf.write(path, data.T, rate, subtype=subtype)
        cases.append(Case(path, **expect))

    add("empty.wav", b"", error="the file is empty")
    for rate in (8_000, 22_050, 48_000, 96_000, 192_000):
        add(f"rate {rate}.wav", _resample(mix, rate), rate, "FLOAT", frames=-(-int(round(n * rate / RATE)) * RATE // rate),
            notes=[f"resampled from {rate} Hz"], band=min(rate, RATE) / 2)
    add("song.mp3", b"ID3 this is a text file that was named song.mp3\n" * 40, error="not an audio file")
    # An 8-bit file is normalised, as one would make it; its quantisation noise (~36 dB under the music) is not music,
    # and the model leaves part of it out of the stems, hence the wider residual.
    loudest = 0.9 / np.abs(mix).max()
    add("8-bit.wav", mix * loudest, RATE, "PCM_U8", frames=n, gain=loudest, residual=0.04)
    for subtype, name in (("PCM_16", "16-bit"), ("PCM_24", "Björk – 東京 ソング ♫ 24-bit"),
                          ("PCM_32", "AC／DC ∕ Back in Black 32-bit"), ("FLOAT", "float32"), ("DOUBLE", "Ω" * 125)):
        add(f"{name}.wav", mix, RATE, subtype, frames=n)  # "Ω" * 125 + ".wav" is 254 bytes: at the limit
    add("no format.wav", b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00", error="'fmt ' chunk")
    add("mono.wav", mix.mean(axis=0, keepdims=True), frames=n, notes=["mono input"])
    six = np.zeros((6, n), np.float32)
    six[0], six[1], six[2], six[3] = mix[0] * 0.6, mix[1] * 0.6, mix.mean(axis=0) * 0.3, 0.5  # DC on the LFE
    add("surround.wav", six, frames=n, notes=["6-channel input downmixed", "LFE dropped"])
    add("absurd rate.wav", _wav_header(2, 0xFFFFFFFF, 16, len(pcm16)) + pcm16, error="not a real audio rate")
    add("zero channels.wav", _wav_header(0, RATE, 16, len(pcm16)) + pcm16, error="0 channels")
    add("block align.wav", _wav_header(2, RATE, 16, len(pcm16), block=3) + pcm16, error="inconsistent")
    add("unfinished recording.wav", _wav_header(2, RATE, 16, 0xFFFFFFFF) + pcm16, frames=n,
        notes=["does not give the audio's length"])
    add("claims more.wav", _wav_header(2, RATE, 16, 4 * len(pcm16)) + pcm16[: len(pcm16) // 2], frames=n // 2,
        notes=["the file may be truncated"], music=False)
    add("cut wav.wav", (_wav_header(2, RATE, 16, len(pcm16)) + pcm16)[:30], error="'fmt ' chunk")
    add("a fifth of a second.wav", mix[:, : RATE // 5], frames=RATE // 5, music=False)
    add("silence.wav", np.zeros((2, RATE), np.float32), frames=RATE, notes=["the input is silent"], music=False)
    nan = mix.copy()
    nan[:, RATE] = np.nan
    add("not a number.wav", nan, RATE, "FLOAT", error="invalid samples (not-a-number or infinite) at 1.0 s")
    for fmt in ("MP3", "FLAC"):
        whole = folder / f"whole {fmt}.{fmt.lower()}"
        sf.write(whole, mix.T, RATE, format=fmt)
        cases.append(Case(whole, frames=sf.info(whole).frames, band=16_000 if fmt == "MP3" else RATE / 2))
        data = whole.read_bytes()
        add(f"half {fmt}.{fmt.lower()}", data[: len(data) // 2], frames=-1, notes=["the file ends early"], music=False)
        add(f"sliver {fmt}.{fmt.lower()}", data[: len(data) // 50], error="damaged")
    loud = mix * (4.5 / np.abs(mix).max())  # 13 dB over full scale: stems that sum to it must pass full scale
    add("loud.wav", loud, RATE, "FLOAT", frames=n, notes=["all stems lowered by"])
    return cases


@pytest.fixture(scope="module")
def song(testdata):
    mix, truth = load_track(testdata / "cc0-excerpts" / "2.Lithium")
    return mix[:, EXCERPT], {stem: x[:, EXCERPT] for stem, x in truth.items()}


@pytest.fixture(scope="module")
def corpus_run(song, model_path, tmp_path_factory):
    mix, _ = song
    folder = tmp_path_factory.mktemp("corpus")
    cases = build_corpus(folder, mix)
    out = folder / "stems"
    proc = subprocess.run([sys.executable, "-m", "pycore", "separate", *[str(c.path) for c in cases], "-o", str(out),
                           "--model", str(model_path)], cwd=REPO, capture_output=True, text=True, timeout=3600)
    return cases, out, proc


def _lines_about(stderr: str, case: Case) -> list[str]:
    """stderr lines about one input: 'demixer: <its name or path>: ...'."""
    names = (case.path.name, str(case.path))
    return [line for line in stderr.splitlines() if any(line.startswith(f"demixer: {n}: ") for n in names)]


def test_every_bad_file_gets_a_plain_message_and_the_run_goes_on(corpus_run):
    cases, out, proc = corpus_run
    assert "Traceback" not in proc.stderr, proc.stderr[-5000:]
    failing = [c for c in cases if c.error]
    assert proc.returncode == 1, proc.stderr[-5000:]
    summary = f"demixer: {len(failing)} of {len(cases)} inputs failed"
    assert summary in proc.stderr, [line for line in proc.stderr.splitlines() if line.startswith("demixer: /")]
    for case in failing:
        lines = _lines_about(proc.stderr, case)
        assert len(lines) == 1 and case.error in lines[0], (case.path.name, lines)
        assert not (out / song_folder(case.path.name)).exists(), case.path.name  # nothing half-written


def test_every_good_file_gives_four_full_length_stems_with_notes(corpus_run):
    cases, out, proc = corpus_run
    for case in (c for c in cases if not c.error):
        folder = out / song_folder(case.path.name)
        assert f"{case.path.name} -> {folder}/" in proc.stdout, (case.path.name, proc.stdout[-3000:])
        assert sorted(p.name for p in folder.iterdir()) == ["bass.wav", "drums.wav", "other.wav", "vocals.wav"]
        for stem in folder.iterdir():
            info = sf.info(stem)
            assert (info.samplerate, info.channels, info.subtype) == (RATE, 2, "PCM_16"), (case.path.name, stem)
            if case.frames > 0:
                assert info.frames == case.frames, (case.path.name, stem.name, info.frames)
        notes = " | ".join(_lines_about(proc.stderr, case))
        for words in case.notes:
            assert words in notes, (case.path.name, words, notes)


def test_the_music_is_separated_whatever_its_format(corpus_run, song):
    cases, out, proc = corpus_run
    mix, truth = song
    scores = {}
    for case in (c for c in cases if c.music and not c.error):
        folder = out / song_folder(case.path.name)
        stems = {s: sf.read(folder / f"{s}.wav", dtype="float32")[0].T for s in truth}
        total = sum(stems.values())
        if case.path.name == "loud.wav":  # 4.5/peak times the excerpt, then lowered by the one gain the note gives
            lowered = re.search(r"all stems lowered by (\d+\.\d) dB", " ".join(_lines_about(proc.stderr, case)))
            level = float((total * mix).sum() / (mix * mix).sum())
            expected = 4.5 / np.abs(mix).max() * 10 ** (-float(lowered[1]) / 20)
            assert abs(level / expected - 1) < 0.02, (level, expected)
            assert np.abs(total).max() > 0.9 * 1.0  # lowered just enough, not more
            total, stems = total / level, {s: x / level for s, x in stems.items()}
        total, stems = total / case.gain, {s: x / case.gain for s, x in stems.items()}
        if case.path.name.startswith(("mono", "surround")):
            # Another mix of the channels at another level, so no sample-exact reference: the bass, mono and
            # brought to the truth's level, is still the song's bass.
            bass = _lowpass(truth["bass"].mean(axis=0, keepdims=True), 400)
            estimate = _lowpass(stems["bass"].mean(axis=0, keepdims=True), 400)
            scores[case.path.name] = sdr(bass, estimate * (bass * estimate).sum() / (estimate**2).sum())
            continue
        reference = _lowpass(mix, case.band)
        residual = ((_lowpass(total, case.band) - reference) ** 2).sum() / (reference**2).sum()
        assert residual < case.residual, (case.path.name, residual)  # the stems add back up to the music
        scores[case.path.name] = sdr(_lowpass(truth["bass"], case.band), _lowpass(stems["bass"], case.band))
    print("bass SDR per input:", {k[:40]: round(float(v), 1) for k, v in scores.items()})
    assert len(scores) >= 16
    for name, score in scores.items():
        assert score > 8.0, (name, score)  # 2.Lithium's bass scores about 17 dB in the full song


def test_silence_and_a_fifth_of_a_second(corpus_run):
    cases, out, _ = corpus_run
    silent = [sf.read(p, dtype="float32")[0] for p in (out / "silence").iterdir()]
    assert all(np.isfinite(x).all() and np.abs(x).max() < 1e-3 for x in silent)
    short = {p.stem: sf.read(p, dtype="float32")[0].T for p in (out / "a fifth of a second").iterdir()}
    assert all(x.shape == (2, RATE // 5) and np.isfinite(x).all() for x in short.values())
    assert np.abs(sum(short.values())).max() > 0.01


def test_cut_short_compressed_files_give_what_decodes(corpus_run):
    cases, out, _ = corpus_run
    halves = [c for c in cases if c.path.name.startswith("half ")]
    assert len(halves) == 2
    for case in halves:  # the note that it ends early is checked with the other notes
        frames = sf.info(out / song_folder(case.path.name) / "vocals.wav").frames
        whole = sf.info(case.path.with_name(case.path.name.replace("half", "whole"))).frames
        assert 0.3 * whole < frames < 0.7 * whole, (case.path.name, frames, whole)


def test_clamp_mode_clamps_and_says_how_much(corpus_run, model_path, tmp_path):
    cases, out, _ = corpus_run
    loud = next(c for c in cases if c.path.name == "loud.wav")
    proc = subprocess.run([sys.executable, "-m", "pycore", "separate", str(loud.path), "-o", str(tmp_path),
                           "--model", str(model_path), "--clip", "clamp"],
                          cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    clamped = re.findall(r"(\w+): ([\d,]+) samples clamped to full scale", proc.stderr)
    assert clamped and all(int(count.replace(",", "")) > 0 for _, count in clamped), proc.stderr[-3000:]
    for stem in ("drums", "bass", "other", "vocals"):
        hard = sf.read(tmp_path / "loud" / f"{stem}.wav", dtype="float32")[0]
        soft = sf.read(out / "loud" / f"{stem}.wav", dtype="float32")[0]
        assert np.abs(soft).max() <= 1.0 and np.abs(hard).max() <= 1.0
        if stem in dict(clamped):
            assert np.count_nonzero(np.abs(hard) >= 32767 / 32768) > 0  # clamped at full scale
