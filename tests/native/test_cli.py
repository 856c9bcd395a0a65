"""The native command line: results on a real clip, and a plain message plus exit status for every failure."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf
from support.tracks import REPO, load_track


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "pycore", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def clip(testdata, tmp_path_factory, model_path) -> Path:
    """3 s of a real song as FLAC (one model segment, so each run is quick)."""
    mix, _ = load_track(testdata / "musdb18-7-test" / "Zeno - Signs")
    path = tmp_path_factory.mktemp("in") / "Zeno clip.flac"
    sf.write(path, mix[:, : 3 * 44_100].T, 44_100, subtype="PCM_16")
    return path


def test_separates_into_a_folder_of_stems(clip, tmp_path):
    result = cli("separate", clip, "-o", tmp_path, "--format", "wav24")
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "Zeno clip"
    assert sorted(p.name for p in folder.iterdir()) == ["bass.wav", "drums.wav", "other.wav", "vocals.wav"]
    info = sf.info(folder / "vocals.wav")
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (44_100, 2, 3 * 44_100, "PCM_24")
    assert "%" in result.stderr  # the progress bar


def test_two_stems_and_several_inputs_in_one_call(clip, tmp_path):
    second = tmp_path / "second.wav"
    sf.write(second, sf.read(clip)[0][:44_100], 44_100, subtype="FLOAT")
    result = cli("separate", clip, second, "-o", tmp_path / "out", "--stems", "two", "--format", "float32")
    assert result.returncode == 0, result.stderr
    for name in ("Zeno clip", "second"):
        assert sorted(p.name for p in (tmp_path / "out" / name).iterdir()) == ["instrumental.wav", "vocals.wav"]


def test_missing_file(tmp_path):
    result = cli("separate", tmp_path / "nope.wav", "-o", tmp_path)
    assert result.returncode == 1 and "nope.wav: no such file" in result.stderr


def test_not_audio(tmp_path):
    fake = tmp_path / "song.mp3"
    fake.write_text("this is a text file, not music\n" * 50)
    result = cli("separate", fake, "-o", tmp_path / "out")
    assert result.returncode == 1 and "not an audio file" in result.stderr
    assert not (tmp_path / "out" / "song").exists()


def test_empty_file(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    result = cli("separate", empty, "-o", tmp_path)
    assert result.returncode == 1 and "empty" in result.stderr


def test_unreadable_header(tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00")  # cut inside 'fmt '
    result = cli("separate", broken, "-o", tmp_path)
    assert result.returncode == 1 and "'fmt ' chunk" in result.stderr


def test_refuses_to_overwrite_without_force(clip, tmp_path):
    folder = tmp_path / "Zeno clip"
    folder.mkdir()
    (folder / "vocals.wav").write_bytes(b"earlier work")
    result = cli("separate", clip, "-o", tmp_path)
    assert result.returncode == 1 and "already exist" in result.stderr and "--force" in result.stderr
    assert (folder / "vocals.wav").read_bytes() == b"earlier work"
    assert cli("separate", clip, "-o", tmp_path, "--force").returncode == 0
    assert sf.info(folder / "vocals.wav").frames == 3 * 44_100


def test_one_bad_input_does_not_stop_the_others(clip, tmp_path):
    result = cli("separate", tmp_path / "missing.flac", clip, "-o", tmp_path)
    assert result.returncode == 1 and "1 of 2 inputs failed" in result.stderr
    assert (tmp_path / "Zeno clip" / "drums.wav").exists()


def test_bad_options_are_explained(clip, tmp_path):
    result = cli("separate", clip, "-o", tmp_path, "--overlap", "1.5")
    assert result.returncode == 2 and "overlap" in result.stderr
    result = cli("separate", clip, "-o", tmp_path, "--stems", "five")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_missing_model_is_explained(clip, tmp_path):
    result = cli("separate", clip, "-o", tmp_path, "--model", tmp_path / "none.onnx")
    assert result.returncode == 1 and "model file not found" in result.stderr


def test_interrupted_run_leaves_no_stems(testdata, tmp_path):
    mix, _ = load_track(testdata / "cc0-excerpts" / "3.Sodium")
    song = tmp_path / "long.wav"
    sf.write(song, mix.T, 44_100, subtype="PCM_16")
    proc = subprocess.Popen([sys.executable, "-m", "pycore", "separate", song, "-o", tmp_path / "out"],
                            cwd=REPO, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    part = tmp_path / "out" / "long" / "vocals.wav.part"
    while not part.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert part.exists(), "the run never started writing"
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "cancelled" in err
    assert list((tmp_path / "out" / "long").iterdir()) == []
