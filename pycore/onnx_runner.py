"""The native model runner, on the `onnxruntime` package (not used in the browser)."""

from __future__ import annotations

import ctypes
import json
import os
import sys
from pathlib import Path

import numpy as np

from .model_contract import INPUT_SPEC, INPUT_WAVE, OUTPUT_FREQ, OUTPUT_TIME


class OnnxRunner:
    """Runs htdemucs from one .onnx file, or from the stages a stages.json lists (models/prepare.py).

    Stages run in turn, each as its own session, as in the browser (extension/model_worker.js).
    """

    def __init__(self, model_path: Path | str, threads: int | None = None, profile_prefix: str | None = None):
        import onnxruntime as ort  # imported here so the core itself never needs it

        model_path = Path(model_path)
        if model_path.suffix == ".json":
            listing = json.loads(model_path.read_text())
            files = [model_path.parent / stage["file"] for stage in listing["stages"]]
        else:
            files = [model_path]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Memory: ORT's planner reuses a freed buffer for a later tensor of the same static size.
        # htdemucs is a U-Net, so encoder buffers are parked (allocated, unused) across the whole
        # transformer until the mirror-image decoder layer reuses them. Without reuse (and without
        # the memory pattern, which then lays every tensor out side by side) each tensor is freed
        # after its last use: a fraction of the peak, flat over many segments, same speed,
        # bit-identical outputs (docs/benchmarks.md, "Choices in the code").
        options.enable_mem_reuse = False
        options.enable_mem_pattern = False
        # All stages draw on one arena, as one session would: with an arena per session each
        # keeps its own peak, and without arenas glibc's heap fragments.
        _register_shared_arena(ort)
        options.add_session_config_entry("session.use_env_allocators", "1")
        if profile_prefix:
            options.enable_profiling = True
            options.profile_file_prefix = profile_prefix
        _map_large_arrays()
        self._sessions = [ort.InferenceSession(str(f), options, providers=["CPUExecutionProvider"]) for f in files]
        # After each stage, what no later stage reads is dropped (the encoders' skips are large).
        needed_later: set[str] = {OUTPUT_FREQ, OUTPUT_TIME}
        self._keep: list[set[str]] = []
        for session in reversed(self._sessions):
            self._keep.insert(0, set(needed_later))
            needed_later |= {i.name for i in session.get_inputs()}
        self._inputs = [[i.name for i in s.get_inputs()] for s in self._sessions]
        self._outputs = [[o.name for o in s.get_outputs()] for s in self._sessions]
        _return_freed_heap()

    def run(self, wave: np.ndarray, spec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values = {INPUT_WAVE: wave, INPUT_SPEC: spec}
        for session, inputs, names, keep in zip(self._sessions, self._inputs, self._outputs, self._keep):
            given = session.run(names, {name: values[name] for name in inputs})
            values = {name: value for name, value in [*values.items(), *zip(names, given)] if name in keep}
        # Copies: the outputs' own buffers belong to the arena, and held while the next segment
        # runs (the pipeline does) they split it, which made it grow over a song.
        return values[OUTPUT_FREQ].copy(), values[OUTPUT_TIME].copy()

    def end_profiling(self) -> list[str]:
        """The profile files, one per stage (when made with profile_prefix)."""
        return [session.end_profiling() for session in self._sessions]


_shared_arena = False


def _register_shared_arena(ort) -> None:
    """One CPU arena for every session in this process (registered once: a second registration fails)."""
    global _shared_arena
    if not _shared_arena:
        cpu = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
        ort.create_and_register_allocator(cpu, ort.OrtArenaCfg(0, -1, -1, -1))  # onnxruntime's defaults
        _shared_arena = True


def _map_large_arrays() -> None:
    """Give every allocation over 1 MB its own mapping, returned to the system when freed (glibc only).

    glibc raises its mmap threshold up to 32 MB after the first large free, so numpy's
    per-segment temporaries then land in the heap, which fragments and stays: ~50 MB.
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD; fixing it stops the raising
        except (OSError, AttributeError):  # not glibc
            pass


def _return_freed_heap() -> None:
    """Hand the heap that loading left free back to the system (glibc only; a no-op elsewhere).

    Graph optimisation at load frees ~180 MB in small pieces that glibc keeps mapped; the
    model's large buffers are mmapped, so they would never reuse it.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        pass
