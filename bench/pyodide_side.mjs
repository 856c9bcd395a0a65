// Times the Python side of one segment inside Pyodide (node's V8 and WASM engine are
// Chromium's): what bench/profile.py prints as "Python side".
//
//   node bench/pyodide_side.mjs PYODIDE_DIR NUMPY_WHEEL REPO_ROOT     prints one JSON line

import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [pyodideDir, numpyWheel, repoRoot] = process.argv.slice(2).map((p) => path.resolve(p));
const { loadPyodide } = await import(pathToFileURL(path.join(pyodideDir, 'pyodide.mjs')).href);
const pyodide = await loadPyodide({ indexURL: pyodideDir + path.sep });
await pyodide.loadPackage(numpyWheel, { messageCallback: () => {} });
pyodide.FS.mkdirTree('/home/pyodide/pycore');
for (const f of fs.readdirSync(path.join(repoRoot, 'pycore'))) {
  if (f.endsWith('.py')) pyodide.FS.writeFile(`/home/pyodide/pycore/${f}`, fs.readFileSync(path.join(repoRoot, 'pycore', f)));
}
const result = pyodide.runPython(`
import io, json, sys, time
sys.path.insert(0, "/home/pyodide")
import numpy as np
from pycore.model_contract import SEGMENT, SOURCES
from pycore.separate import model_inputs, sources_from_outputs, _Pass, _triangle
from pycore.wav import WavWriter

rng = np.random.default_rng(0)
window = rng.standard_normal((2, SEGMENT)).astype(np.float32) * 0.1
freq = rng.standard_normal((1, 4, 4, 2048, 336)).astype(np.float32) * 0.01
wave_out = rng.standard_normal((1, 4, 2, SEGMENT)).astype(np.float32) * 0.1

def best(fn, n=3):
    times = []
    for _ in range(n):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return min(times)

out = sources_from_outputs(freq, wave_out)
def blend():
    p = _Pass(0, 10 * SEGMENT, int(0.75 * SEGMENT), _triangle())
    p.add(0, 0, out); p.take(p.ready_until)
def encode():
    for s in out:
        WavWriter(io.BytesIO(), "wav16", 2, 44100, SEGMENT).write(s)
json.dumps({
    "stft (model inputs)": best(lambda: model_inputs(window)),
    "istft + time branch (4 sources)": best(lambda: sources_from_outputs(freq, wave_out)),
    "overlap-add blend": best(blend),
    "WAV encode (4 stems, 16-bit)": best(encode),
})
`);
console.log(result);
