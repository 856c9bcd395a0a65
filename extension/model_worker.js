// The model runner: one onnxruntime-web session of htdemucs in a worker of its own.
//
// engine_worker.js (Python) starts it (and it ends with that worker), so the model
// runs while Python makes the next segment's spectrogram and inverts the last
// one's: neither waits for the other. Segments arrive and leave as transferred buffers (no copies).
//
// Messages in:
//   {type: 'load', threads, gpu, profile}   create the session (WebGPU if gpu and usable, else
//                                      WASM); profile: onnxruntime's per-operator profiler, which
//                                      prints its events to the console (bench/profile.py reads them)
//   {type: 'end-profiling'}
//   {type: 'run', seq, wave, spec}     Float32Arrays in the model's layout (transferred)
// Messages out:
//   {type: 'loaded', backend, seconds, note}
//   {type: 'result', seq, freq, time, seconds, backend}     (transferred)
//   {type: 'error', seq, message}

const BASE = new URL('./', import.meta.url);
const MODEL_URL = new URL('models/htdemucs.onnx', BASE).href;

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

let state = null; // {ort, session, backend, threads, verify}

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

// The model's bytes: one file, or where a store caps the size of one file
// (addons.mozilla.org's linter reads none over 100 MiB; build_firefox.py) the
// parts that <model>.parts.json lists, joined. Read once per worker.
let modelBytesPromise = null;

function modelBytes() {
  modelBytesPromise ??= (async () => {
    const whole = await fetch(MODEL_URL).catch(() => null);
    if (whole?.ok) return new Uint8Array(await whole.arrayBuffer());
    const listing = await fetch(`${MODEL_URL}.parts.json`).then((r) => r.json());
    const bytes = new Uint8Array(listing.bytes);
    let at = 0;
    for (const part of listing.parts) {
      const chunk = new Uint8Array(await (await fetch(new URL(part, MODEL_URL))).arrayBuffer());
      if (at + chunk.length > bytes.length) throw new Error('the model in the bundle is damaged (its parts are too long)');
      bytes.set(chunk, at);
      at += chunk.length;
    }
    if (at !== bytes.length) throw new Error('the model in the bundle is incomplete');
    return bytes;
  })();
  return modelBytesPromise;
}

async function createSession(ort, providers, profile = false) {
  return ort.InferenceSession.create(await modelBytes(), {
    executionProviders: providers,
    enableProfiling: profile,
    graphOptimizationLevel: 'all',
    // As natively (pycore/onnx_runner.py): without buffer reuse and the memory
    // pattern each tensor is freed after its last use, so the U-Net's encoder
    // buffers are not parked across the transformer.
    enableMemPattern: false,
  });
}

async function load({ threads, gpu, profile }) {
  const t = performance.now();
  if (gpu && (await webgpuAdapter())) {
    try {
      const ort = await importOrt('ort.webgpu.min.mjs', threads);
      const session = await createSession(ort, ['webgpu']);
      state = { ort, session, backend: 'webgpu', threads, verify: true };
      return { backend: 'webgpu', seconds: (performance.now() - t) / 1000 };
    } catch (e) {
      console.warn('WebGPU session failed, using WASM:', e);
    }
  }
  const ort = await importOrt('ort.wasm.min.mjs', threads);
  state = { ort, session: await createSession(ort, ['wasm'], profile), backend: 'wasm', threads, verify: false };
  return { backend: 'wasm', seconds: (performance.now() - t) / 1000 };
}

async function runSession(session, ort, wave, spec) {
  const out = await session.run({
    [INPUT_WAVE]: new ort.Tensor('float32', wave, WAVE_DIMS),
    [INPUT_SPEC]: new ort.Tensor('float32', spec, SPEC_DIMS),
  });
  // getData() downloads GPU tensors; on the CPU it is the data itself.
  const freq = transferable(await out[OUTPUT_FREQ].getData(true));
  const time = transferable(await out[OUTPUT_TIME].getData(true));
  for (const name of Object.keys(out)) out[name].dispose?.();
  return [freq, time];
}

// Only a whole, unshared buffer can be transferred; anything else is copied once.
function transferable(a) {
  const whole = a.byteOffset === 0 && a.byteLength === a.buffer.byteLength;
  const shared = typeof SharedArrayBuffer === 'function' && a.buffer instanceof SharedArrayBuffer; // absent without isolation
  return whole && !shared ? a : a.slice();
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
  const { ort, session } = state;
  let gpu = null;
  try {
    gpu = await runSession(session, ort, wave.slice(), spec.slice());
  } catch (e) {
    console.warn('WebGPU failed on its first segment, using WASM:', e);
  }
  const cpuSession = await createSession(ort, ['wasm']);
  const cpu = await runSession(cpuSession, ort, wave, spec);
  const agreement = gpu ? Math.min(agreementDb(cpu[0], gpu[0]), agreementDb(cpu[1], gpu[1])) : -Infinity;
  if (agreement >= GPU_AGREEMENT_DB) {
    await cpuSession.release();
    state.verify = false;
    return gpu;
  }
  console.warn(`WebGPU outputs disagree with WASM (${agreement.toFixed(1)} dB): using WASM`);
  await session.release().catch(() => {});
  Object.assign(state, { session: cpuSession, backend: 'wasm', verify: false });
  return cpu;
}

async function run({ wave, spec }) {
  if (!state) throw new Error('the model is not loaded');
  if (state.verify) return verifiedGpuRun(wave, spec);
  return runSession(state.session, state.ort, wave, spec);
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
      state.session.endProfiling();
      self.postMessage({ type: 'profiled', seq: msg.seq });
    }
  } catch (e) {
    self.postMessage({ type: 'error', seq: msg.seq ?? null, message: e?.message ?? String(e) });
  }
};
