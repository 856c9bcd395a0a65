"""Prepare the shipped model at build time: graph optimised offline, weights stored in half precision.

    python -m models.prepare [CACHE_DIR]     prints the path of the prepared model

1. onnxruntime's portable ("basic") graph optimisations are applied once here
   instead of in every browser at every engine start: constant folding of the
   many shape computations, redundant node elimination. The extended and layout
   levels are not used offline: their fused kernels and memory layouts are
   specific to the CPU that runs them, so the browser still applies those itself.
2. Every large float32 weight is stored as float16 and followed by a Cast back to
   float32, so the model is half the size on disk and in the bundle while all
   arithmetic stays in float32 (onnxruntime folds the Casts when it loads the
   model). bench/quality.py measures what the rounding costs: see the README.

Input: the verified original from models.fetch. Output: CACHE_DIR/models/
htdemucs.prepared.onnx (git-ignored), rebuilt when the original or PREPARE_VERSION
changes (a stamp file next to it records both).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from .fetch import MANIFEST, REPO_CACHE, fetch_model

PREPARE_VERSION = 2
PREPARED_NAME = "htdemucs.prepared.onnx"
# Small tensors (biases, norms, shape constants) stay float32: they cost nothing and
# some of them feed shape arithmetic that must not change type.
MIN_HALF_ELEMENTS = 4096


def optimise_offline(source: Path, dest: Path) -> None:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(dest)
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])


BROADCASTING_OPS = {"Add", "Sub", "Mul", "Div"}


def shrink_folded_constants(model) -> int:
    """Undo what constant folding blew up: a constant that repeats along an axis becomes size 1 there.

    Folding turns a small embedding expanded over time ([1, 48, 512, 1] -> [1, 48, 512, 336])
    into a 33 MB constant. Where every consumer is an elementwise op whose other operand
    already has the full size on that axis, numpy-style broadcasting gives the same result
    from the small tensor. Returns the number of constants shrunk.
    """
    import numpy as np
    from onnx import TensorProto, numpy_helper, shape_inference

    graph = model.graph
    shapes = {}
    for vi in list(shape_inference.infer_shapes(model).graph.value_info) + list(graph.input):
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    shrunk = 0
    for i, init in enumerate(graph.initializer):
        users = consumers.get(init.name, [])
        if init.data_type != TensorProto.FLOAT or np.prod(init.dims) < MIN_HALF_ELEMENTS or not users:
            continue
        if any(n.op_type not in BROADCASTING_OPS or len(n.input) != 2 for n in users):
            continue
        value = numpy_helper.to_array(init)
        for axis, size in enumerate(value.shape):
            if size == 1:
                continue
            others = [shapes.get(n.input[1] if n.input[0] == init.name else n.input[0]) for n in users]
            if any(o is None or len(o) != value.ndim or o[axis] != size for o in others):
                continue
            first = value.take([0], axis=axis)
            if np.array_equal(np.broadcast_to(first, value.shape), value):
                value = first
        if value.size != np.prod(init.dims):
            graph.initializer[i].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(value), init.name))
            shrunk += 1
    return shrunk


def store_weights_in_half(model) -> int:
    """Rewrite, in place, each large float32 initializer W as float16 W16 -> Cast(float32) -> W.

    Returns the number of weights converted.
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    kept, casts, converted = [], [], 0
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or np.prod(init.dims) < MIN_HALF_ELEMENTS:
            kept.append(init)
            continue
        half_name = init.name + ".fp16"
        half = numpy_helper.to_array(init).astype(np.float16)
        kept.append(numpy_helper.from_array(half, half_name))
        casts.append(helper.make_node("Cast", [half_name], [init.name], name=half_name + "/Cast",
                                      to=TensorProto.FLOAT))
        converted += 1
    del graph.initializer[:]
    graph.initializer.extend(kept)
    # The Casts go first, so the node list stays topologically sorted.
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return converted


def prepare(source: Path, dest: Path) -> Path:
    import onnx

    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        optimised = Path(tmp) / "optimised.onnx"
        optimise_offline(source, optimised)
        model = onnx.load(str(optimised))
        shrink_folded_constants(model)
        store_weights_in_half(model)
        onnx.checker.check_model(model)
        part = Path(tmp) / dest.name
        onnx.save(model, str(part))
        part.replace(dest)
    return dest


def prepared_model(cache: Path = REPO_CACHE) -> Path:
    """The prepared model in `cache`, made from the verified original if missing or stale."""
    source = fetch_model(cache)
    dest = cache / "models" / PREPARED_NAME
    stamp = dest.with_suffix(".json")
    want = {"source_sha256": MANIFEST["sha256"], "prepare_version": PREPARE_VERSION}
    if dest.exists() and stamp.exists() and json.loads(stamp.read_text()) == want:
        return dest
    print("preparing the model (offline graph optimisation, float16 weights)", file=sys.stderr, flush=True)
    prepare(source, dest)
    stamp.write_text(json.dumps(want))
    return dest


if __name__ == "__main__":
    print(prepared_model(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO_CACHE))
