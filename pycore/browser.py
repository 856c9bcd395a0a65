"""The core's entry point inside the extension (Pyodide), called by extension/engine_worker.js.

    result = await pyodide.pyimport("pycore.browser").separate_pcm(opts)

opts is a JS object:
  left, right     Float32Array, 44,100 Hz, equal length (mono: the same array twice)
  stems           'four' | 'two'            format   'wav16' | 'wav24' | 'float32'
  preset          'fast' | 'balanced' | 'best'   (pycore.separate.PRESETS)
  runModel(wave, spec) -> Promise<[freq, time]>   Float32Arrays in the model's layout; it must
                  start the model before returning, so Python works on while it runs
  onStemBytes(stem, Uint8Array)   per stem: the WAV header first, then PCM in order
  onProgress(done, total)         model segments
  isCancelled() -> bool           when true, separate_pcm raises Cancelled
Returns {stems, frames, warnings}.
"""

from __future__ import annotations

import numpy as np
from pyodide.ffi import to_js

from .separate import Options, separate
from .sources import ArraySource
from .stem_files import WavStems


def _array(js) -> np.ndarray:
    """A JS Float32Array -> numpy float32 (one copy)."""
    out = np.empty(js.length, dtype=np.float32)
    js.assign_to(out)
    return out


def _typed(x: np.ndarray):
    """numpy float32 -> a JS Float32Array (one copy)."""
    return to_js(memoryview(np.ascontiguousarray(x, dtype=np.float32)).cast("B").cast("f"))


class _JsRunner:
    """The model in its own worker: `run` starts it at once and returns an awaitable of its outputs."""

    def __init__(self, run_model):
        self._run_model = run_model

    def run(self, wave: np.ndarray, spec: np.ndarray):
        return self._outputs(self._run_model(_typed(wave), _typed(spec)))  # a JS promise: already running

    @staticmethod
    async def _outputs(promise):
        result = await promise
        return _array(result[0]), _array(result[1])


class _JsStream:
    """A write-only stream that hands each chunk of a stem's bytes to JavaScript."""

    def __init__(self, stem: str, on_bytes):
        self._stem, self._on_bytes = stem, on_bytes

    def write(self, data: bytes) -> None:
        self._on_bytes(self._stem, to_js(data))

    def close(self) -> None:
        pass


async def separate_pcm(opts):
    mix = np.stack([_array(opts.left), _array(opts.right)])
    options = Options.preset(str(opts.preset), stems=str(opts.stems))
    sink = WavStems(str(opts.format), lambda stem: _JsStream(stem, opts.onStemBytes))
    report = await separate(
        ArraySource(mix),
        _JsRunner(opts.runModel),
        sink,
        options,
        on_progress=lambda done, total: opts.onProgress(done, total),
        is_cancelled=lambda: bool(opts.isCancelled()),
    )
    warnings = report.warnings + [f"{stem}: {n} samples were beyond full scale and clamped" for stem, n in sink.clipped.items()]
    from js import Object

    return to_js({"stems": list(report.stems), "frames": report.frames, "warnings": warnings},
                 dict_converter=Object.fromEntries)
