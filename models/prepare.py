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
3. The graph is cut into stages run one after another, each its own session:
   the encoders, the cross-transformer in three pieces, the decoders. Within one
   session onnxruntime's planner hands a freed buffer to the next tensor of the
   same size, so in the whole U-Net each encoder buffer stays allocated across the
   transformer until its mirror-image decoder layer takes it: ~2.7 GB of WASM heap
   in the browser, where (unlike natively) that reuse cannot be switched off. Cut
   at those seams, each stage's buffers are freed when it ends: ~1.3 GB. The cut
   changes no arithmetic (the outputs are bit-identical).

Input: the verified original from models.fetch. Output: CACHE_DIR/models/
htdemucs.prepared/ (git-ignored): stages.json (the stages in order, each with
its file and the tensors it takes and gives) and stage0.onnx, stage1.onnx ...
Rebuilt when the original or PREPARE_VERSION changes (stamp.json records both).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from .fetch import MANIFEST, REPO_CACHE, fetch_model

PREPARE_VERSION = 3
PREPARED_DIR = "htdemucs.prepared"
STAGES_NAME = "stages.json"
# Small tensors (biases, norms, shape constants) stay float32: they cost nothing and
# some of them feed shape arithmetic that must not change type.
MIN_HALF_ELEMENTS = 4096
# Where each stage begins: the first node whose name starts with one of these, and
# every node that depends on it, belong to that stage or a later one. Five stages gave
# the lowest peak in Chromium of the cuts tried (docs/benchmarks.md, "Choices in the code").
STAGE_STARTS = [
    ("/crosstransformer", "/channel_upsampler"),
    ("/crosstransformer/layers.2", "/crosstransformer/layers_t.2"),
    ("/crosstransformer/layers.4", "/crosstransformer/layers_t.4"),
    ("/decoder", "/tdecoder", "/channel_downsampler"),
]


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


def stage_of_nodes(graph, starts=STAGE_STARTS) -> tuple[list, list[list]]:
    """(constant nodes, the other nodes per stage), each list in the graph's topological order.

    A node's stage is the latest of: the stage its name starts, the stages of the nodes it
    reads from. Constant nodes (the float16 Casts: they read initializers only) go with
    their consumers.
    """
    initializers = {i.name for i in graph.initializer}
    constant, stage_of, stages = [], {}, [[] for _ in range(len(starts) + 1)]
    for node in graph.node:
        if all(name in initializers or not name for name in node.input):
            constant.append(node)
            continue
        named = max([k + 1 for k, prefixes in enumerate(starts) if node.name.startswith(prefixes)], default=0)
        k = max([named] + [stage_of[name] for name in node.input if name in stage_of])
        stage_of.update((name, k) for name in node.output)
        stages[k].append(node)
    return constant, stages


def tensor_types(model, names: set[str]) -> dict:
    """Exact value infos (element type and shape) of the named tensors, from one run of the model on zeros."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import helper

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    for name in sorted(names - known):
        probe.graph.output.append(helper.make_empty_tensor_value_info(name))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {i.name: np.zeros([d.dim_value for d in i.type.tensor_type.shape.dim], np.float32) for i in model.graph.input}
    outputs = [o.name for o in session.get_outputs()]
    infos = {i.name: i for i in model.graph.input}
    for name, value in zip(outputs, session.run(outputs, feeds)):
        infos[name] = helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype), value.shape)
    return {name: infos[name] for name in names}


def split_into_stages(model, dest: Path) -> dict:
    """Write the model's stages to dest/stage<k>.onnx and return the listing (stages.json)."""
    import onnx
    from onnx import helper

    graph = model.graph
    constant, stages = stage_of_nodes(graph)
    made_by_constant = {name: node for node in constant for name in node.output}
    final = [o.name for o in graph.output]
    ios = []
    for k, nodes in enumerate(stages):
        made = {name for node in nodes for name in node.output}
        read = {name for node in nodes for name in node.input if name}
        later = {name for node in sum(stages[k + 1:], []) for name in node.input} | set(final)
        inputs = sorted(read - made - set(made_by_constant) - {i.name for i in graph.initializer})
        ios.append((inputs, sorted(made & later)))
    types = tensor_types(model, {name for inputs, outputs in ios for name in inputs + outputs})
    listing = {"inputs": [i.name for i in graph.input], "outputs": final, "stages": []}
    for k, (nodes, (inputs, outputs)) in enumerate(zip(stages, ios)):
        consts = [made_by_constant[name] for name in sorted({n for node in nodes for n in node.input}) if name in made_by_constant]
        needed = {name for node in consts + nodes for name in node.input}
        stage = helper.make_graph(consts + nodes, f"htdemucs stage {k}", [types[n] for n in inputs], [types[n] for n in outputs],
                                  [i for i in graph.initializer if i.name in needed])
        stage_model = helper.make_model(stage, opset_imports=model.opset_import, ir_version=model.ir_version)
        onnx.checker.check_model(stage_model)
        onnx.save(stage_model, str(dest / f"stage{k}.onnx"))
        listing["stages"].append({"file": f"stage{k}.onnx", "inputs": inputs, "outputs": outputs})
    available = set(listing["inputs"])
    for stage in listing["stages"]:
        assert set(stage["inputs"]) <= available, f"{stage['file']} reads a tensor no earlier stage gives"
        available |= set(stage["outputs"])
    assert set(final) <= available, "the stages do not give the model's outputs"
    return listing


def prepare(source: Path, dest: Path) -> Path:
    """Prepare `source` into the folder `dest` (replaced whole, so a failure leaves no mixture)."""
    import onnx

    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        optimised = Path(tmp) / "optimised.onnx"
        optimise_offline(source, optimised)
        model = onnx.load(str(optimised))
        shrink_folded_constants(model)
        store_weights_in_half(model)
        onnx.checker.check_model(model)
        staged = Path(tmp) / "staged"
        staged.mkdir()
        listing = split_into_stages(model, staged)
        (staged / STAGES_NAME).write_text(json.dumps(listing, indent=1) + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        staged.replace(dest)
    return dest / STAGES_NAME


def prepared_model(cache: Path = REPO_CACHE) -> Path:
    """The prepared model's stages.json in `cache`, made from the verified original if missing or stale."""
    source = fetch_model(cache)
    dest = cache / "models" / PREPARED_DIR
    stamp = cache / "models" / (PREPARED_DIR + ".json")
    want = {"source_sha256": MANIFEST["sha256"], "prepare_version": PREPARE_VERSION}
    if (dest / STAGES_NAME).exists() and stamp.exists() and json.loads(stamp.read_text()) == want:
        return dest / STAGES_NAME
    print("preparing the model (offline graph optimisation, float16 weights, stages)", file=sys.stderr, flush=True)
    prepare(source, dest)
    stamp.write_text(json.dumps(want))
    return dest / STAGES_NAME


if __name__ == "__main__":
    print(prepared_model(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO_CACHE))
