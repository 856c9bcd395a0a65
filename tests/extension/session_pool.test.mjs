// The model's session pool (extension/engine/session_pool.js) with stand-in sessions:
// how many sessions, which segments go where, and the failover of a second session.
import assert from 'node:assert/strict';
import test from 'node:test';

import { MAX_SESSIONS, ModelWorker, SessionPool } from '../../extension/engine/session_pool.js';

// A session that answers load and run requests as told: `backend` for load, `fail`
// (a predicate over run calls) to make a run fail.
function fakeSession({ backend = 'wasm', loadFails = false, fail = () => false, log }) {
  const session = { runs: 0, terminated: false, transfers: [] };
  session.request = async (msg, transfer = []) => {
    await new Promise((r) => setTimeout(r, 1));
    if (msg.type === 'engine:load-model') {
      log.push(['load', msg.threads, msg.gpu]);
      if (loadFails) throw new Error('out of memory');
      return { type: 'model:loaded', backend, seconds: 0 };
    }
    assert.equal(msg.type, 'engine:run-model');
    session.runs += 1;
    session.transfers.push(transfer.length);
    log.push(['run', session.name, msg.wave[0]]);
    if (fail(session.runs)) throw new Error('out of memory');
    return { type: 'model:result', freq: msg.wave, time: msg.spec, seconds: 0.5, backend };
  };
  session.terminate = () => (session.terminated = true);
  return session;
}

function pool({ cores, isolated, sessions }) {
  const log = [];
  let n = 0;
  const made = [];
  const spawn = () => {
    const s = fakeSession({ ...(sessions[n] || {}), log });
    s.name = `s${n++}`;
    made.push(s);
    return s;
  };
  return { pool: new SessionPool({ spawn, cores, isolated }), log, made };
}

const segment = (k) => [new Float32Array([k, 0]), new Float32Array([k])];

test('with threads (cross-origin isolated) one session takes every core', async () => {
  const { pool: p, log } = pool({ cores: 8, isolated: true, sessions: [{}] });
  await p.load();
  assert.deepEqual(log, [['load', 8, true]]);
  assert.equal(p.sessions, 1);
  await p.loadOthers();
  assert.equal(log.length, 1); // no second session
});

test('without threads (Firefox) there is one single-thread session per core, at most MAX_SESSIONS', async () => {
  const { pool: p, log, made } = pool({ cores: 16, isolated: false, sessions: [{}, {}, {}] });
  await p.load();
  await p.loadOthers();
  assert.equal(p.sessions, MAX_SESSIONS);
  assert.equal(made.length, MAX_SESSIONS);
  assert.deepEqual(log, [['load', 1, true], ['load', 1, false]]); // only the first may use the GPU
  const outs = await Promise.all([0, 1, 2, 3].map((k) => p.run(...segment(k))));
  assert.deepEqual(outs.map((o) => o.out[0][0]), [0, 1, 2, 3]); // every segment gets its own answer back
  assert.ok(made.every((s) => s.runs >= 1), 'both sessions worked');
  assert.ok(made[0].transfers.every((t) => t === 2)); // the first session gets its inputs outright
  assert.ok(made[1].transfers.every((t) => t === 0)); // another gets copies, to redo them on failure
});

test('a GPU session, or one core, means one session', async () => {
  const gpu = pool({ cores: 4, isolated: false, sessions: [{ backend: 'webgpu' }] });
  await gpu.pool.load();
  assert.equal(gpu.pool.sessions, 1);
  assert.equal(gpu.pool.backend, 'webgpu');
  const single = pool({ cores: 1, isolated: false, sessions: [{}] });
  await single.pool.load();
  assert.equal(single.pool.sessions, 1);
});

test('a second session that fails to load is not used, and the job goes on with the first', async () => {
  const { pool: p, made } = pool({ cores: 2, isolated: false, sessions: [{}, { loadFails: true }] });
  await p.load();
  await p.loadOthers();
  assert.equal(made[1].terminated, true);
  const out = await p.run(...segment(5));
  assert.equal(out.out[0][0], 5);
  assert.equal(made[0].runs, 1);
});

test('a second session that fails mid-job is dropped and its segment is redone by the first', async () => {
  const { pool: p, made } = pool({ cores: 2, isolated: false, sessions: [{}, { fail: (runs) => runs === 1 }] });
  await p.load();
  await p.loadOthers();
  const outs = await Promise.all([0, 1, 2].map((k) => p.run(...segment(k))));
  assert.deepEqual(outs.map((o) => o.out[0][0]), [0, 1, 2]); // no segment lost or swapped
  assert.equal(made[1].terminated, true);
  assert.equal(made[1].runs, 1);
  assert.equal(made[0].runs, 3); // the first did them all in the end
});

test('a failure of the first session fails that segment, and the first session stays in use', async () => {
  const { pool: p } = pool({ cores: 2, isolated: true, sessions: [{ fail: (runs) => runs === 1 }] });
  await p.load();
  await assert.rejects(p.run(...segment(0)), /out of memory/);
  assert.equal((await p.run(...segment(1))).out[0][0], 1);
});

test('a model worker answers each request by its seq, and model:error rejects', async () => {
  const posted = [];
  const worker = { postMessage: (m) => posted.push(m), terminate() {} };
  const mw = new ModelWorker(worker);
  const a = mw.request({ type: 'engine:load-model' });
  const b = mw.request({ type: 'engine:run-model' });
  worker.onmessage({ data: { type: 'model:error', seq: posted[1].seq, message: 'bad input' } });
  worker.onmessage({ data: { type: 'model:loaded', seq: posted[0].seq, backend: 'wasm' } });
  assert.equal((await a).backend, 'wasm');
  await assert.rejects(b, /bad input/);
  const c = mw.request({ type: 'engine:run-model' });
  worker.onerror({ message: 'the worker crashed' });
  await assert.rejects(c, /the model worker failed: the worker crashed/);
});
