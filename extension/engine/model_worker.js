// The model runner: htdemucs in onnxruntime-web, in a worker of its own.
//
// The engine worker starts it (session_pool.js; it ends with that worker), so the model
// runs while Python makes the next segment's spectrogram and inverts the last
// one's: neither waits for the other. Segments arrive and leave as transferred buffers (no copies).
//
// The model is a chain of stages (models/prepare.py), one session each, run in turn:
// onnxruntime-web cannot switch off its planner's buffer reuse, which in one whole
// session keeps the U-Net's encoder buffers allocated across the transformer.
//
// It also runs the note model (Basic Pitch, models/basic_pitch/) on the CPU: engine:run-notes,
// answered with model:notes; its small session is made on first use.
//
// It takes engine:load-model (create the sessions: WebGPU if asked and usable, else WASM;
// `profile`: onnxruntime's per-operator profiler, whose events bench/profile.py reads from
// the console), engine:run-model and engine:end-profiling, and answers each with
// model:loaded, model:result, model:profiled or model:error (lib/messages.js).

import { transferableAsIs } from '../lib/transfer.js';

const BASE = new URL('../', import.meta.url); // the bundle's root
const STAGES_URL = new URL('models/htdemucs/stages.json', BASE);
// The model's contract (tensor names, roles and shapes), from models/htdemucs.json by build.py.
const CONTRACT_URL = new URL('models/htdemucs/contract.json', BASE);
const NOTES_URL = new URL('models/basic_pitch/nmp.onnx', BASE);
const NOTES_CONTRACT_URL = new URL('models/basic_pitch/contract.json', BASE);

async function fetchJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`the model in the bundle is incomplete (${url.pathname} is missing)`);
  return response.json();
}

// A GPU session must reproduce the CPU's outputs on the first segment to this
// agreement (SDR of GPU against CPU outputs; fp32 on both sides gives > 60 dB),
// otherwise the GPU is not used: a wrong driver must not give wrong stems.
const GPU_AGREEMENT_DB = 40;

// {ort, model, backend, threads, verify, device, refused, agreement, gpu}: device says what runs the
// model ("GPU: vendor architecture", "CPU: 2 threads"), refused why the GPU is not used (or null).
let state = null;

// The adapter to use, or why there is none. `software`: the diagnostic switch that also
// accepts a software adapter (SwiftShader), for tests and bug reports (docs/architecture.md).
async function webgpuAdapter(software) {
  if (!('gpu' in navigator) || !navigator.gpu) return { why: 'this browser offers no WebGPU' };
  try {
    const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) return { why: 'no GPU adapter' };
    // A software adapter would be far slower than WASM on the CPU.
    if ((adapter.info?.isFallbackAdapter || adapter.isFallbackAdapter) && !software) return { why: 'only a software GPU adapter' };
    return { adapter };
  } catch (e) {
    return { why: `no GPU adapter (${e?.message ?? e})` };
  }
}

const gpuName = (adapter) => `GPU: ${[adapter.info?.vendor, adapter.info?.architecture].filter(Boolean).join(' ') || 'unknown adapter'}`;
const cpuName = (threads) => `CPU: ${threads} thread${threads === 1 ? '' : 's'}`;

async function importOrt(bundle, threads) {
  const ort = await import(new URL(`vendor/ort/${bundle}`, BASE).href);
  ort.env.wasm.wasmPaths = new URL('vendor/ort/', BASE).href;
  // Threads need SharedArrayBuffer, which needs cross-origin isolation (the
  // manifest's COOP/COEP keys give the extension's pages and workers that).
  ort.env.wasm.numThreads = self.crossOriginIsolated ? threads : 1;
  ort.env.wasm.proxy = false; // this worker is the proxy
  ort.env.logLevel = 'warning';
  return ort;
}

