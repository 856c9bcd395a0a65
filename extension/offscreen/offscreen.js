// The offscreen document: where a job's data flows.
//
//   inbox (OPFS) -> WAV: read in place by the engine; other formats: decoded
//   (audio_decode.js) into an OPFS scratch WAV -> engine worker (engine/engine_worker.js)
//   -> each stem written as it comes into the job's library entry, library/<job>/
//   (lib/library.js; with its play copies and waveform peaks) -> entry.json, which
//   makes it an entry -> blob: URLs of the stems -> service worker (which downloads
//   them; only it may call chrome.downloads, and only a document may create blob:
//   URLs). Nothing the size of the song is held in memory, except while decoding a
//   compressed file. A job's OPFS scratch (work/<job>/) goes when it ends; a crash's,
//   and a crash's unfinished library entry, are swept when this page starts.
//   The library's own requests (list, remove, clear) are answered here; exports
//   (zip, the mix you hear) are made by exports.js.
//
// It takes sw:* messages from the service worker and answers with offscreen:*; it
// sends the engine worker offscreen:separate and hears engine:* (lib/messages.js).

import { runtime } from '../lib/platform.js';
import { songName } from '../lib/folder_name.js';
import { unexpected } from '../lib/messages.js';
import * as inbox from '../lib/inbox.js';
import { decodeToWavFile, sniff, DecodeError } from './audio_decode.js';
import * as opfs from '../lib/opfs.js';
import * as library from '../lib/library.js';
import { exporter } from './exports.js';
import { startRecording, stopRecording, isRecording } from './tab_recorder.js';

const IDLE_MS = 5 * 60 * 1000;
const HEARTBEAT_MS = 10 * 1000;
// A cold engine reports each step of its start within seconds (Pyodide, numpy, the
// model). One that has said nothing for this long is stuck (seen in Firefox, rarely,
// right after a cancel stopped the previous engine): it is stopped and started again, once.
const ENGINE_SILENT_MS = 90 * 1000;

// Shared memory lets the worker see a cancel between two steps of Python. It
// needs cross-origin isolation, which Firefox does not give extension pages:
// there a cancel stops the worker instead (the next job starts a fresh one).
const SHARED_MEMORY = typeof SharedArrayBuffer === 'function' && globalThis.crossOriginIsolated === true;

let worker = null; // the engine, kept warm between jobs
let idleTimer = null;
// One job at a time; the first waits for the sweep of scratch a crash left behind
// (no job can be running when this page starts).
const swept = opfs.sweepWork().then(library.sweepUnfinished);
let queue = swept;
const jobs = new Map(); // id -> {cancel: Int32Array, urls: [], crash}
const writing = new Set(); // ids of the jobs whose library entry is being written now
const cancelledEarly = new Set(); // cancelled before their 'run' arrived

function tell(message) {
  return runtime.send(message).catch(() => {
    /* the service worker wakes up on the next message; state is in storage */
  });
}

// ------------------------------------------------------------------ engine

function engineWorker() {
  if (!worker) {
    worker = new Worker(new URL('../engine/engine_worker.js', import.meta.url), { type: 'module', name: 'demixer-engine' });
    worker.addEventListener('error', (e) => {
      // An uncaught failure (out of memory aborts the wasm runtime): the current
      // job fails and the next one starts a fresh engine.
      const message = e.message || 'the engine stopped unexpectedly';
      for (const [, job] of jobs) job.crash?.(message);
      releaseEngine();
    });
  }
  clearTimeout(idleTimer);
  return worker;
}

function releaseEngine() {
  if (worker) worker.terminate();
  worker = null;
}

function armIdleTimer() {
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    releaseEngine();
    tell({ type: 'offscreen:idle' });
  }, IDLE_MS);
}

// ------------------------------------------------------------------ one job

function plainError(e) {
  if (e instanceof DecodeError || e?.input) return e.message;
  const text = String(e?.message ?? e);
  if (/memory|allocation|Aborted/i.test(text)) {
    return 'The computer ran out of memory while separating this song. Close other tabs or try a shorter file.';
  }
  return `Separation failed: ${text}`;
}

