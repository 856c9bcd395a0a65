// The model runner: htdemucs in onnxruntime-web, in a worker of its own.
//
// engine_worker.js (Python) starts it (and it ends with that worker), so the model
// runs while Python makes the next segment's spectrogram and inverts the last
// one's: neither waits for the other. Segments arrive and leave as transferred buffers (no copies).
//
// The model is a chain of stages (models/prepare.py), one session each, run in turn:
// onnxruntime-web cannot switch off its planner's buffer reuse, which in one whole
// session keeps the U-Net's encoder buffers allocated across the transformer
// (2.7 GB of WASM heap against 1.3 GB in stages, measured in Chromium).
//
// Messages in:
//   {type: 'load', threads, gpu, profile}   create the sessions (WebGPU if gpu and usable, else
//                                      WASM); profile: onnxruntime's per-operator profiler, which
//                                      prints its events to the console (bench/profile.py reads them)
//   {type: 'end-profiling'}
//   {type: 'run', seq, wave, spec}     Float32Arrays in the model's layout (transferred)
// Messages out:
//   {type: 'loaded', backend, seconds, note}
//   {type: 'result', seq, freq, time, seconds, backend}     (transferred)
//   {type: 'error', seq, message}

import { transferableAsIs } from './transfer.js';

const BASE = new URL('./', import.meta.url);
const STAGES_URL = new URL('models/htdemucs/stages.json', BASE);

// The model's contract (pycore/model_contract.py; models/htdemucs.json).
const SEGMENT = 343980;
const WAVE_DIMS = [1, 2, SEGMENT];
const SPEC_DIMS = [1, 4, 2048, 336];
const INPUT_WAVE = 'input';
const INPUT_SPEC = 'onnx::ReduceMean_1';
const OUTPUT_FREQ = 'output';
const OUTPUT_TIME = '5073';

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
  const ort = await import(`./vendor/ort/${bundle}`);
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
    const listing = await (await fetch(STAGES_URL)).json();
    const model = new StagedModel(ort, listing);
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

  constructor(ort, listing) {
    this.ort = ort;
    this.stages = listing.stages;
    this.sessions = [];
    // After stage k, what is still needed: the model's outputs and what a later stage reads.
    this.kept = this.stages.map(
      (_, k) => new Set([OUTPUT_FREQ, OUTPUT_TIME, ...this.stages.slice(k + 1).flatMap((s) => s.inputs)]),
    );
  }

  // wave, spec: Float32Arrays in the model's layout. Returns [freq, time] as transferable arrays.
  async run(wave, spec) {
    const { ort } = this;
    const values = new Map([
      [INPUT_WAVE, new ort.Tensor('float32', wave, WAVE_DIMS)],
      [INPUT_SPEC, new ort.Tensor('float32', spec, SPEC_DIMS)],
    ]);
    for (const [k, session] of this.sessions.entries()) {
      const feeds = Object.fromEntries(this.stages[k].inputs.map((name) => [name, values.get(name)]));
      const out = await session.run(feeds);
      for (const [name, tensor] of Object.entries(out)) values.set(name, tensor);
      // What no later stage reads is let go (the encoders' skips are ~100 MB).
      for (const [name, tensor] of values) {
        if (!this.kept[k].has(name)) {
          tensor.dispose?.();
          values.delete(name);
        }
      }
    }
    // getData() downloads GPU tensors; on the CPU it is the data itself.
    const freq = transferable(await values.get(OUTPUT_FREQ).getData(true));
    const time = transferable(await values.get(OUTPUT_TIME).getData(true));
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

self.onmessage = async ({ data: msg }) => {
  try {
    if (msg.type === 'load') {
      const loaded = await load(msg);
      self.postMessage({ type: 'loaded', seq: msg.seq, ...loaded });
    } else if (msg.type === 'run') {
      const t = performance.now();
      const [freq, time] = await run(msg);
      const seconds = (performance.now() - t) / 1000;
      self.postMessage({ type: 'result', seq: msg.seq, freq, time, seconds, backend: state.backend },
        [freq.buffer, time.buffer]);
    } else if (msg.type === 'end-profiling') {
      state.model.endProfiling();
      self.postMessage({ type: 'profiled', seq: msg.seq });
    }
  } catch (e) {
    self.postMessage({ type: 'error', seq: msg.seq ?? null, message: e?.message ?? String(e) });
  }
};