function sessionOptions(providers, profile) {
  return {
    executionProviders: providers,
    enableProfiling: profile,
    graphOptimizationLevel: 'all',
    // As natively (pycore/onnx_runner.py): the memory pattern would lay every tensor out
    // side by side for the whole run.
    enableMemPattern: false,
  };
}

// The stages of stages.json, each a session, with what each reads and gives.
class StagedModel {
  static async create(ort, providers, profile = false) {
    const [listing, contract] = await Promise.all([fetchJson(STAGES_URL), fetchJson(CONTRACT_URL)]);
    const model = new StagedModel(ort, listing, contract);
    try {
      for (const stage of listing.stages) {
        const response = await fetch(new URL(stage.file, STAGES_URL));
        if (!response.ok) throw new Error(`the model in the bundle is incomplete (${stage.file} is missing)`);
        const bytes = new Uint8Array(await response.arrayBuffer()); // dropped once the session has it
        model.sessions.push(await ort.InferenceSession.create(bytes, sessionOptions(providers, profile)));
      }
    } catch (e) {
      await model.release();
      throw e;
    }
    return model;
  }

  constructor(ort, listing, contract) {
    this.ort = ort;
    this.stages = listing.stages;
    this.sessions = [];
    this.names = contract.roles; // {wave, spec, freq, time}: the graph's tensor names
    this.sources = contract.sources; // the order of the sources in both outputs
    this.dims = { ...contract.inputs, ...contract.outputs };
    const { freq, time } = this.names;
    // After stage k, what is still needed: the model's outputs and what a later stage reads.
    this.kept = this.stages.map((_, k) => new Set([freq, time, ...this.stages.slice(k + 1).flatMap((s) => s.inputs)]));
  }

  // wave, spec: Float32Arrays in the model's layout. Returns [freq, time] as transferable arrays.
  async run(wave, spec) {
    const { ort, names, dims } = this;
    const values = new Map([
      [names.wave, new ort.Tensor('float32', wave, dims[names.wave])],
      [names.spec, new ort.Tensor('float32', spec, dims[names.spec])],
    ]);
    for (const [k, session] of this.sessions.entries()) {
      const feeds = Object.fromEntries(this.stages[k].inputs.map((name) => [name, values.get(name)]));
      const out = await session.run(feeds);
      for (const [name, tensor] of Object.entries(out)) values.set(name, tensor);
      // What no later stage reads is let go (the encoders' skips are large).
      for (const [name, tensor] of values) {
        if (!this.kept[k].has(name)) {
          tensor.dispose?.();
          values.delete(name);
        }
      }
    }
    // getData() downloads GPU tensors; on the CPU it is the data itself.
    const freq = transferable(await values.get(names.freq).getData(true));
    const time = transferable(await values.get(names.time).getData(true));
    for (const tensor of values.values()) tensor.dispose?.();
    return [freq, time];
  }

  endProfiling() {
    for (const session of this.sessions) session.endProfiling();
  }

  async release() {
    await Promise.all(this.sessions.map((s) => s.release().catch(() => {})));
    this.sessions = [];
  }
}

// gpu: whether to try the GPU; diagnostics (never set by the popup): {software, agreementDb,
// fail: 'load' | 'lost' | 'nan'} to force or break the GPU path in tests.
async function load({ threads, gpu, profile, why, diagnostics = {} }) {
  const t = performance.now();
  let refused = gpu ? null : why || 'not tried';
  let failed = false;
  if (gpu) {
    const { adapter, why: none } = await webgpuAdapter(Boolean(diagnostics.software));
    refused = none ?? null;
    if (adapter) {
      try {
        const ort = await importOrt('ort.webgpu.min.mjs', threads);
        ort.env.webgpu.adapter = adapter;
        if (diagnostics.fail === 'load') throw new Error('made to fail by the diagnostic switch');
        const model = await StagedModel.create(ort, ['webgpu']);
        const device = await ort.env.webgpu.device;
        state = { ort, model, backend: 'webgpu', threads, verify: true, device: gpuName(adapter), refused: null, diagnostics, gpu: device };
        device?.lost?.then((info) => {
          const detail = String(info?.message || info?.reason || '').replace(/\.$/, '');
          if (state?.gpu === device) state.lost = `the GPU device was lost${detail ? ` (${detail})` : ''}`;
        });
        return describeState(t);
      } catch (e) {
        console.warn('WebGPU session failed, using WASM:', e);
        refused = `the GPU could not load the model (${e?.message ?? e}); used the CPU`;
        failed = true;
      }
    }
  }
  const ort = await importOrt('ort.wasm.min.mjs', threads);
  state = { ort, model: await StagedModel.create(ort, ['wasm'], profile), backend: 'wasm', threads, verify: false, device: cpuName(ort.env.wasm.numThreads), refused, failed, diagnostics };
  return describeState(t);
}

