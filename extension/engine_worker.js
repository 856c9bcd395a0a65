// The separation engine: a module worker started by the offscreen document.
//
// It hosts Pyodide + numpy + pycore (the Python core that cuts the song into
// segments, computes spectrograms, blends the model's outputs and writes WAV
// bytes) and starts model_worker.js, the onnxruntime-web session that runs
// htdemucs on each segment.
// It stays warm between jobs; the offscreen document terminates it when idle.
//
// Messages in (from offscreen.js):
//   {type: 'warmup'}                                    load everything now
//   {type: 'separate-file', id, input, outDir, stems, format, preset, clip, cancel}
//       cancel: Int32Array (on a SharedArrayBuffer where the page is cross-origin
//       isolated), set to 1 by the offscreen document to cancel.
//       input: OPFS path of a WAV (any rate, channels, sample format), read in
//       place; the stems are written to OPFS outDir/<stem>.wav as they come, so
//       memory stays bounded by a few segments whatever the song's length.
//       Answers 'done' (result.files: the stem paths, complete and closed) or
//       'failed' (input: true when the file, not the engine, is at fault).
// Messages out:
//   {type: 'engine', id, stage: 'loading', what}        cold-start steps
//   {type: 'ready', id, backend, timings}               engine loaded
//   {type: 'progress', id, done, total, seconds}        one model segment finished
//   {type: 'bytes', id, stem, bytes}                    WAV bytes of one stem, in order
//   {type: 'done', id, result, timings}                 result: {stems, frames, warnings}
//   {type: 'failed', id, error, cancelled}

import { loadPyodide } from './vendor/pyodide/pyodide.mjs';
import { openSync } from './opfs.js';
import { transferableAsIs } from './transfer.js';

const BASE = new URL('./', import.meta.url);
const PYCORE_DIR = '/lib/demixer/pycore';

let enginePromise = null; // resolves to {pyodide, separateFile, model}

function post(msg, transfer = []) {
  self.postMessage(msg, transfer);
}

function seconds(t0) {
  return Math.round((performance.now() - t0) / 10) / 100;
}

// --------------------------------------------------------------- Python side

async function loadPython(report) {
  const timings = {};
  let t = performance.now();
  report('Python');
  const pyodide = await loadPyodide({
    indexURL: new URL('vendor/pyodide/', BASE).href,
    // Pyodide's standard library with its bytecode precompiled (build_bytecode.py): starting
    // Python no longer compiles the modules it imports, which was half of Pyodide's start.
    stdLibURL: new URL('python/python_stdlib.zip', BASE).href,
    stdout: (line) => console.log('[python]', line),
    stderr: (line) => console.warn('[python]', line),
  });
  timings.pyodide = seconds(t);

  t = performance.now();
  report('numpy');
  // Resolved through vendor/pyodide/pyodide-lock.json: the wheel lies beside it.
  await pyodide.loadPackage('numpy', { messageCallback: () => {}, errorCallback: (m) => console.warn(m) });
  await addNumpyBytecode(pyodide);
  timings.numpy = seconds(t);

  t = performance.now();
  report('the separation code');
  // pycore's modules are fetched from the extension when Python imports them:
  // an extension cannot list its own folders, and this way the bundle needs no
  // file list and only the modules the browser uses are read. A meta-path hook
  // copies pycore/<name>.py into Pyodide's file system on first import
  // (synchronous XHR, allowed in workers), then the usual importer takes over.
  pyodide.FS.mkdirTree(PYCORE_DIR);
  pyodide.globals.set('_DEMIXER_BASE', BASE.href);
  pyodide.runPython(`
import importlib, os, sys
from js import XMLHttpRequest

class _FetchPycore:
    base, root = _DEMIXER_BASE, os.path.dirname("${PYCORE_DIR}")

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname.split(".")[0] != "pycore":
            return None
        rel = "pycore/__init__.py" if fullname == "pycore" else fullname.replace(".", "/") + ".py"
        dest = os.path.join(cls.root, rel)
        if not os.path.exists(dest):
            try:
                xhr = XMLHttpRequest.new()
                xhr.open("GET", cls.base + rel, False)
                xhr.send()
            except Exception:
                return None  # no such file in the bundle: the usual ImportError follows
            if xhr.status != 200:
                return None
            with open(dest, "w", encoding="utf-8") as f:
                f.write(xhr.responseText)
            importlib.invalidate_caches()
        return None  # the file is in place: the path finder imports it

sys.meta_path.insert(0, _FetchPycore)
sys.path.insert(0, _FetchPycore.root)
del _DEMIXER_BASE
`);
  // Kept for the worker's life: calling through the module avoids a borrowed
  // attribute proxy that would die with it.
  const browser = pyodide.pyimport('pycore.browser');
  // The stem names of each layout, from the core itself (one OPFS file is opened per stem before Python runs).
  const separateModule = pyodide.pyimport('pycore.separate');
  const layouts = separateModule.STEM_LAYOUTS.toJs({ dict_converter: Object.fromEntries });
  separateModule.destroy();
  timings.pycore = seconds(t);
  return { pyodide, separateFile: (opts) => browser.separate_file(opts), layouts, timings };
}

