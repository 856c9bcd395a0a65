import numpy as np

from pycore.stem_files import StemFiles
from pycore.wav import WavReader


def test_stems_appear_under_their_names_only_when_complete(tmp_path):
    sink = StemFiles(tmp_path / "Song", "wav24")
    sink.begin(("vocals", "instrumental"), 10)
    sink.write(np.full((2, 2, 6), 0.25, np.float32))
    names = sorted(p.name for p in (tmp_path / "Song").iterdir())
    assert names == ["instrumental.wav.part", "vocals.wav.part"]
    sink.write(np.full((2, 2, 4), -0.5, np.float32))
    sink.finish()
    assert sorted(p.name for p in (tmp_path / "Song").iterdir()) == ["instrumental.wav", "vocals.wav"]
    with open(tmp_path / "Song" / "vocals.wav", "rb") as f:
        audio = WavReader(f).read(0, 10)
    assert audio.shape == (2, 10) and np.allclose(audio[:, :6], 0.25) and np.allclose(audio[:, 6:], -0.5)


def test_abort_leaves_nothing_behind(tmp_path):
    sink = StemFiles(tmp_path / "Song", "wav16")
    sink.begin(("drums", "bass", "other", "vocals"), 100)
    sink.write(np.zeros((4, 2, 50), np.float32))
    sink.abort()
    assert list((tmp_path / "Song").iterdir()) == []
