// The separation engine: a module worker started by the offscreen document.
//
// It hosts Pyodide + numpy + pycore (the Python core that cuts the song into
// segments, computes spectrograms, blends the model's outputs and writes the
// stems) and the model's sessions (session_pool.js), each a model_worker.js.
// It stays warm between jobs; the offscreen document terminates it when idle.
//
// It takes offscreen:separate and answers engine:loading, engine:ready,
// engine:progress, engine:transcribing (MIDI asked), then engine:done or engine:failed (lib/messages.js). The song is
// read in place from OPFS and the stems are written to OPFS as they come, so memory
// stays bounded by a few segments whatever the song's length.

import { loadPyodide } from '../vendor/pyodide/pyodide.mjs';
import { unexpected } from '../lib/messages.js';
import { openSync, remove } from '../lib/opfs.js';
import { transferableAsIs } from '../lib/transfer.js';
import { loadSchema } from '../lib/settings.js';
import { PEAKS_BIN, playPath, peaksPath } from '../lib/library.js';
import * as encoders from './encoders.js';
import { ModelWorker, SessionPool } from './session_pool.js';

const BASE = new URL('../', import.meta.url); // the bundle's root
const PYTHON_ROOT = '/lib/demixer'; // pycore/ lands here, fetched module by module

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
    // Pyodide's standard library with its bytecode precompiled (packaging/pyodide_bytecode.py): starting
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
  // pycore's modules are fetched from the bundle as Python imports them (pycore_importer.py).
  const importer = await fetch(new URL('engine/pycore_importer.py', BASE));
  if (!importer.ok) throw new Error(`the engine is incomplete (pycore_importer.py: HTTP ${importer.status})`);
  pyodide.FS.mkdirTree(PYTHON_ROOT);
  pyodide.FS.writeFile(`${PYTHON_ROOT}/pycore_importer.py`, await importer.text());
  pyodide.runPython(`import sys; sys.path.insert(0, "${PYTHON_ROOT}")`);
  const installer = pyodide.pyimport('pycore_importer');
  installer.install(BASE.href, PYTHON_ROOT).destroy();
  installer.destroy();
  // Kept for the worker's life: calling through the module avoids a borrowed
  // attribute proxy that would die with it.
  const browser = pyodide.pyimport('pycore.browser');
  // The stem names of each layout, from the core itself (one OPFS file is opened per stem before Python runs).
  const separateModule = pyodide.pyimport('pycore.separate');
  const layouts = separateModule.STEM_LAYOUTS.toJs({ dict_converter: Object.fromEntries });
  separateModule.destroy();
  // The stems whose notes a job with MIDI gets, per layout (pycore.stem_notes decides).
  const notesModule = pyodide.pyimport('pycore.stem_notes');
  const midiStems = Object.fromEntries(Object.entries(layouts).map(([name, stems]) => [name, notesModule.midi_stems(stems).toJs()]));
  notesModule.destroy();
  // The stems' tags, as the command line writes them (pycore/formats.py).
  const formatsModule = pyodide.pyimport('pycore.formats');
  const tags = (song, stem) => {
    const t = formatsModule.tags(song, stem);
    try {
      return t.toJs({ dict_converter: Object.fromEntries });
    } finally {
      t.destroy();
    }
  };
  timings.pycore = seconds(t);
  return { pyodide, separateFile: (opts) => browser.separate_file(opts), mixFile: (opts) => browser.mix_file(opts), layouts, midiStems, tags, timings };
}

// Python alone (a mix needs no model); a separation loads the model beside it.
let pythonPromise = null;
function python(report) {
  if (!pythonPromise) {
    pythonPromise = loadPython(report);
    pythonPromise.catch(() => {
      pythonPromise = null;
    });
  }
  return pythonPromise;
}

// numpy's modules precompiled (packaging/pyodide_bytecode.py), unpacked into its __pycache__ folders:
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

// The model runs in workers of its own, so Python never waits for it nor it for Python.
const spawnModelWorker = () => new ModelWorker(new Worker(new URL('model_worker.js', import.meta.url), { type: 'module' }));

// gpu: {gpu, why, diagnostics}, what the job's settings allow (offscreen:separate's `gpu`).
async function loadModel(report, gpu) {
  const t = performance.now();
  report('the model');
  const model = new SessionPool({ spawn: spawnModelWorker, cores: navigator.hardwareConcurrency, isolated: self.crossOriginIsolated, gpu });
  await model.load();
  model.loadOthers();
  return { model, seconds: seconds(t), key: JSON.stringify(gpu) };
}