function describeState(t0) {
  const { backend, device, refused, agreement, agreementBySource, failed } = state;
  return { backend, device, refused, agreement, agreementBySource, failed: Boolean(failed), ...(t0 === undefined ? {} : { seconds: (performance.now() - t0) / 1000 }) };
}

// Anything that cannot be transferred as it is is copied once.
function transferable(a) {
  return transferableAsIs(a) ? a : a.slice();
}

function agreementDb(reference, estimate) {
  let signal = 0;
  let error = 0;
  for (let i = 0; i < reference.length; i++) {
    signal += reference[i] * reference[i];
    const d = reference[i] - estimate[i];
    error += d * d;
  }
  return 10 * Math.log10(signal / Math.max(error, 1e-30));
}

// What makes a GPU result unusable, or null: not finite, or silent where the CPU's is not.
function unusable([freq, time]) {
  let energy = 0;
  for (const a of [freq, time]) {
    for (let i = 0; i < a.length; i += 97) {
      if (!Number.isFinite(a[i])) return 'its results were not numbers (NaN)';
      energy += a[i] * a[i];
    }
  }
  return energy === 0 ? 'its results were silent' : null;
}

// The rest of the job goes to the CPU, the segments done so far kept; `why` is told to the user.
async function toCpu(why) {
  console.warn(`WebGPU: ${why}; using WASM`);
  const gpuModel = state.model;
  const ort = await importOrt('ort.wasm.min.mjs', state.threads);
  const model = await StagedModel.create(ort, ['wasm']);
  gpuModel.release().catch(() => {});
  Object.assign(state, { ort, model, backend: 'wasm', verify: false, device: cpuName(ort.env.wasm.numThreads), refused: `${why}; the rest ran on the CPU`, failed: true, gpu: null });
}

const contractSources = () => state.model.sources;

// The first GPU segment is run on the CPU too; a GPU that disagrees (or fails) is dropped.
async function verifiedGpuRun(wave, spec) {
  const { ort, model, diagnostics } = state;
  let gpu = null;
  let failure = null;
  try {
    if (diagnostics.fail === 'lost') state.gpu?.destroy();
    gpu = await model.run(wave.slice(), spec.slice());
    failure = state.lost ?? unusable(gpu);
  } catch (e) {
    failure = state.lost ?? `it failed on the first segment (${e?.message ?? e})`;
  }
  const cpuModel = await StagedModel.create(ort, ['wasm']);
  const cpu = await cpuModel.run(wave, spec);
  const bar = diagnostics.agreementDb ?? GPU_AGREEMENT_DB;
  if (!failure) {
    // Per source: each source's frequency and time branch (its quarter of each output) together.
    const sources = contractSources();
    const perSource = sources.map((_, k) => {
      const part = (a) => a.subarray((k * a.length) / sources.length, ((k + 1) * a.length) / sources.length);
      return Math.min(agreementDb(part(cpu[0]), part(gpu[0])), agreementDb(part(cpu[1]), part(gpu[1])));
    });
    const agreement = Math.min(...perSource);
    state.agreement = Math.round(agreement * 10) / 10;
    state.agreementBySource = Object.fromEntries(sources.map((name, k) => [name, Math.round(perSource[k] * 10) / 10]));
    if (agreement >= bar) {
      await cpuModel.release();
      state.verify = false;
      return gpu;
    }
    failure = `the GPU's results disagreed with the CPU's (${agreement.toFixed(1)} dB, ${bar} dB needed)`;
  }
  console.warn(`WebGPU: ${failure}; using WASM`);
  await model.release();
  Object.assign(state, { model: cpuModel, backend: 'wasm', verify: false, device: cpuName(ort.env.wasm.numThreads), refused: `${failure}; used the CPU`, failed: true, gpu: null });
  return cpu;
}

