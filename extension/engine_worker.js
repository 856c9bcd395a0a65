// The separation engine: a module worker started by the offscreen document.
//
// It hosts Pyodide + numpy + pycore (the Python core that cuts the song into
// segments, computes spectrograms, blends the model's outputs and writes WAV
// bytes) and the onnxruntime-web session that runs htdemucs on each segment.
// It stays warm between jobs; the offscreen document terminates it when idle.
//
// Messages in (from offscreen.js):
//   {type: 'warmup'}                                    load everything now
//   {type: 'separate', id, left, right, stems, format, overlap, shifts, cancel}
//       left/right: Float32Array at 44.1 kHz (transferred); cancel: Int32Array
//       on a SharedArrayBuffer, set to 1 by the offscreen document to cancel.
//   {type: 'separate-file', id, input, outDir, stems, format, clip, overlap, shifts, cancel}
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

const BASE = new URL('./', import.meta.url);
const MODEL_URL = new URL('models/htdemucs.onnx', BASE).href;
const PYCORE_DIR = '/lib/demixer/pycore';

// The model's contract (pycore/model_contract.py; models/htdemucs.json).
const SEGMENT = 343980;
const WAVE_DIMS = [1, 2, SEGMENT];
const SPEC_DIMS = [1, 4, 2048, 336];
const INPUT_WAVE = 'input';
const INPUT_SPEC = 'onnx::ReduceMean_1';
const OUTPUT_FREQ = 'output';
const OUTPUT_TIME = '5073';

let enginePromise = null; // resolves to {pyodide, separatePcm, model}

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
    stdout: (line) => console.log('[python]', line),
    stderr: (line) => console.warn('[python]', line),
  });
  timings.pyodide = seconds(t);

  t = performance.now();
  report('numpy');
  // Resolved through vendor/pyodide/pyodide-lock.json: the wheel lies beside it.
  await pyodide.loadPackage('numpy', { messageCallback: () => {}, errorCallback: (m) => console.warn(m) });
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
  timings.pycore = seconds(t);
  return { pyodide, separatePcm: (opts) => browser.separate_pcm(opts), separateFile: (opts) => browser.separate_file(opts), timings };
}

// ---------------------------------------------------------------- model side

async function webgpuAdapter() {
  if (!('gpu' in navigator) || !navigator.gpu) return null;
  try {
    const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
    // A software adapter (SwiftShader) would be far slower than WASM on the CPU.
    if (!adapter || adapter.info?.isFallbackAdapter || adapter.isFallbackAdapter) return null;
    return adapter;
  } catch {
    return null;
  }
}

function threads() {
  // Threads need SharedArrayBuffer, which needs cross-origin isolation (the
  // manifest's COOP/COEP keys give the extension's pages that).
  return self.crossOriginIsolated ? Math.max(1, navigator.hardwareConcurrency || 1) : 1;
}

async function importOrt(bundle) {
  const ort = await import(`./vendor/ort/${bundle}`);
  ort.env.wasm.wasmPaths = new URL('vendor/ort/', BASE).href;
  ort.env.wasm.numThreads = threads();
  ort.env.wasm.proxy = false; // we are already off the main thread
  ort.env.logLevel = 'warning';
  return ort;
}

class Model {
  constructor(ort, session, backend) {
    this.ort = ort;
    this.session = session;
    this.backend = backend;
    this.checked = backend === 'wasm';
  }

  async run(wave, spec) {
    const { ort } = this;
    const feeds = {
      [INPUT_WAVE]: new ort.Tensor('float32', wave, WAVE_DIMS),
      [INPUT_SPEC]: new ort.Tensor('float32', spec, SPEC_DIMS),
    };
    const out = await this.session.run(feeds);
    const freq = out[OUTPUT_FREQ];
    const time = out[OUTPUT_TIME];
    const result = [freq.data, time.data];
    for (const name of Object.keys(out)) if (name !== OUTPUT_FREQ && name !== OUTPUT_TIME) out[name].dispose?.();
    return result;
  }

  async release() {
    try {
      await this.session.release();
    } catch {
      /* already gone */
    }
  }
}

async function createSession(ort, providers) {
  return ort.InferenceSession.create(MODEL_URL, {
    executionProviders: providers,
    graphOptimizationLevel: 'all',
  });
}

async function loadModel(report) {
  const t = performance.now();
  report('the model');
  const adapter = await webgpuAdapter();
  if (adapter) {
    try {
      const ort = await importOrt('ort.webgpu.min.mjs');
      const session = await createSession(ort, ['webgpu', 'wasm']);
      return { model: new Model(ort, session, 'webgpu'), seconds: seconds(t) };
    } catch (e) {
      console.warn('WebGPU session failed, falling back to WASM:', e);
    }
  }
  const ort = await importOrt('ort.wasm.min.mjs');
  const session = await createSession(ort, ['wasm']);
  return { model: new Model(ort, session, 'wasm'), seconds: seconds(t) };
}