// numpy's modules precompiled (build_bytecode.py), unpacked into its __pycache__ folders:
// `import numpy` then reads bytecode instead of compiling ~170 modules. Each file is
// checked against its source's hash, so a mismatch only costs the compile it saves.
async function addNumpyBytecode(pyodide) {
  try {
    const response = await fetch(new URL('python/numpy-bytecode.zip', BASE));
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const sitePackages = pyodide.runPython('import sysconfig; sysconfig.get_path("purelib")');
    pyodide.unpackArchive(await response.arrayBuffer(), 'zip', { extractDir: sitePackages });
  } catch (e) {
    console.warn('numpy bytecode not used (numpy compiles its modules instead):', e);
  }
}

// ---------------------------------------------------------------- model side

// The model runs in model_worker.js, so Python never waits for it nor it for Python.
class ModelWorker {
  constructor() {
    this.worker = new Worker(new URL('model_worker.js', import.meta.url), { type: 'module' });
    this.seq = 0;
    this.waiting = new Map(); // seq -> {resolve, reject}
    this.worker.onmessage = ({ data: m }) => {
      const w = this.waiting.get(m.seq);
      if (!w) return;
      this.waiting.delete(m.seq);
      if (m.type === 'error') w.reject(new Error(m.message));
      else w.resolve(m);
    };
    this.worker.onerror = (e) => {
      for (const w of this.waiting.values()) w.reject(new Error(`the model worker failed: ${e.message ?? e}`));
      this.waiting.clear();
    };
  }

  request(msg, transfer = []) {
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      this.waiting.set(seq, { resolve, reject });
      this.worker.postMessage({ ...msg, seq }, transfer);
    });
  }
}

// Where a page may use threads (cross-origin isolated: Chromium), one session takes every
// core: a second would double the model's memory for about 10 % more speed. Without
// shared memory (Firefox) a session has one thread, so one session per core, up to
// MAX_SESSIONS, each taking the next waiting segment: measured in Firefox, two sessions do
// 1.9 times the work of one. Each holds its own model (about 1.2 GB at its peak), hence the cap.
const MAX_SESSIONS = 2;

class ModelRunner {
  constructor() {
    this.first = null; // the session loaded first (threads, or the GPU): the one that never gives up a segment
    this.idle = []; // loaded workers with nothing to do
    this.queue = []; // segments waiting for a worker
    this.backend = 'loading';
    this.sessions = 1; // how many segments the model can work on at once (pycore's in_flight)
  }

  async load() {
    const cores = Math.max(1, navigator.hardwareConcurrency || 1);
    const threads = self.crossOriginIsolated ? cores : 1;
    this.first = new ModelWorker();
    const loaded = await this.first.request({ type: 'load', threads, gpu: true });
    this.backend = loaded.backend;
    this.sessions = loaded.backend === 'wasm' && threads === 1 ? Math.min(MAX_SESSIONS, cores) : 1;
    this.join(this.first);
    return loaded;
  }

