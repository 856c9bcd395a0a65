"""The native model runner, on the `onnxruntime` package (not used in the browser)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .model_contract import INPUT_SPEC, INPUT_WAVE, OUTPUT_FREQ, OUTPUT_TIME


class OnnxRunner:
    def __init__(self, model_path: Path | str, threads: int | None = None):
        import onnxruntime as ort  # imported here so the core itself never needs it

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])

    def run(self, wave: np.ndarray, spec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        freq, time = self._session.run([OUTPUT_FREQ, OUTPUT_TIME], {INPUT_WAVE: wave, INPUT_SPEC: spec})
        return freq, time
