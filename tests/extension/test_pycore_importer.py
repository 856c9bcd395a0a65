"""extension/engine/pycore_importer.py, the engine's importer of pycore, run under CPython.

In the extension it fetches pycore's modules from the bundle with a synchronous
XMLHttpRequest; here the same finder is given a fetch that reads the checkout's files,
in a fresh interpreter (so the checkout's own pycore is not already imported), and must
import pycore.settings (and what it imports) from copies it wrote itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
IMPORTER = REPO / "extension" / "engine" / "pycore_importer.py"

SCRIPT = r"""
import json, sys
from pathlib import Path
repo, root, importer = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
sys.path[:] = [p for p in sys.path if p not in ("", str(repo))]  # no pycore but the fetched one
sys.path.insert(0, str(Path(importer).parent))
import pycore_importer

fetched = []
def fetch_text(url):
    fetched.append(url)
    rel = url.removeprefix("bundle://root/")
    path = repo / rel
    return path.read_text(encoding="utf-8") if path.is_file() else None

pycore_importer.install("bundle://root", root, fetch_text)
import pycore.settings
try:
    import pycore.no_such_module
    missing = "imported"
except ImportError:
    missing = "ImportError"
print(json.dumps({"file": pycore.settings.__file__, "defaults": pycore.settings.defaults(),
                  "fetched": fetched, "missing": missing, "others": [m for m in sys.meta_path if type(m).__name__ == "FetchPycore"].__len__()}))
"""


def test_pycore_is_imported_from_files_the_importer_fetched(tmp_path):
    root = tmp_path / "python"
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(REPO), str(root), str(IMPORTER)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(report["file"]) == root / "pycore" / "settings.py", report["file"]
    assert report["defaults"] == {"stems": "four", "preset": "balanced", "format": "wav16", "clip": "rescale", "midi": "off", "gpu": "auto", "save": "on", "library": "2"}
    urls = report["fetched"]
    assert "bundle://root/pycore/__init__.py" in urls and "bundle://root/pycore/separate.py" in urls, urls
    assert len(urls) == len(set(urls)), f"a module was fetched twice: {urls}"
    assert (root / "pycore" / "wav.py").read_text() == (REPO / "pycore" / "wav.py").read_text()
    # A module the bundle lacks is an ordinary ImportError, after one fetch that found nothing.
    assert report["missing"] == "ImportError" and urls[-1] == "bundle://root/pycore/no_such_module.py"
    assert report["others"] == 1