function engine(id, gpu) {
  const report = (what) => post({ type: 'engine:loading', id, what });
  if (!enginePromise) {
    const t0 = performance.now();
    enginePromise = (async () => {
      // Python and the model load side by side (each mostly compiling and initialising WebAssembly).
      const [py, m] = await Promise.all([python(report), loadModel(report, gpu)]);
      const timings = { ...py.timings, model: m.seconds, total: seconds(t0) };
      return { ...py, model: m.model, modelKey: m.key, timings };
    })();
    enginePromise.catch(() => {
      enginePromise = null; // a later job may try again
    });
    return enginePromise;
  }
  // A warm engine whose model was loaded under another GPU choice loads it again.
  enginePromise = enginePromise.then(async (eng) => {
    if (eng.modelKey === JSON.stringify(gpu)) return eng;
    eng.model.terminate();
    const m = await loadModel(report, gpu);
    return { ...eng, model: m.model, modelKey: m.key };
  });
  enginePromise.catch(() => {
    enginePromise = null;
  });
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

// A format's schema entry (lib/job_settings.json), its encoder ready unless pycore writes it itself (WAV).
async function formatFor(value) {
  const format = (await loadSchema()).format.choices.find((c) => c.value === value);
  if (!format) throw new Error(`unknown format ${value}`);
  const encoded = format.codec !== 'pcm' && format.codec !== 'float';
  if (encoded) await encoders.prepare(format);
  return { format, encoded };
}

// Sync access handles: plain synchronous reads and writes for Python, and no copy of the
// file in memory. Each is exclusive, so every one opened is closed by closeAll().
function syncFiles() {
  const opened = [];
  return {
    async open(path, how) {
      const f = await openSync(path, how);
      opened.push(f);
      return f;
    },
    closeAll() {
      for (const f of opened) {
        try {
          f.close();
        } catch {
          /* closed already */
        }
      }
    },
  };
}

async function separateFile(msg) {
  const { id } = msg;
  const cancel = msg.cancel || new Int32Array(1);
  const isCancelled = () => Atomics.load(cancel, 0) !== 0;
  const cancelled = () => Object.assign(new Error('cancelled'), { cancelled: true });
  const timings = {};
  const warm = enginePromise !== null;
  const eng = await engine(id, msg.gpu ?? { gpu: true });
  post({ type: 'engine:ready', id, backend: eng.model.backend, device: eng.model.device, timings: warm ? { warm: true } : eng.timings });
  timings.engine = warm ? 0 : eng.timings.total;
  if (!warm) timings.engine_parts = eng.timings; // Pyodide, numpy, pycore, model (side by side), total
  if (isCancelled()) throw cancelled();

  const stems = eng.layouts[msg.settings.stems];
  if (!stems) throw new Error(`unknown stems choice ${msg.settings.stems}`);
  const { format, encoded } = await formatFor(msg.settings.format);
  const { open, closeAll } = syncFiles();
  const t = performance.now();
  const encodeTime = { seconds: 0 };
  const scratchPaths = []; // rescaling's float samples: gone once the stems are written
  let last = performance.now();
  const segmentSeconds = [];
  const modelSegments = []; // the model's own time per segment (in its worker)
  let modelSeconds = 0; // of the segment in progress: the rest is Python (STFT, blending, WAV)
  try {
    const input = await open(msg.input);
    const pathOf = (stem) => `${msg.outDir}/${stem}.${format.extension}`;
    const outputs = {};
    for (const stem of stems) outputs[stem] = await open(pathOf(stem), { create: true, truncate: true });
    const extra = {};
    if (encoded) {
      // Each stem's encoder writes its file as it goes; rescaling keeps the float samples in
      // a scratch file per stem until the song's peak is known (pycore's EncodedStems).
      extra.encoders = {};
      for (const stem of stems) {
        const file = outputs[stem];
        const encoder = await encoders.open(format, { write: (bytes, at) => file.write(at, bytes), tags: eng.tags(msg.song, stem) });
        extra.encoders[stem] = timed(encoder, encodeTime);
      }
      if (msg.settings.clip === 'rescale') {
        extra.scratch = {};
        for (const stem of stems) {
          scratchPaths.push(`${msg.scratchDir}/${stem}.f32`);
          extra.scratch[stem] = await open(scratchPaths.at(-1), { create: true, truncate: true });
        }
      }
    }
    // The library's extras (lib/library.js): the waveform peaks, and a WAV to play where the stems are not WAV.
    const play = {};
    const peaks = {};
    extra.peaksOutputs = {};
    for (const stem of stems) {
      peaks[stem] = peaksPath(stem);
      extra.peaksOutputs[stem] = await open(`${msg.outDir}/${peaks[stem]}`, { create: true, truncate: true });
    }
    if (encoded) {
      extra.playOutputs = {};
      for (const stem of stems) {
        play[stem] = playPath(stem);
        extra.playOutputs[stem] = await open(`${msg.outDir}/${play[stem]}`, { create: true, truncate: true });
      }
    } else for (const stem of stems) play[stem] = `${stem}.${format.extension}`;
    const midiStems = msg.settings.midi === 'on' ? eng.midiStems[msg.settings.stems] : [];
    const midiPath = (stem) => `${msg.outDir}/${stem}.mid`;
    if (midiStems.length) {
      // Each transcribed stem's mono audio waits in a scratch file until the stems are written.
      extra.notesScratch = {};
      extra.midiOutputs = {};
      for (const stem of midiStems) {
        scratchPaths.push(`${msg.scratchDir}/${stem}.notes.f32`);
        extra.notesScratch[stem] = await open(scratchPaths.at(-1), { create: true, truncate: true });
        extra.midiOutputs[stem] = await open(midiPath(stem), { create: true, truncate: true });
      }
      const notesTime = { seconds: 0 };
      timings.transcribe = notesTime;
      extra.runNotes = (audio) =>
        eng.model.runNotes(asFloat32(audio)).then((m) => {
          notesTime.model = (notesTime.model || 0) + m.seconds;
          return [m.note, m.onset, m.contour];
        });
      extra.onTranscribing = (stem) => {
        notesTime.started ??= performance.now();
        post({ type: 'engine:transcribing', id, stem });
      };
    }
    const opts = {
      input,
      outputs,
      ...extra,
      settings: msg.settings, // whole, as the service worker checked them
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
        const { backend, device } = eng.model;
        post({ type: 'engine:progress', id, done: Number(done), total: Number(total), seconds: s, model, backend, device });
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
    result.files = result.stems.map((stem) => ({ stem, path: pathOf(stem) }));
    if (result.peaks?.bin !== PEAKS_BIN) throw new Error(`the waveform peaks came with bins of ${result.peaks?.bin} frames, not ${PEAKS_BIN}`);
    result.peaks = { bin: PEAKS_BIN, files: peaks };
    result.play = play;
    // A .mid only for the stems whose notes were written (a failure is one of the warnings).
    for (const stem of Object.keys(result.midi || {})) result.files.push({ stem, path: midiPath(stem), midi: true });
    if (timings.transcribe) {
      const { started, model } = timings.transcribe;
      timings.transcribe = started ? { seconds: seconds(started), model: Math.round((model || 0) * 100) / 100 } : undefined;
    }
    timings.separate = seconds(t);
    if (encoded) timings.encode = Math.round(encodeTime.seconds * 100) / 100; // inside separate
    timings.segments = segmentSeconds.map((x) => Math.round(x * 100) / 100);
    timings.model_segments = modelSegments;
    timings.backend = eng.model.backend;
    timings.device = eng.model.device;
    if (eng.model.refused) timings.gpu_refused = eng.model.refused; // why the GPU did not run it
    if (eng.model.failed) timings.gpu_failed = true; // tried and failed: later jobs keep off it
    if (eng.model.agreement !== null) {
      timings.gpu_agreement_db = eng.model.agreement; // the first segment, the GPU against the CPU, worst source
      timings.gpu_agreement_by_source = eng.model.agreementBySource;
    }
    timings.sessions = eng.model.sessions;
    return { result, timings };
  } finally {
    closeAll();
    for (const path of scratchPaths) await remove(path);
  }
}

// ------------------------------------------------------------ the mix you hear

// A library entry's stems (WAV), each times its gain, summed into one file of the format
// asked, by pycore (pycore/mix.py): the same clip policy and encoders as the stems.
async function mixFile(msg) {
  const py = await python(() => {});
  const { format, encoded } = await formatFor(msg.format);
  const { open, closeAll } = syncFiles();
  const scratch = `${msg.scratchDir}/mix.f32`;
  try {
    const inputs = {};
    for (const [stem, path] of Object.entries(msg.inputs)) inputs[stem] = await open(path);
    const output = await open(msg.output, { create: true, truncate: true });
    const opts = { inputs, gains: msg.gains, settings: { format: msg.format, clip: 'rescale' }, output };
    if (encoded) {
      opts.encoder = await encoders.open(format, { write: (bytes, at) => output.write(at, bytes), tags: py.tags(msg.song, msg.label) });
      opts.scratch = await open(scratch, { create: true, truncate: true });
    }
    const result = toPlain(await py.mixFile(opts));
    if (result.error) throw Object.assign(new Error(String(result.error)), { input: true });
    return { frames: Number(result.frames), warnings: result.warnings || [] };
  } finally {
    closeAll();
    await remove(scratch);
  }
}

// An encoder whose calls are timed into `total.seconds` (for the job's timings).
function timed(encoder, total) {
  const time = (fn) => (...args) => {
    const t = performance.now();
    const out = fn(...args);
    const done = () => (total.seconds += (performance.now() - t) / 1000);
    if (out && typeof out.then === 'function') return out.finally(done);
    done();
    return out;
  };
  return { write: time(encoder.write), finish: time(encoder.finish), abort: () => encoder.abort() };
}

// One job at a time: the offscreen document queues, but guard anyway.
let busy = Promise.resolve();

self.onmessage = ({ data: msg }) => {
  switch (msg.type) {
    case 'offscreen:separate':
      busy = busy.then(async () => {
        try {
          const { result, timings } = await separateFile(msg);
          post({ type: 'engine:done', id: msg.id, result, timings });
        } catch (e) {
          post({ type: 'engine:failed', id: msg.id, error: describe(e), cancelled: Boolean(e?.cancelled), input: Boolean(e?.input) });
        }
      });
      break;
    case 'offscreen:mix':
      busy = busy.then(async () => {
        try {
          const { frames, warnings } = await mixFile(msg);
          post({ type: 'engine:mixed', id: msg.id, frames, warnings });
        } catch (e) {
          post({ type: 'engine:mix-failed', id: msg.id, error: describe(e) });
        }
      });
      break;
    default:
      unexpected('engine worker', msg);
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
