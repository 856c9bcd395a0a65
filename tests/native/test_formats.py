"""Stems in every format natively, from one real separation: FLAC holds exactly the WAV's samples,
MP3 and Opus decode to the right length, aligned and close to the WAV (support/formats.py says how
close, and why Opus cannot be as close), every file carries its tags and opens in ffmpeg without a
warning."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from support.formats import check_ffmpeg_reads, check_lossy, check_lossy_mean, check_tags
from support.tracks import load_track

from pycore import cli, formats, native_encode
from pycore.onnx_runner import OnnxRunner
from pycore.separate import run_sync, separate
from pycore.sources import ArraySource
from pycore.stem_files import StemFiles

SECONDS = 6  # one model segment


class Tee:
    """One job's stems into several sinks: the same samples reach every format."""

    def __init__(self, sinks):
        self.sinks = sinks

    def begin(self, stems, frames):
        for s in self.sinks:
            s.begin(stems, frames)

    def write(self, block):
        for s in self.sinks:
            s.write(block)

    def finish(self):
        for s in self.sinks:
            s.finish()

    def abort(self):
        for s in self.sinks:
            s.abort()


@pytest.fixture(scope="module")
def job(testdata, model_path, tmp_path_factory):
    """{format: StemFiles} from one separation of a clip of Lithium, with its peaks rescaled."""
    mix, _ = load_track(testdata / "cc0-excerpts" / "2.Lithium")
    clip = mix[:, 44100 : 44100 * (1 + SECONDS)] * 1.6  # loud enough that a stem passes full scale
    root = tmp_path_factory.mktemp("formats")
    sinks = {name: StemFiles(root / name, name, "rescale", song="Lithium") for name in formats.FORMATS}
    run_sync(separate(ArraySource(clip.astype(np.float32)), OnnxRunner(model_path), Tee(list(sinks.values()))))
    return sinks


def _read(path, dtype="float64"):
    data, rate = sf.read(path, dtype=dtype, always_2d=True)
    return data, rate


def test_flac_holds_exactly_the_wav_samples(job):
    for bits in (16, 24):
        wav, flac = job[f"wav{bits}"], job[f"flac{bits}"]
        assert [p.suffix for p in flac.paths] == [".flac"] * 4
        for w, f in zip(wav.paths, flac.paths):
            a, _ = _read(w, "int32")
            b, rate = _read(f, "int32")
            assert rate == 44100 and a.shape == b.shape, (f.name, a.shape, b.shape)
            assert np.array_equal(a, b), f"{f.name} ({bits}-bit) differs from {w.name}"
    # Both were rescaled by the one gain the job needed, and say so.
    assert job["flac16"].messages() == job["wav16"].messages()
    assert any("lowered by" in m for m in job["flac16"].messages()), job["flac16"].messages()


@pytest.mark.parametrize("name", ["mp3-320", "mp3-v0", "opus"])
def test_lossy_stems_have_the_length_and_sound_of_the_wav(job, name):
    sink = job[name]
    gain = next(iter(sink.report.values())).gain  # the float stems are never rescaled, the lossy ones were
    scores = {}
    for stem, w, p in zip(sink.stems, job["float32"].paths, sink.paths):
        reference, _ = sf.read(w, dtype="float64", always_2d=True)
        scores[stem] = round(check_lossy(p, reference, sink.format, gain), 1)
    print(f"{name} SDR against the WAV stems (dB):", scores)
    check_lossy_mean(scores, sink.format)


def test_every_file_carries_its_song_and_stem(job):
    for name, sink in job.items():
        if sink.format.extension == "wav":
            continue
        for stem, path in zip(sink.stems, sink.paths):
            check_tags(path, "Lithium", stem)


def test_every_file_opens_in_ffmpeg_without_a_warning(job):
    for sink in job.values():
        for path in sink.paths:
            check_ffmpeg_reads(path)


def test_no_part_or_scratch_files_are_left(job):
    for sink in job.values():
        assert sorted(p.name for p in sink.folder.iterdir()) == sorted(p.name for p in sink.paths)


def test_a_libsndfile_without_mp3_is_said_in_words(monkeypatch, capsys, tmp_path):
    class NoMp3:
        __libsndfile_version__ = "1.0.31"

        @staticmethod
        def available_formats():
            return {"WAV": "", "FLAC": "", "OGG": ""}

        @staticmethod
        def available_subtypes(major):
            return {"PCM_16": "", "OPUS": ""}

    monkeypatch.setattr(native_encode, "_sf", lambda: NoMp3)
    song = tmp_path / "song.wav"
    sf.write(song, np.zeros((4410, 2), np.float32), 44100)
    status = cli.main(["separate", str(song), "-o", str(tmp_path / "out"), "--format", "mp3-320"])
    err = capsys.readouterr().err
    assert status == 2, err
    assert "cannot write MP3 320 kbit/s" in err and "--format" in err, err
    assert not (tmp_path / "out").exists()
