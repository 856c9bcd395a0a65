"""The engine's Python starts from precompiled bytecode (build_bytecode.py), not source.

tests/pyodide/bytecode_check.mjs starts Pyodide in node as extension/engine/engine_worker.js does
(the bundle's python_stdlib.zip, numpy's bytecode unpacked over the wheel), records every
module Python compiles from source, then imports pycore.browser. Only pycore's own modules
may be compiled: a standard-library or numpy module in that list means its .pyc was
missing or rejected (a wrong Python version, a stale hash), and the cold start pays for it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHECK = REPO / "tests" / "pyodide" / "bytecode_check.mjs"


def test_stdlib_and_numpy_load_from_bytecode(node):
    import pyodide_bytecode as build_bytecode

    import build

    bytecode = build.bytecode_dir()
    counts = build_bytecode.summary(bytecode)
    assert counts["stdlib_modules"] > 100 and counts["numpy_modules"] > 100, counts

    proc = subprocess.run(
        [node, str(CHECK), str(build.pyodide_dir()), str(build.numpy_wheel()), str(bytecode), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "numpy" in report["modules"] and "pycore.browser" in report["modules"], report["modules"]
    from_source = [p for p in report["compiled"] if "/pycore/" not in p]
    assert from_source == [], f"compiled from source despite the bundle's bytecode: {from_source}"
    # pycore itself is compiled in the browser: it proves the recorder saw compiles at all.
    assert any(p.endswith("/pycore/separate.py") for p in report["compiled"]), report["compiled"]
