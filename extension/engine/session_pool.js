// The model's sessions, each in a model worker of its own (model_worker.js), and the
// segments waiting for them.
//
// Where a page may use threads (cross-origin isolated: Chromium) one session takes
// every core: a second would double the model's memory for little more speed. Without
// shared memory (Firefox) a session has one thread, so there is one session per core,
// up to MAX_SESSIONS, each taking the next waiting segment; each holds its own model,
// hence the cap (docs/benchmarks.md has the figures).
//
// Failover: the first session (threads, or the GPU) never gives a segment up. Another
// session is sent a copy of each segment, so if it fails (most likely out of memory:
// it holds a second model) it is dropped and its segment goes back to the queue.

export const MAX_SESSIONS = 2;

// One model worker, answering each request by its seq.
export class ModelWorker {
  constructor(worker) {
    this.worker = worker;
    this.seq = 0;
    this.waiting = new Map(); // seq -> {resolve, reject}
    worker.onmessage = ({ data: m }) => {
      const w = this.waiting.get(m.seq);
      if (!w) {
        console.warn('model worker: an answer nobody asked for', m);
        return;
      }
      this.waiting.delete(m.seq);
      switch (m.type) {
        case 'model:loaded':
        case 'model:result':
        case 'model:notes':
        case 'model:profiled':
          w.resolve(m);
          break;
        case 'model:error':
          w.reject(new Error(m.message));
          break;
        default:
          w.reject(new Error(`the model worker answered with an unexpected message type ${JSON.stringify(m.type)}`));
      }
    };
    worker.onerror = (e) => {
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

  terminate() {
    this.worker.terminate();
  }
}

export class SessionPool {
  // spawn(): a new ModelWorker. cores: navigator.hardwareConcurrency. isolated: whether
  // this page may use threads (crossOriginIsolated).
  // gpu: {gpu: whether to try it, why: the reason when not, diagnostics} (engine_worker.js).
  constructor({ spawn, cores, isolated, gpu = { gpu: true } }) {
    this.spawn = spawn;
    this.gpu = gpu;
    this.cores = Math.max(1, cores || 1);
    this.threads = isolated ? this.cores : 1;
    this.first = null; // the session loaded first: the one that never gives up a segment
    this.idle = []; // loaded sessions with nothing to do
    this.queue = []; // segments waiting for a session
    this.backend = 'loading';
    this.device = ''; // what runs the model: "GPU: <vendor architecture>" or "CPU: N threads"
    this.refused = null; // why the GPU is not used, when it was asked for or refused
    this.agreement = null; // the GPU's first segment against the CPU's, in dB
    this.sessions = 1; // how many segments the model can work on at once (pycore's in_flight)
  }

  async load() {
    this.first = this.spawn();
    const loaded = await this.first.request({ type: 'engine:load-model', threads: this.threads, ...this.gpu });
    this.note(loaded);
    this.sessions = loaded.backend === 'wasm' && this.threads === 1 ? Math.min(MAX_SESSIONS, this.cores) : 1;
    this.join(this.first);
    return loaded;
  }

  // The other single-thread sessions load once the engine is ready, so they do not slow
  // its start, and take segments as they arrive; one that fails to load is just not used.
  // Resolves when every one has loaded or failed (for tests; the engine does not wait).
  loadOthers() {
    const others = [];
    for (let i = 1; i < this.sessions; i++) {
      const other = this.spawn();
      others.push(
        other.request({ type: 'engine:load-model', threads: 1, gpu: false }).then(
          () => this.join(other),
          (e) => {
            console.warn('a second model session could not start; carrying on with one:', e);
            other.terminate();
          },
        ),
      );
    }
    return Promise.all(others);
  }

  // What the first session reports of itself (on loading, and with each result: a GPU that
  // failed its check or later has become WASM).
  note({ backend, device, refused, agreement, agreementBySource, failed }) {
    Object.assign(this, { backend, device, refused: refused ?? null, agreement: agreement ?? null, agreementBySource, failed: Boolean(failed) });
  }

  terminate() {
    for (const s of new Set([this.first, ...this.idle].filter(Boolean))) s.terminate();
  }

  join(session) {
    this.idle.push(session);
    this.dispatch();
  }

  // Resolves to {out: [freq, time], seconds} (Float32Arrays); wave and spec are transferred away.
  run(wave, spec) {
    return new Promise((resolve, reject) => {
      this.queue.push({ wave, spec, resolve, reject });
      this.dispatch();
    });
  }

  // One window of the note model, on the first session's worker (after the separation:
  // nothing else is queued then). Resolves to {note, onset, contour, seconds}; audio is transferred.
  runNotes(audio) {
    return this.first.request({ type: 'engine:run-notes', audio }, [audio.buffer]);
  }

  dispatch() {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const session = this.idle.shift();
      const segment = this.queue.shift();
      const { wave, spec, resolve, reject } = segment;
      const extra = session !== this.first; // gets a copy, so that its segment can be redone
      session.request({ type: 'engine:run-model', wave, spec }, extra ? [] : [wave.buffer, spec.buffer]).then(
        (m) => {
          if (!extra) this.note(m);
          resolve({ out: [m.freq, m.time], seconds: m.seconds });
          this.join(session);
        },
        (e) => {
          if (!extra) {
            reject(e);
            this.join(session);
            return;
          }
          console.warn('a model session failed; the others carry on without it:', e);
          session.terminate();
          this.queue.unshift(segment);
          this.dispatch();
        },
      );
    }
  }
}