// A WebGPU session that fails on its first run falls back to WASM by itself.
async function runChecked(engine, wave, spec) {
  const { model } = engine;
  if (model.checked) return model.run(wave, spec);
  try {
    const out = await model.run(wave, spec);
    if (!out[0].every?.(Number.isFinite)) throw new Error('non-finite output');
    model.checked = true;
    return out;
  } catch (e) {
    console.warn(`the ${model.backend} backend failed on its first run, switching to WASM:`, e);
    await model.release();
    const ort = await importOrt('ort.wasm.min.mjs');
    engine.model = new Model(ort, await createSession(ort, ['wasm']), 'wasm');
    return engine.model.run(wave, spec);
  }
}

function engine(id) {
  if (!enginePromise) {
    const report = (what) => post({ type: 'engine', id, stage: 'loading', what });
    const t0 = performance.now();
    enginePromise = (async () => {
      // Python and the model load side by side: one is mostly CPU, the other I/O.
      const [py, m] = await Promise.all([loadPython(report), loadModel(report)]);
      const timings = { ...py.timings, model: m.seconds, total: seconds(t0) };
      return { pyodide: py.pyodide, separatePcm: py.separatePcm, separateFile: py.separateFile, model: m.model, timings };
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
  const whole = (a) => a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && !(a.buffer instanceof SharedArrayBuffer);
  if (x instanceof Type && whole(x)) return x;
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
const asBytes = (x) => ownCopy(x, Uint8Array, 'u8');

function toPlain(result) {
  if (result && typeof result.toJs === 'function') {
    const plain = result.toJs({ dict_converter: Object.fromEntries, create_pyproxies: false });
    result.destroy();
    return plain;
  }
  return result;
}

async function separate(msg) {
  const { id } = msg;
  const cancel = msg.cancel || new Int32Array(1);
  const isCancelled = () => Atomics.load(cancel, 0) !== 0;
  const timings = {};
  let t = performance.now();
  const warm = enginePromise !== null;
  const eng = await engine(id);
  post({ type: 'ready', id, backend: eng.model.backend, timings: warm ? { warm: true } : eng.timings });
  timings.engine = warm ? 0 : eng.timings.total;
  if (isCancelled()) throw Object.assign(new Error('cancelled'), { cancelled: true });

  t = performance.now();
  let last = performance.now();
  const segmentSeconds = [];
  let modelSeconds = 0; // of the segment in progress: the rest is Python (STFT, blending, WAV)
  const opts = {
    left: msg.left,
    right: msg.right,
    stems: msg.stems,
    format: msg.format,
    overlap: msg.overlap ?? 0.25,
    shifts: msg.shifts ?? 0,
    runModel: async (wave, spec) => {
      const t1 = performance.now();
      const out = await runChecked(eng, asFloat32(wave), asFloat32(spec));
      modelSeconds += (performance.now() - t1) / 1000;
      return out;
    },
    onStemBytes: (stem, bytes) => {
      const copy = asBytes(bytes);
      post({ type: 'bytes', id, stem: String(stem), bytes: copy }, [copy.buffer]);
    },
    onProgress: (done, total) => {
      const now = performance.now();
      // (0, total) comes before the first segment: the time until then is no segment's.
      const s = Number(done) > 0 ? (now - last) / 1000 : 0;
      last = now;
      if (s) segmentSeconds.push(s);
      const model = modelSeconds;
      modelSeconds = 0;
      post({ type: 'progress', id, done: Number(done), total: Number(total), seconds: s, model, backend: eng.model.backend });
    },
    isCancelled,
  };
  let result;
  try {
    result = toPlain(await eng.separatePcm(opts));
  } catch (e) {
    if (isCancelled()) throw Object.assign(new Error('cancelled'), { cancelled: true });
    throw e;
  }
  timings.separate = seconds(t);
  timings.segments = segmentSeconds.map((s) => Math.round(s * 100) / 100);
  timings.backend = eng.model.backend;
  return { result, timings };
}

// ------------------------------------------------------------ long files

const LAYOUTS = { four: ['drums', 'bass', 'other', 'vocals'], two: ['vocals', 'instrumental'] };

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
  if (isCancelled()) throw cancelled();

  const stems = LAYOUTS[msg.stems];
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
  let modelSeconds = 0;
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
      overlap: msg.overlap ?? 0.25,
      shifts: msg.shifts ?? 0,
      runModel: async (wave, spec) => {
        const t1 = performance.now();
        const out = await runChecked(eng, asFloat32(wave), asFloat32(spec));
        modelSeconds += (performance.now() - t1) / 1000;
        return out;
      },
      onProgress: (done, total) => {
        const now = performance.now();
        const s = Number(done) > 0 ? (now - last) / 1000 : 0;
        last = now;
        if (s) segmentSeconds.push(s);
        const model = modelSeconds;
        modelSeconds = 0;
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
    timings.backend = eng.model.backend;
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
  } else if (msg.type === 'separate') {
    busy = busy.then(async () => {
      try {
        const { result, timings } = await separate(msg);
        post({ type: 'done', id: msg.id, result, timings });
      } catch (e) {
        post({ type: 'failed', id: msg.id, error: describe(e), cancelled: Boolean(e && e.cancelled) });
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
