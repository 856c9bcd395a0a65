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

let state = null; // {ort, model, backend, threads, verify}

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

async function load({ threads, gpu, profile }) {
  const t = performance.now();
  if (gpu && (await webgpuAdapter())) {
    try {
      const ort = await importOrt('ort.webgpu.min.mjs', threads);
      const model = await StagedModel.create(ort, ['webgpu']);
      state = { ort, model, backend: 'webgpu', threads, verify: true };
      return { backend: 'webgpu', seconds: (performance.now() - t) / 1000 };
    } catch (e) {
      console.warn('WebGPU session failed, using WASM:', e);
    }
  }
  const ort = await importOrt('ort.wasm.min.mjs', threads);
  state = { ort, model: await StagedModel.create(ort, ['wasm'], profile), backend: 'wasm', threads, verify: false };
  return { backend: 'wasm', seconds: (performance.now() - t) / 1000 };
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

// The first GPU segment is run on the CPU too; a GPU that disagrees (or fails) is dropped.
async function verifiedGpuRun(wave, spec) {
  const { ort, model } = state;
  let gpu = null;
  try {
    gpu = await model.run(wave.slice(), spec.slice());
  } catch (e) {
    console.warn('WebGPU failed on its first segment, using WASM:', e);
  }
  const cpuModel = await StagedModel.create(ort, ['wasm']);
  const cpu = await cpuModel.run(wave, spec);
  const agreement = gpu ? Math.min(agreementDb(cpu[0], gpu[0]), agreementDb(cpu[1], gpu[1])) : -Infinity;
  if (agreement >= GPU_AGREEMENT_DB) {
    await cpuModel.release();
    state.verify = false;
    return gpu;
  }
  console.warn(`WebGPU outputs disagree with WASM (${agreement.toFixed(1)} dB): using WASM`);
  await model.release();
  Object.assign(state, { model: cpuModel, backend: 'wasm', verify: false });
  return cpu;
}

async function run({ wave, spec }) {
  if (!state) throw new Error('the model is not loaded');
  if (state.verify) return verifiedGpuRun(wave, spec);
  return state.model.run(wave, spec);
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
        self.postMessage({ type: 'model:result', seq: msg.seq, freq, time, seconds, backend: state.backend }, [freq.buffer, time.buffer]);
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
