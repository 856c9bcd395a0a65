"""Every Python file of the project passes pyflakes' checks (ruff's F rules) and compiles:
pycore, models, packaging, build.py, bench, the tests, and the engine's importer that
runs inside the extension (extension/engine/pycore_importer.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLACES = ["pycore", "models", "packaging", "build.py", "bench", "tests", "extension"]


def test_python_files_pass_pyflakes_checks():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.fail("ruff is missing: pip install -e '.[test]'", pytrace=False)
    files = sorted(str(p) for place in PLACES for p in ([REPO / place] if place.endswith(".py") else (REPO / place).rglob("*.py")))
    assert any(f.endswith("pycore_importer.py") for f in files)
    done = subprocess.run([ruff, "check", "--no-cache", "--isolated", "--select", "F,E9", "--target-version", "py311", *files],
                          capture_output=True, text=True, cwd=REPO)  # fmt: skip
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
