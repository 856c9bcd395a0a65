// Compiles Pyodide's standard library and numpy to bytecode with Pyodide's own
// Python (so the bytecode's version is exactly the one the extension runs).
// Called by packaging/pyodide_bytecode.py; run in node:
//
//   node packaging/pyodide_bytecode.mjs PYODIDE_DIR NUMPY_WHEEL PYCORE_DIR OUT_DIR     prints one JSON line
//
// Writes OUT_DIR/python_stdlib.zip (the original zip plus a .pyc beside each .py that
// the engine imports when it starts: what `import pycore.browser` pulls in; zipimport
// prefers the .pyc) and OUT_DIR/numpy-bytecode.zip (all of numpy's __pycache__ files,
// relative to site-packages). Each .pyc is hash-checked (PEP 552): Python compares it
// with its source's hash, which costs far less than compiling, and falls back to the
// source if they ever differ. A module imported later, or added to pycore's imports
// after a build, is compiled when imported, as before.

import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [pyodideDir, numpyWheel, pycoreDir, outDir] = process.argv.slice(2).map((p) => path.resolve(p));
const { loadPyodide } = await import(pathToFileURL(path.join(pyodideDir, 'pyodide.mjs')).href);
const pyodide = await loadPyodide({ indexURL: pyodideDir + path.sep });
await pyodide.loadPackage(numpyWheel, { messageCallback: () => {} });
pyodide.FS.writeFile('/tmp/stdlib-in.zip', fs.readFileSync(path.join(pyodideDir, 'python_stdlib.zip')));
pyodide.FS.mkdirTree('/tmp/core/pycore');
for (const f of fs.readdirSync(pycoreDir)) {
  if (f.endsWith('.py')) pyodide.FS.writeFile(`/tmp/core/pycore/${f}`, fs.readFileSync(path.join(pycoreDir, f)));
}

const summary = pyodide.runPython(`
import importlib._bootstrap_external as bootstrap
import importlib.util
import json
import pathlib
import sysconfig
import sys
import zipfile

sys.path.insert(0, "/tmp/core")
import pycore.browser  # noqa: F401  (what the engine imports when it starts)

site = pathlib.Path("/" + sysconfig.get_path("purelib").lstrip("/"))  # it says //lib/...; the engine asks it too

STDLIB = "/lib/python312.zip/"
started = {m.__file__.removeprefix(STDLIB) for m in list(sys.modules.values())
           if (getattr(m, "__file__", None) or "").startswith(STDLIB)}

def checked_pyc(source: bytes, filename: str) -> bytes:
    code = compile(source, filename, "exec", dont_inherit=True)
    return bytes(bootstrap._code_to_hash_pyc(code, importlib.util.source_hash(source), checked=True))

stdlib = 0
with zipfile.ZipFile("/tmp/stdlib-in.zip") as zin, zipfile.ZipFile("/tmp/python_stdlib.zip", "w", zipfile.ZIP_DEFLATED) as zout:
    for info in zin.infolist():
        data = zin.read(info)
        zout.writestr(info, data)
        if info.filename in started:
            try:
                pyc = checked_pyc(data, STDLIB + info.filename)
            except SyntaxError:  # files that are data, not modules
                continue
            pyc_info = zipfile.ZipInfo(info.filename + "c", date_time=info.date_time)
            zout.writestr(pyc_info, pyc, zipfile.ZIP_DEFLATED)
            stdlib += 1

numpy = 0
with zipfile.ZipFile("/tmp/numpy-bytecode.zip", "w", zipfile.ZIP_DEFLATED) as zout:
    for src in sorted((site / "numpy").rglob("*.py")):
        try:
            pyc = checked_pyc(src.read_bytes(), str(src))
        except SyntaxError:
            continue
        rel = pathlib.Path(importlib.util.cache_from_source(str(src))).relative_to(site)
        zout.writestr(zipfile.ZipInfo(rel.as_posix(), date_time=(1980, 1, 1, 0, 0, 0)), pyc, zipfile.ZIP_DEFLATED)
        numpy += 1

json.dumps({"stdlib_modules": stdlib, "numpy_modules": numpy, "site_packages": str(site), "magic": importlib.util.MAGIC_NUMBER.hex()})
`);
fs.mkdirSync(outDir, { recursive: true });
for (const name of ['python_stdlib.zip', 'numpy-bytecode.zip']) {
  fs.writeFileSync(path.join(outDir, name), pyodide.FS.readFile(`/tmp/${name}`));
}
console.log(summary);