async function run({ wave, spec }) {
  if (!state) throw new Error('the model is not loaded');
  if (state.verify) return verifiedGpuRun(wave, spec);
  if (state.backend !== 'webgpu') return state.model.run(wave, spec);
  // Later GPU segments: a failure, a lost device or NaN hands this and every later segment to the CPU.
  const copies = [wave.slice(), spec.slice()];
  let failure = state.lost ?? null;
  if (!failure) {
    try {
      const out = await state.model.run(wave, spec);
      if (state.diagnostics.fail === 'nan') out[0][0] = NaN;
      failure = state.lost ?? unusable(out);
      if (!failure) return out;
    } catch (e) {
      failure = state.lost ?? `it failed mid-job (${e?.message ?? e})`;
    }
  }
  await toCpu(failure);
  return state.model.run(...copies);
}

let notes = null; // {session, names, dims}, made on the first engine:run-notes

async function runNotes({ audio }) {
  if (!state) throw new Error('the model is not loaded');
  if (!notes) {
    const [response, contract] = await Promise.all([fetch(NOTES_URL), fetchJson(NOTES_CONTRACT_URL)]);
    if (!response.ok) throw new Error('the note model is missing from the bundle (models/basic_pitch/nmp.onnx)');
    const bytes = new Uint8Array(await response.arrayBuffer());
    // On the CPU whatever the separation uses: it is small, and WASM gives the same notes everywhere.
    const session = await state.ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
    notes = { session, names: contract.roles, dims: contract.inputs[contract.roles.audio] };
  }
  const { session, names, dims } = notes;
  const out = await session.run({ [names.audio]: new state.ort.Tensor('float32', audio, dims) });
  const plain = (name) => {
    const data = transferable(out[name].data);
    out[name].dispose?.();
    return data;
  };
  return { note: plain(names.note), onset: plain(names.onset), contour: plain(names.contour) };
}

self.onmessage = async ({ data: msg }) => {
  try {
    switch (msg.type) {
      case 'engine:load-model': {
        const loaded = await load(msg);
        self.postMessage({ type: 'model:loaded', seq: msg.seq, ...loaded });
        break;
      }
      case 'engine:run-model': {
        const t = performance.now();
        const [freq, time] = await run(msg);
        const seconds = (performance.now() - t) / 1000;
        self.postMessage({ type: 'model:result', seq: msg.seq, freq, time, seconds, ...describeState() }, [freq.buffer, time.buffer]);
        break;
      }
      case 'engine:run-notes': {
        const t = performance.now();
        const out = await runNotes(msg);
        const seconds = (performance.now() - t) / 1000;
        self.postMessage({ type: 'model:notes', seq: msg.seq, ...out, seconds }, [out.note.buffer, out.onset.buffer, out.contour.buffer]);
        break;
      }
      case 'engine:end-profiling':
        state.model.endProfiling();
        self.postMessage({ type: 'model:profiled', seq: msg.seq });
        break;
      default:
        throw new Error(`unexpected message type ${JSON.stringify(msg.type)}`);
    }
  } catch (e) {
    self.postMessage({ type: 'model:error', seq: msg.seq ?? null, message: e?.message ?? String(e) });
  }
};