  // The other single-thread sessions load once the engine is ready, so they do not slow
  // its start, and take segments as they arrive; one that fails to load is just not used.
  loadOthers() {
    for (let i = 1; i < this.sessions; i++) {
      const other = new ModelWorker();
      other.request({ type: 'load', threads: 1, gpu: false }).then(
        () => this.join(other),
        (e) => {
          console.warn('a second model session could not start; carrying on with one:', e);
          other.worker.terminate();
        },
      );
    }
  }

  join(worker) {
    this.idle.push(worker);
    this.dispatch();
  }

  // Resolves to {out: [freq, time], seconds} (Float32Arrays); wave and spec are transferred away.
  run(wave, spec) {
    return new Promise((resolve, reject) => {
      this.queue.push({ wave, spec, resolve, reject });
      this.dispatch();
    });
  }

  dispatch() {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.shift();
      const segment = this.queue.shift();
      const { wave, spec, resolve, reject } = segment;
      // The first session gets the inputs outright; another gets a copy, so that if it fails
      // (most likely out of memory: it holds a second model) its segment can go to the first.
      const extra = worker !== this.first;
      worker.request({ type: 'run', wave, spec }, extra ? [] : [wave.buffer, spec.buffer]).then(
        (m) => {
          this.backend = m.backend; // a GPU that failed its check has become WASM
          resolve({ out: [m.freq, m.time], seconds: m.seconds });
          this.join(worker);
        },
        (e) => {
          if (!extra) {
            reject(e);
            this.join(worker);
            return;
          }
          console.warn('a model session failed; the others carry on without it:', e);
          worker.worker.terminate();
          this.queue.unshift(segment);
          this.dispatch();
        },
      );
    }
  }
}

async function loadModel(report) {
  const t = performance.now();
  report('the model');
  const model = new ModelRunner();
  await model.load();
  return { model, seconds: seconds(t) };
}

function engine(id) {
  if (!enginePromise) {
    const report = (what) => post({ type: 'engine', id, stage: 'loading', what });
    const t0 = performance.now();
    enginePromise = (async () => {
      // Python and the model load side by side (each mostly compiling and initialising WebAssembly).
      const [py, m] = await Promise.all([loadPython(report), loadModel(report)]);
      m.model.loadOthers();
      const timings = { ...py.timings, model: m.seconds, total: seconds(t0) };
      return { pyodide: py.pyodide, separateFile: py.separateFile, layouts: py.layouts, model: m.model, timings };
    })();
    enginePromise.catch(() => {
      enginePromise = null; // a later job may try again
    });
  }
  return enginePromise;
}

// ------------------------------------------------------------------ the job

// Python hands us numpy data either already converted (a typed array, what
// pycore.browser's to_js makes) or as a PyProxy of a buffer; copy it out unless
// it is a fresh array of its own, since proxies passed to JS are freed when the
// call returns, and only a whole, unshared buffer can be transferred.
function ownCopy(x, Type, format) {
  if (x instanceof Type && transferableAsIs(x)) return x;
  if (x && typeof x.getBuffer === 'function') {
    const view = x.getBuffer(format);
    try {
      return view.data.slice();
    } finally {
      view.release();
    }
  }
  if (ArrayBuffer.isView(x)) return new Type(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength));
  throw new TypeError(`expected a ${Type.name}`);
}

const asFloat32 = (x) => ownCopy(x, Float32Array, 'f32');

function toPlain(result) {
  if (result && typeof result.toJs === 'function') {
    const plain = result.toJs({ dict_converter: Object.fromEntries, create_pyproxies: false });
    result.destroy();
    return plain;
  }
  return result;
}

// ------------------------------------------------------------ long files

