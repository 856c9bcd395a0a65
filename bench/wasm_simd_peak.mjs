// The ceiling for WebAssembly matrix kernels on this machine: how many float32
// operations per second one core does with 128-bit SIMD when each multiply is
// followed by a separate add (WebAssembly SIMD has no fused multiply-add; relaxed
// SIMD would). A matrix kernel's inner loop is exactly that, so onnxruntime-web's
// GEMM cannot beat this figure times the threads. Runs in node, whose V8 is Chromium's.
//
//   node bench/wasm_simd_peak.mjs [seconds]        prints GFLOP/s for one core and for all cores
//
// The module is written out byte by byte below (one function): K independent chains
// a_i = a_i * x + y, enough of them to hide each instruction's latency.

import os from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const CHAINS = 16;

function leb(n) {
  const out = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return out;
}

const section = (id, bytes) => [id, ...leb(bytes.length), ...bytes];
const f32 = (v) => [...new Uint8Array(new Float32Array([v]).buffer)];
const SIMD = 0xfd;
const [LOCAL_GET, LOCAL_SET, F32_CONST] = [0x20, 0x21, 0x43];
const [F32X4_SPLAT, F32X4_ADD, F32X4_MUL, F32X4_EXTRACT] = [[SIMD, 0x13], [SIMD, 0xe4, 0x01], [SIMD, 0xe6, 0x01], [SIMD, 0x1f, 0x00]];

function moduleBytes() {
  // locals: 0 = n (param), 1 = x, 2 = y, 3.. = the chains' accumulators
  const X = 1, Y = 2, A = (i) => 3 + i;
  const code = [];
  const splat = (v, local) => code.push(F32_CONST, ...f32(v), ...F32X4_SPLAT, LOCAL_SET, local);
  splat(0.9999999, X);
  splat(1e-7, Y);
  for (let i = 0; i < CHAINS; i++) splat(0.1 + i / 100, A(i));
  code.push(0x03, 0x40); // loop
  for (let i = 0; i < CHAINS; i++) {
    code.push(LOCAL_GET, A(i), LOCAL_GET, X, ...F32X4_MUL, LOCAL_GET, Y, ...F32X4_ADD, LOCAL_SET, A(i));
  }
  code.push(LOCAL_GET, 0, 0x41, 1, 0x6b, 0x22, 0, 0x0d, 0, 0x0b); // n -= 1; br_if loop (n != 0); end
  code.push(LOCAL_GET, A(0));
  for (let i = 1; i < CHAINS; i++) code.push(LOCAL_GET, A(i), ...F32X4_ADD); // keep every chain live
  code.push(...F32X4_EXTRACT, 0x0b);
  const body = [1, ...leb(CHAINS + 2), 0x7b, ...code]; // one group of v128 locals
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 1, 0x7f, 1, 0x7d]), // type: (i32) -> f32
    ...section(3, [1, 0]),
    ...section(7, [1, 3, ...new TextEncoder().encode('run'), 0x00, 0]),
    ...section(10, [1, ...leb(body.length), ...body]),
  ]); // fmt: skip
}

async function gflops(seconds) {
  const { instance } = await WebAssembly.instantiate(moduleBytes());
  const run = instance.exports.run;
  run(1_000_000); // optimised code before timing
  let iterations = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    run(10_000_000);
    iterations += 10_000_000;
  }
  const elapsed = (performance.now() - t0) / 1000;
  return (iterations * CHAINS * 4 * 2) / elapsed / 1e9; // 4 lanes, a multiply and an add
}

if (isMainThread) {
  const seconds = Number(process.argv[2] || 3);
  const one = await gflops(seconds);
  const cores = os.cpus().length;
  const all = await Promise.all(
    Array.from({ length: cores }, () => new Promise((resolve, reject) => {
      const w = new Worker(new URL(import.meta.url), { workerData: seconds });
      w.once('message', resolve);
      w.once('error', reject);
    })),
  ); // fmt: skip
  const total = all.reduce((a, b) => a + b, 0);
  console.log(`WebAssembly 128-bit SIMD, multiply then add (float32): ${one.toFixed(1)} GFLOP/s on one core, `
    + `${total.toFixed(1)} GFLOP/s on ${cores} cores at once`);
} else {
  parentPort.postMessage(await gflops(workerData));
}
