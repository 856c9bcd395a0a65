"""A tiny test runner for tests/core, for where pytest is not available (Pyodide).

Imports each test_*.py module of a folder and calls each top-level function named
test_*. A parameter named `tmp_path` gets a fresh pathlib.Path temporary folder;
no other fixtures exist. A module may declare

    PYODIDE_SKIP = {"test_name": "reason"}     # skip these tests in Pyodide
    PYODIDE_SKIP = {"*": "reason"}             # skip the whole module (it is not even imported)

The dict is read from the source (ast), so a skipped module may import things
Pyodide lacks. Prints PASS/FAIL/SKIP per test and a summary line:

    core tests: 41 passed, 0 failed, 2 skipped in 12.3 s

Also runs natively: python tests/pyodide/mini_runner.py tests/core  (repo root on sys.path).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
import tempfile
import time
import traceback
from pathlib import Path


def pyodide_skips(source: str) -> dict[str, str]:
    """The module-level PYODIDE_SKIP dict of a module's source, without importing it."""
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "PYODIDE_SKIP" for t in targets) and node.value is not None:
            return dict(ast.literal_eval(node.value))
    return {}


def collect_names(source: str) -> list[str]:
    """Names of the top-level test_* functions in a module's source."""
    return [
        n.name
        for n in ast.parse(source).body
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test_")
    ]


async def _call(func):
    kwargs = {}
    for name in inspect.signature(func).parameters:
        if name != "tmp_path":
            raise TypeError(f"{func.__name__} wants the fixture {name!r}; the mini runner only has tmp_path")
        kwargs[name] = Path(tempfile.mkdtemp(prefix=func.__name__[:40] + "-"))
    result = func(**kwargs)
    if inspect.isawaitable(result):
        await result


async def main(test_dir: str) -> int:
    """Run every test in `test_dir`; returns the process exit status (0: all passed, at least one ran)."""
    folder = Path(test_dir)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))  # the tests import their helpers (_support) as top-level modules
    passed = failed = skipped = 0
    t0 = time.perf_counter()
    for path in sorted(folder.glob("test_*.py")):
        source = path.read_text()
        mod_name = path.stem
        try:
            skips = pyodide_skips(source)
        except (ValueError, SyntaxError) as e:
            skips = {}
            print(f"FAIL {mod_name}: PYODIDE_SKIP is not a literal dict: {e}", flush=True)
            failed += 1
        names = collect_names(source)
        if "*" in skips:
            for name in names:
                print(f"SKIP {mod_name}::{name}: {skips['*']}", flush=True)
            skipped += len(names)
            continue
        for name in set(skips) - set(names):
            print(f"WARNING: {mod_name}.PYODIDE_SKIP names {name!r}, which is not a test there", flush=True)
        try:
            module = importlib.import_module(mod_name)
        except BaseException:
            print(f"FAIL {mod_name}: import failed ({len(names)} tests not run)", flush=True)
            print(_indent(traceback.format_exc()), flush=True)
            failed += max(1, len(names))
            continue
        for name in names:
            func = getattr(module, name, None)
            if name in skips:
                print(f"SKIP {mod_name}::{name}: {skips[name]}", flush=True)
                skipped += 1
                continue
            if not callable(func):
                print(f"FAIL {mod_name}::{name}: not a function after import", flush=True)
                failed += 1
                continue
            t = time.perf_counter()
            try:
                await _call(func)
            except BaseException as e:  # noqa: BLE001 - a test's SystemExit/KeyboardInterrupt is a failure too
                failed += 1
                print(f"FAIL {mod_name}::{name} ({time.perf_counter() - t:.2f} s)", flush=True)
                print(_indent(traceback.format_exc()), flush=True)
                if isinstance(e, KeyboardInterrupt):
                    raise
            else:
                passed += 1
                print(f"PASS {mod_name}::{name} ({time.perf_counter() - t:.2f} s)", flush=True)
    print(
        f"core tests: {passed} passed, {failed} failed, {skipped} skipped in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    if passed == 0 and failed == 0:
        print(f"no test ran in {folder}", flush=True)
    return 0 if failed == 0 and passed > 0 else 1


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.rstrip().splitlines())


if __name__ == "__main__":
    import asyncio

    sys.exit(asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "tests/core")))
