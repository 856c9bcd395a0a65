"""The core's unit tests (tests/core) pass inside Pyodide 0.27.8 with its numpy, in node.

build.py fetches and verifies Pyodide and the numpy wheel; tests/pyodide/run_core_tests.mjs
runs tests/core with a small runner there (no pytest in Pyodide). The number of passes
must reach the number of test functions found here natively, less the ones a module
lists in PYODIDE_SKIP, so the test cannot pass by running nothing.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORE_TESTS = REPO / "tests" / "core"
RUNNER = REPO / "tests" / "pyodide" / "run_core_tests.mjs"


def expected_passes() -> int:
    """test_* functions in tests/core/test_*.py, less the PYODIDE_SKIP entries."""
    total = 0
    for path in sorted(CORE_TESTS.glob("test_*.py")):
        source = path.read_text()
        names = set(re.findall(r"^(?:async\s+)?def\s+(test_\w+)\s*\(", source, flags=re.MULTILINE))
        skip: dict = {}
        for node in ast.parse(source).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "PYODIDE_SKIP" for t in node.targets):
                skip = ast.literal_eval(node.value)
        total += 0 if "*" in skip else len(names - set(skip))
    return total


def test_core_tests_pass_in_pyodide(node):
    import build

    pyodide, numpy = build.pyodide_dir(), build.numpy_wheel()

    expected = expected_passes()
    assert expected > 0, f"no test functions found in {CORE_TESTS}"
    proc = subprocess.run(
        [node, str(RUNNER), str(pyodide), str(numpy), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = proc.stdout + proc.stderr
    summary = re.search(r"^core tests: (\d+) passed, (\d+) failed, (\d+) skipped", output, flags=re.MULTILINE)
    assert proc.returncode == 0 and summary, output[-20000:]
    passed, failed = int(summary[1]), int(summary[2])
    assert failed == 0, output[-20000:]
    assert passed >= expected, f"{passed} tests passed in Pyodide, {expected} expected\n{output[-20000:]}"