async function run(job) {
  const cancel = new Int32Array(SHARED_MEMORY ? new SharedArrayBuffer(4) : new ArrayBuffer(4));
  const state = { cancel, urls: [] };
  // The background is unloaded after 30 s without events (Firefox's event page,
  // and this page inside it; Chromium's service worker): a job's segment can
  // take longer than that, so say "still working" every few seconds.
  const heartbeat = setInterval(() => tell({ type: 'offscreen:alive', id: job.id }), HEARTBEAT_MS);
  jobs.set(job.id, state);
  writing.add(job.id);
  if (cancelledEarly.delete(job.id)) Atomics.store(cancel, 0, 1);
  const cancelled = () => Atomics.load(cancel, 0) !== 0;
  const cancelledError = () => Object.assign(new Error('cancelled'), { cancelled: true });
  const work = opfs.jobDir(job.id); // scratch
  const entryDir = library.entryDir(job.id); // the stems
  try {
    await tell({ type: 'offscreen:stage', id: job.id, stage: 'decoding' });
    const file = await inbox.get(job.key).catch(() => {
      throw new Error('the song was not found in the inbox (was it removed?)');
    });
    const kind = sniff(new Uint8Array(await file.slice(0, 12).arrayBuffer()));
    if (kind === 'empty') throw new DecodeError('This file is empty (0 bytes): there is no audio to separate.');
    await opfs.dir(work, true);
    await opfs.dir(entryDir, true);
    let input = `inbox/${job.key}`; // a WAV is read in place, a window at a time
    let decode = 'none (WAV read in place)';
    if (kind !== 'wav') {
      const t = performance.now();
      const { streamed } = await decodeToWavFile(file, await opfs.fileHandle(`${work}/input.wav`, true), cancelled);
      decode = `${streamed ? 'MP3 in pieces (WebCodecs)' : 'whole file (decodeAudioData)'} in ${Math.round(performance.now() - t) / 1000} s`;
      input = `${work}/input.wav`;
    }
    if (cancelled()) throw cancelledError();

    let outcome;
    try {
      outcome = await separateFile(job, input, work, state);
    } catch (e) {
      if (!e?.stalled || cancelled()) throw e;
      console.warn(e.message, '- starting a fresh engine');
      outcome = await separateFile(job, input, work, state);
    }
    // The stems are complete: the song's copies are no longer needed.
    await inbox.remove(job.key);
    await opfs.remove(work);
    const entry = await libraryEntry(job, outcome.result);
    // In the library now; past the size limit the oldest entries go (never this one).
    const shelf = await libraryState(library.limitBytes(job.settings.library) || undefined);
    const files = [];
    for (const { stem, file } of job.settings.save === 'off' ? [] : entry.files) {
      const f = await library.entryFile(job.id, file);
      // A slice keeps the file's disk backing; the type keeps Chromium from renaming bass.mid
      // to bass.txt (OPFS files of an unknown extension come typeless, then are sniffed as text).
      const typed = file.endsWith('.mid') ? f.slice(0, f.size, 'audio/midi') : f;
      const url = URL.createObjectURL(typed); // backed by the file on disk, not by memory
      state.urls.push(url);
      files.push({ stem, file, url, bytes: f.size });
    }
    const { stems, frames, warnings } = outcome.result;
    await tell({ type: 'offscreen:finished', id: job.id, files, result: { stems, frames, warnings }, timings: { ...outcome.timings, decode }, library: shelf });
  } catch (e) {
    await inbox.remove(job.key);
    releaseUrls(job.id);
    await opfs.remove(work);
    await library.removeEntry(job.id); // no partial stems stay behind
    const wasCancelled = Boolean(e?.cancelled) || cancelled();
    if (!wasCancelled) console.error(e);
    // After a failure inside the engine (out of memory, say) its Python or
    // runtime state is suspect: the next job starts a fresh one (a few seconds).
    // A bad input is no such failure.
    if (!wasCancelled && !(e instanceof DecodeError) && !e?.input) releaseEngine();
    jobs.delete(job.id);
    await tell({ type: 'offscreen:failed', id: job.id, cancelled: wasCancelled, error: wasCancelled ? 'Cancelled' : plainError(e) });
  } finally {
    writing.delete(job.id);
    clearInterval(heartbeat);
    armIdleTimer();
  }
}

function separateFile(job, input, work, state) {
  return new Promise((resolve, reject) => {
    const w = engineWorker();
    const started = performance.now();
    let silence = null; // armed until the engine is ready, restarted by each step it reports
    const watch = () => {
      clearTimeout(silence);
      silence = setTimeout(() => {
        releaseEngine();
        const seconds = ENGINE_SILENT_MS / 1000;
        const message = `the engine did not start (no progress in ${seconds} s): restart the browser and try again`;
        done(reject, Object.assign(new Error(message), { stalled: true }));
      }, ENGINE_SILENT_MS);
    };
    const done = (fn, value) => {
      clearTimeout(silence);
      w.removeEventListener('message', onMessage);
      state.crash = null;
      state.abort = null;
      fn(value);
    };
    state.crash = (message) => done(reject, new Error(message));
    // Without shared memory (Firefox) the worker cannot see the cancel flag: stop it.
    state.abort = () => {
      releaseEngine();
      done(reject, Object.assign(new Error('cancelled'), { cancelled: true }));
    };
    const onMessage = ({ data: m }) => {
      if (m.id !== job.id) return;
      switch (m.type) {
        case 'engine:loading':
          watch();
          tell({ type: 'offscreen:stage', id: job.id, stage: 'engine', detail: m.what });
          break;
        case 'engine:ready':
          clearTimeout(silence);
          tell({ type: 'offscreen:stage', id: job.id, stage: 'separating', done: 0, total: 0, backend: m.backend, device: m.device });
          break;
        case 'engine:transcribing':
          tell({ type: 'offscreen:stage', id: job.id, stage: 'transcribing', detail: m.stem });
          break;
        case 'engine:progress':
          tell({ type: 'offscreen:progress', id: job.id, done: m.done, total: m.total, seconds: m.seconds, backend: m.backend, device: m.device });
          break;
        case 'engine:done':
          done(resolve, { result: m.result, timings: { ...m.timings, wall: (performance.now() - started) / 1000 } });
          break;
        case 'engine:failed':
          done(reject, Object.assign(new Error(m.error), { cancelled: m.cancelled, input: m.input }));
          break;
        default:
          unexpected('offscreen page (from the engine)', m);
      }
    };
    w.addEventListener('message', onMessage);
    watch();
    const song = songName(job.name); // for the stems' tags
    w.postMessage({ type: 'offscreen:separate', id: job.id, input, outDir: library.entryDir(job.id), scratchDir: work, settings: job.settings, gpu: job.gpu, song, cancel: state.cancel });
  });
}

