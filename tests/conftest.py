"""Fixtures for the native and browser tests: the real model and real music from ../shared."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# support/ (the tests' helpers) as a package, and packaging/ (the build's helpers, imported by name).
sys.path[:0] = [str(HERE), str(REPO / "packaging")]

from support.tracks import TESTDATA  # noqa: E402


@pytest.fixture(scope="session")
def testdata() -> Path:
    # Tests on real music must fail, not skip, when the data is missing.
    if not (TESTDATA / "index.json").exists():
        pytest.fail(f"the shared test data is missing: expected {TESTDATA} beside the repository", pytrace=False)
    return TESTDATA


@pytest.fixture(scope="session")
def model_path() -> Path:
    from models.fetch import fetch_model

    return fetch_model()


@pytest.fixture(scope="session")
def node() -> str:
    """node, which runs Pyodide for the tests that need the core inside it."""
    import shutil

    path = shutil.which("node")
    if path is None:
        pytest.fail("node is needed to run Pyodide (install nodejs)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def firefox_bundle() -> Path:
    """dist/firefox: beside DEMIXER_E2E_BUNDLE (dist/chrome) when that is given, else built by build.py."""
    import os
    import subprocess

    repo = REPO
    given = os.environ.get("DEMIXER_E2E_BUNDLE")
    if given:
        path = Path(given).parent / "firefox"
    else:
        subprocess.run([sys.executable, "build.py"], cwd=repo, check=True)
        path = repo / "dist" / "firefox"
    if not (path / "manifest.json").exists():
        pytest.fail(f"{path} has no manifest.json: run python3 build.py", pytrace=False)
    return path
