// Starts Python as the engine does (extension/engine/engine_worker.js), with the bundle's
// precompiled bytecode, and reports which modules Python still compiled from source
// while starting and importing pycore.browser.
//
//   node tests/pyodide/bytecode_check.mjs PYODIDE_DIR NUMPY_WHEEL BYTECODE_DIR REPO_ROOT    prints one JSON line

import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [pyodideDir, numpyWheel, bytecodeDir, repoRoot] = process.argv.slice(2).map((p) => path.resolve(p));
const { loadPyodide } = await import(pathToFileURL(path.join(pyodideDir, 'pyodide.mjs')).href);
const pyodide = await loadPyodide({
  indexURL: pyodideDir + path.sep,
  stdLibURL: path.join(bytecodeDir, 'python_stdlib.zip'),
});
// Every compile from source from here on is recorded: zipimport's for the standard
// library, SourceLoader's for files (numpy, pycore).
pyodide.runPython(`
import importlib._bootstrap_external as bootstrap
import zipimport

COMPILED = []
_zip_compile = zipimport._compile_source
def _recording_zip_compile(pathname, source):
    COMPILED.append(pathname)
    return _zip_compile(pathname, source)
zipimport._compile_source = _recording_zip_compile

_source_to_code = bootstrap.SourceLoader.source_to_code
def _recording_source_to_code(self, data, path, *args, **kwargs):
    COMPILED.append(path)
    return _source_to_code(self, data, path, *args, **kwargs)
bootstrap.SourceLoader.source_to_code = _recording_source_to_code
`);
await pyodide.loadPackage(numpyWheel, { messageCallback: () => {} });
const sitePackages = pyodide.runPython('import sysconfig; sysconfig.get_path("purelib")');
pyodide.unpackArchive(new Uint8Array(fs.readFileSync(path.join(bytecodeDir, 'numpy-bytecode.zip'))), 'zip', { extractDir: sitePackages });
pyodide.FS.mkdirTree('/tmp/core/pycore');
for (const f of fs.readdirSync(path.join(repoRoot, 'pycore'))) {
  if (f.endsWith('.py')) pyodide.FS.writeFile(`/tmp/core/pycore/${f}`, fs.readFileSync(path.join(repoRoot, 'pycore', f)));
}
console.log(pyodide.runPython(`
import json, sys
sys.path.insert(0, "/tmp/core")
import pycore.browser
json.dumps({"compiled": COMPILED, "modules": sorted(sys.modules)})
`));
