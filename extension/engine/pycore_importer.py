"""Imports pycore inside the extension: its modules are fetched from the bundle on first import.

An extension cannot list its own folders, and this way the bundle needs no file list and
only the modules the browser uses are read. engine_worker.js runs this file in Pyodide and
calls `install(base_url, root)`: a meta-path finder then copies `pycore/<name>.py` from
`base_url` into Pyodide's file system under `root` on first import (a synchronous
XMLHttpRequest, allowed in workers) and leaves the rest to the usual path finder.
"""

from __future__ import annotations

import importlib
import os
import sys

PACKAGE = "pycore"


class FetchPycore:
    """A meta-path finder for PACKAGE that fetches each module's source from `base`."""

    def __init__(self, base: str, root: str, fetch_text=None):
        self.base = base if base.endswith("/") else base + "/"
        self.root = root
        self._fetch_text = fetch_text or _xhr_text

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] != PACKAGE:
            return None
        rel = f"{PACKAGE}/__init__.py" if fullname == PACKAGE else fullname.replace(".", "/") + ".py"
        dest = os.path.join(self.root, rel)
        if not os.path.exists(dest):
            text = self._fetch_text(self.base + rel)
            if text is None:
                return None  # no such file in the bundle: the usual ImportError follows
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "w", encoding="utf-8") as f:
                f.write(text)
            importlib.invalidate_caches()
        return None  # the file is in place: the path finder imports it


def _xhr_text(url: str) -> str | None:
    """The text at `url`, or None when there is none (Pyodide in a worker only)."""
    from js import XMLHttpRequest

    try:
        xhr = XMLHttpRequest.new()
        xhr.open("GET", url, False)
        xhr.send()
    except Exception:
        return None
    return xhr.responseText if xhr.status == 200 else None


def install(base: str, root: str, fetch_text=None) -> FetchPycore:
    """Makes `import pycore...` fetch from `base` (the bundle's root URL) into `root`."""
    os.makedirs(root, exist_ok=True)
    finder = FetchPycore(base, root, fetch_text)
    sys.meta_path.insert(0, finder)
    sys.path.insert(0, root)
    return finder
