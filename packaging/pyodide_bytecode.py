"""Precompiled bytecode for the engine's Python: half of its cold start was compiling source.

Pyodide ships its standard library, and the numpy wheel its modules, as .py source only,
so every start of the engine compiled each module it imported (docs/benchmarks.md, "Cold
start", has the figures). build.py calls
`bytecode_dir()`, which compiles both once with Pyodide's own Python (packaging/pyodide_bytecode.mjs,
in node) and caches the result in .cache/bytecode/, keyed by what went in.

The bundle then carries python/python_stdlib.zip (Pyodide's, plus a .pyc beside each module the
engine imports as it starts) in place of the original, and python/numpy-bytecode.zip, which the
engine unpacks over numpy once the wheel is installed (extension/engine/engine_worker.js). Standard library only.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from models.fetch import sha256_of

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).with_suffix(".mjs")
OUTPUTS = ("python_stdlib.zip", "numpy-bytecode.zip")


class BytecodeError(RuntimeError):
    pass


def bytecode_dir(pyodide: Path, numpy_wheel: Path, cache: Path) -> Path:
    """A folder holding OUTPUTS for this Pyodide and numpy, built on first use."""
    inputs = {
        "python_stdlib.zip": sha256_of(pyodide / "python_stdlib.zip"),
        "pyodide.asm.wasm": sha256_of(pyodide / "pyodide.asm.wasm"),
        numpy_wheel.name: sha256_of(numpy_wheel),
        SCRIPT.name: sha256_of(SCRIPT),
        # Which stdlib modules get bytecode follows pycore's imports.
        **{f"pycore/{p.name}": sha256_of(p) for p in sorted((ROOT / "pycore").glob("*.py"))},
    }
    dest = cache / "bytecode"
    stamp = dest / ".stamp.json"
    try:
        recorded = json.loads(stamp.read_text())
        if recorded["inputs"] == inputs and all(sha256_of(dest / f) == h for f, h in recorded["outputs"].items()):
            return dest
    except (OSError, ValueError, KeyError):
        pass
    node = shutil.which("node")
    if node is None:
        raise BytecodeError("node is needed to precompile the engine's Python (install nodejs)")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [node, str(SCRIPT), str(pyodide), str(numpy_wheel), str(ROOT / "pycore"), str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BytecodeError(f"precompiling Python failed:\n{proc.stderr[-3000:]}")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    outputs = {f: sha256_of(tmp / f) for f in OUTPUTS}
    (tmp / ".stamp.json").write_text(json.dumps({"inputs": inputs, "outputs": outputs, "summary": summary}, indent=1))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.replace(dest)
    print(f"precompiled Python: {summary['stdlib_modules']} stdlib and {summary['numpy_modules']} numpy modules", flush=True)
    return dest


def summary(folder: Path) -> dict:
    """What packaging/pyodide_bytecode.mjs reported when it made `folder` (module counts, site-packages, magic)."""
    return json.loads((folder / ".stamp.json").read_text())["summary"]