// ------------------------------------------------------------------ the library

// The finished job's entry.json, written last: the files are all there and complete.
async function libraryEntry(job, result) {
  const files = [];
  for (const { stem, path, midi } of result.files) {
    const file = path.slice(library.entryDir(job.id).length + 1);
    const f = await library.entryFile(job.id, file);
    if (f.size === 0) throw new Error(`the ${stem} stem is empty`);
    files.push({ stem, file, bytes: f.size, ...(midi ? { midi: true } : {}) });
  }
  const extra = [...Object.values(result.play), ...Object.values(result.peaks.files)];
  let bytes = files.reduce((sum, f) => sum + f.bytes, 0);
  for (const path of extra) if (!files.some((f) => f.file === path)) bytes += (await library.entryFile(job.id, path)).size;
  const entry = {
    version: library.VERSION,
    id: job.id,
    name: songName(job.name),
    created: Date.now(),
    source: job.source === 'tab' ? 'tab' : 'file',
    settings: job.settings,
    sampleRate: result.sampleRate,
    frames: result.frames,
    stems: result.stems,
    files,
    play: result.play,
    peaks: result.peaks,
    bytes,
  };
  await library.writeEntry(entry);
  return entry;
}


// The library's entries and size, the oldest removed first to fit `limit` bytes when given.
async function libraryState(limit) {
  let entries = await library.listEntries();
  const removed = [];
  if (limit) {
    for (const old of library.overLimit(entries, limit)) {
      await library.removeEntry(old.id);
      removed.push({ name: old.name, bytes: old.bytes });
    }
    if (removed.length) entries = await library.listEntries();
  }
  return { entries: entries.map(library.summary), bytes: entries.reduce((sum, e) => sum + e.bytes, 0), removed };
}

// Every byte of the library goes: its entries and any folder a failed removal left, all but
// the entry a running job is writing (its files are open; it stays only if the job ends well).
async function clearLibrary() {
  if (writing.size === 0) return library.clear();
  for (const id of await library.folders()) if (!writing.has(id)) await library.removeEntry(id);
}

const exports = exporter({ engineWorker, tell });

function releaseUrls(id) {
  const state = jobs.get(id);
  if (!state) return;
  for (const url of state.urls) URL.revokeObjectURL(url);
  state.urls = [];
}

// ------------------------------------------------------------------ messages

runtime.onMessage((msg) => {
  if (!String(msg?.type).startsWith('sw:')) return undefined; // not for this hop
  switch (msg.type) {
    case 'sw:run':
      queue = queue.then(() => run(msg.job));
      return { ok: true };
    case 'sw:cancel': {
      const state = jobs.get(msg.id);
      if (state) {
        Atomics.store(state.cancel, 0, 1);
        if (!SHARED_MEMORY) state.abort?.(); // the worker cannot see the flag
      } else cancelledEarly.add(msg.id);
      return { ok: true, found: Boolean(state) };
    }
    case 'sw:release':
      // The downloads are complete (or cancelled): the library keeps the files.
      releaseUrls(msg.id);
      jobs.delete(msg.id);
      return { ok: true };
    case 'sw:library-list':
      return swept.then(() => libraryState(msg.limit));
    case 'sw:library-remove':
      return library.removeEntry(msg.id).then(() => libraryState());
    case 'sw:library-clear':
      return clearLibrary().then(() => libraryState());
    case 'sw:export-make':
      exports.make(msg);
      return { ok: true };
    case 'sw:export-release':
      return exports.release(msg.request).then(() => ({ ok: true }));
    // Tab capture (tab_recorder.js): the recording reports its level and its end,
    // whatever caused it.
    case 'sw:capture-start':
      return startRecording(msg.streamId, {
        maxSeconds: msg.maxSeconds,
        onLevel: (level) => tell({ type: 'offscreen:capture-level', ...level }),
        onEnd: (result) => tell({ type: 'offscreen:capture-saved', ...result }),
      }).then(
        (info) => ({ ok: true, ...info }),
        (e) => ({ error: String(e?.message ?? e) }),
      );
    case 'sw:capture-stop':
      stopRecording(msg.reason);
      return { ok: true, recording: isRecording() };
    default:
      unexpected('offscreen page (from the service worker)', msg);
      return undefined;
  }
});
