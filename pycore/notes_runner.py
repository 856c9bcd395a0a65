"""The native note-model runner, on the `onnxruntime` package (the browser runs the same file
in onnxruntime-web, extension/engine/model_worker.js)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .notes_contract import INPUT_AUDIO, OUTPUT_CONTOUR, OUTPUT_NOTE, OUTPUT_ONSET, WINDOW


class NotesOnnxRunner:
    def __init__(self, model_path: Path | str, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self._session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])

    def run(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = np.asarray(audio, np.float32).reshape(1, WINDOW, 1)
        note, onset, contour = self._session.run([OUTPUT_NOTE, OUTPUT_ONSET, OUTPUT_CONTOUR], {INPUT_AUDIO: x})
        return note[0], onset[0], contour[0]


def notes_model_path() -> Path:
    """The verified nmp.onnx: the checkout's cache (fetched on first use), or ~/.cache/demixer."""
    import os

    if os.environ.get("DEMIXER_NOTES_MODEL"):
        return Path(os.environ["DEMIXER_NOTES_MODEL"])
    from models.fetch import REPO_CACHE, fetch_notes_model

    cache = REPO_CACHE if REPO_CACHE.parent.joinpath("pyproject.toml").exists() else Path.home() / ".cache" / "demixer"
    return fetch_notes_model(cache)


def transcribe_file(path: Path | str, options, runner: NotesOnnxRunner | None = None) -> list:
    """The notes of any audio file natively (decoded as `python -m pycore` does)."""
    from .native_decode import open_audio
    from .separate import run_sync
    from .transcribe import transcribe_source

    runner = runner or NotesOnnxRunner(notes_model_path())
    return run_sync(transcribe_source(open_audio(Path(path)), runner, options))