async function separateFile(msg) {
  const { id } = msg;
  const cancel = msg.cancel || new Int32Array(1);
  const isCancelled = () => Atomics.load(cancel, 0) !== 0;
  const cancelled = () => Object.assign(new Error('cancelled'), { cancelled: true });
  const timings = {};
  const warm = enginePromise !== null;
  const eng = await engine(id);
  post({ type: 'ready', id, backend: eng.model.backend, timings: warm ? { warm: true } : eng.timings });
  timings.engine = warm ? 0 : eng.timings.total;
  if (!warm) timings.engine_parts = eng.timings; // Pyodide, numpy, pycore, model (side by side), total
  if (isCancelled()) throw cancelled();

  const stems = eng.layouts[msg.stems];
  if (!stems) throw new Error(`unknown stems choice ${msg.stems}`);
  // Sync access handles: plain synchronous reads and writes for Python, and no
  // copy of the file in memory. Each is exclusive, so all are closed below.
  const opened = [];
  const open = async (path, how) => {
    const f = await openSync(path, how);
    opened.push(f);
    return f;
  };
  const t = performance.now();
  let last = performance.now();
  const segmentSeconds = [];
  const modelSegments = []; // the model's own time per segment (in its worker)
  let modelSeconds = 0; // of the segment in progress: the rest is Python (STFT, blending, WAV)
  try {
    const input = await open(msg.input);
    const outputs = {};
    for (const stem of stems) outputs[stem] = await open(`${msg.outDir}/${stem}.wav`, { create: true, truncate: true });
    const opts = {
      input,
      outputs,
      stems: msg.stems,
      format: msg.format,
      clip: msg.clip || 'rescale',
      preset: msg.preset || 'balanced',
      inFlight: eng.model.sessions, // segments the model can work on at once
      // Returns at once with the model's promise: pycore makes the next segment's
      // inputs and blends the last one's outputs while the model works.
      runModel: (wave, spec) =>
        eng.model.run(asFloat32(wave), asFloat32(spec)).then(({ out, seconds: s }) => {
          modelSeconds += s;
          return out;
        }),
      onProgress: (done, total) => {
        const now = performance.now();
        // (0, total) comes before the first segment: the time until then is no segment's.
        const s = Number(done) > 0 ? (now - last) / 1000 : 0;
        last = now;
        if (s) segmentSeconds.push(s);
        const model = modelSeconds;
        modelSeconds = 0;
        if (s) modelSegments.push(Math.round(model * 100) / 100);
        post({ type: 'progress', id, done: Number(done), total: Number(total), seconds: s, model, backend: eng.model.backend });
      },
      isCancelled,
    };
    let result;
    try {
      result = toPlain(await eng.separateFile(opts));
    } catch (e) {
      if (isCancelled()) throw cancelled();
      throw e;
    }
    if (result.error) {
      const text = String(result.error);
      throw Object.assign(new Error(text.charAt(0).toUpperCase() + text.slice(1)), { input: true });
    }
    result.files = result.stems.map((stem) => ({ stem, path: `${msg.outDir}/${stem}.wav` }));
    timings.separate = seconds(t);
    timings.segments = segmentSeconds.map((x) => Math.round(x * 100) / 100);
    timings.model_segments = modelSegments;
    timings.backend = eng.model.backend;
    timings.sessions = eng.model.sessions;
    return { result, timings };
  } finally {
    for (const f of opened) {
      try {
        f.close();
      } catch {
        /* closed already */
      }
    }
  }
}

// One job at a time: the offscreen document queues, but guard anyway.
let busy = Promise.resolve();

self.onmessage = (event) => {
  const msg = event.data;
  if (msg.type === 'warmup') {
    engine(msg.id ?? null).then(
      (eng) => post({ type: 'ready', id: msg.id ?? null, backend: eng.model.backend, timings: eng.timings }),
      (e) => post({ type: 'failed', id: msg.id ?? null, error: describe(e), cancelled: false }),
    );
  } else if (msg.type === 'separate-file') {
    busy = busy.then(async () => {
      try {
        const { result, timings } = await separateFile(msg);
        post({ type: 'done', id: msg.id, result, timings });
      } catch (e) {
        post({ type: 'failed', id: msg.id, error: describe(e), cancelled: Boolean(e && e.cancelled), input: Boolean(e && e.input) });
      }
    });
  }
};

function describe(e) {
  if (!e) return 'unknown error';
  const text = e.message || String(e);
  // Python exceptions arrive as PythonError with the whole traceback: keep the last line.
  if (e.type || /Traceback/.test(text)) {
    const lines = text.trim().split('\n');
    console.error(text);
    return lines[lines.length - 1];
  }
  return text;
}
