// The service worker: orchestration only. No audio passes through here.
//
//   popup --(port 'popup': enqueue / cancel / show / clear)--> here
//   here --(runtime message, to: 'offscreen')--> offscreen document (the engine's host)
//   offscreen --(runtime message, to: 'sw': stage / progress / finished / failed)--> here
//   here --> chrome.downloads: Demixer/<Song>/<stem>.wav, from the offscreen's blob: URLs
//
// Job state lives in chrome.storage.local (key 'jobs'), not in memory: Chrome
// stops an idle service worker at any time and every event starts it again, so
// each handler reads the state, changes it and writes it back, one at a time.

import { runtime, storage, sessionStorage, downloads, enginePage } from './platform.js';
import * as inbox from './inbox.js';
import { captureControl } from './capture_control.js';

const OFFSCREEN = 'offscreen.html';
const ROOT_FOLDER = 'Demixer';
const KEEP_FINISHED = 30;
const ACTIVE = new Set(['queued', 'running', 'cancelling', 'saving']);
const STEMS = new Set(['four', 'two']);
const FORMATS = new Set(['wav16', 'wav24', 'float32']);
const PRESETS = new Set(['fast', 'balanced', 'best']); // pycore/separate.py PRESETS
const CLIP_MODES = new Set(['rescale', 'clamp']);

// ------------------------------------------------------------------ state

let lock = Promise.resolve();
const ports = new Set();

// Runs fn(jobs, stats) with exclusive access to the state, saves it and shows it
// to every open popup. Returns fn's result.
function update(fn) {
  const next = lock.then(async () => {
    const jobs = await storage.get('jobs', []);
    const stats = await storage.get('stats', {});
    const result = await fn(jobs, stats);
    const active = jobs.filter((j) => ACTIVE.has(j.status));
    const finished = jobs.filter((j) => !ACTIVE.has(j.status)).slice(-KEEP_FINISHED);
    const kept = jobs.filter((j) => active.includes(j) || finished.includes(j));
    await storage.set('jobs', kept);
    await storage.set('stats', stats);
    broadcast(kept);
    return result;
  });
  lock = next.catch((e) => console.error(e));
  return next;
}

function broadcast(jobs) {
  for (const port of ports) {
    try {
      port.postMessage({ type: 'state', jobs, now: Date.now() });
    } catch {
      ports.delete(port);
    }
  }
}

const byId = (jobs, id) => jobs.find((j) => j.id === id);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ the engine's page

let opening = null;

async function ensureEngine() {
  if (await enginePage.isOpen(OFFSCREEN)) return;
  if (!opening) opening = enginePage.open(OFFSCREEN).finally(() => (opening = null));
  await opening;
}

// Sends a message to the offscreen document, waiting for it to listen.
async function tellEngine(message) {
  for (let attempt = 0; ; attempt++) {
    try {
      const answer = await runtime.send({ ...message, to: 'offscreen' });
      if (answer !== undefined) return answer;
    } catch (e) {
      if (!/Receiving end does not exist|Could not establish connection/i.test(String(e?.message))) throw e;
    }
    if (attempt > 100) throw new Error('the engine page does not answer');
    await sleep(100);
  }
}

// Starts the next queued job when none is running. Call inside update().
function pump(jobs) {
  if (jobs.some((j) => j.status === 'running' || j.status === 'cancelling')) return;
  const job = jobs.find((j) => j.status === 'queued');
  if (!job) return;
  Object.assign(job, { status: 'running', stage: 'starting', detail: '', started: Date.now(), done: 0, total: 0 });
  const { id, key, name, stems, format, preset, clip } = job;
  (async () => {
    try {
      await ensureEngine();
      await tellEngine({ type: 'run', job: { id, key, name, stems, format, preset, clip } });
    } catch (e) {
      console.error(e);
      await fail(id, `The engine could not start: ${e?.message ?? e}`);
    }
  })();
}

async function fail(id, error) {
  await update((jobs) => {
    const job = byId(jobs, id);
    if (!job) return;
    const wasCancelling = job.status === 'cancelling';
    Object.assign(job, { status: wasCancelling ? 'cancelled' : 'failed', error: wasCancelling ? '' : error, finished: Date.now() });
    pump(jobs);
  });
}

// ------------------------------------------------------------------ from the popup

async function enqueue({ files, stems, format, preset = 'balanced', clip = 'rescale' }) {
  if (!STEMS.has(stems)) throw new Error(`unknown stems choice ${stems}`);
  if (!FORMATS.has(format)) throw new Error(`unknown format ${format}`);
  if (!PRESETS.has(preset)) throw new Error(`unknown quality preset ${preset}`);
  if (!CLIP_MODES.has(clip)) throw new Error(`unknown clip mode ${clip}`);
  await update((jobs) => {
    for (const f of files) {
      jobs.push({
        id: crypto.randomUUID(),
        key: f.key,
        name: String(f.name),
        size: f.size,
        stems,
        format,
        preset,
        clip,
        status: 'queued',
        stage: 'waiting',
        created: Date.now(),
        done: 0,
        total: 0,
      });
    }
    pump(jobs);
  });
}

async function cancel(id) {
  let action = null;
  await update((jobs) => {
    const job = byId(jobs, id);
    if (!job) return;
    if (job.status === 'queued') {
      Object.assign(job, { status: 'cancelled', finished: Date.now() });
      action = () => inbox.remove(job.key);
    } else if (job.status === 'running') {
      job.status = 'cancelling';
      action = () => tellEngine({ type: 'cancel', id });
    } else if (job.status === 'saving') {
      Object.assign(job, { status: 'cancelled', finished: Date.now() });
      const ids = (job.downloads || []).map((d) => d.id);
      action = async () => {
        for (const d of ids) await downloads.discard(d);
        await tellEngine({ type: 'release', id }).catch(() => {});
      };
    }
  });
  if (action) await action();
}

async function show(id) {
  const jobs = await storage.get('jobs', []);
  const job = byId(jobs, id);
  const first = job?.downloads?.[0];
  if (first) downloads.show(first.id);
}

async function clearFinished() {
  await update((jobs) => {
    const keep = jobs.filter((j) => ACTIVE.has(j.status));
    jobs.splice(0, jobs.length, ...keep);
  });
}

// A job marked running whose engine page is gone will never finish: say so.
async function checkEngineAlive() {
  const jobs = await storage.get('jobs', []);
  const stuck = jobs.filter((j) => (j.status === 'running' || j.status === 'cancelling') && Date.now() - j.started > 15000);
  if (stuck.length === 0 || (await enginePage.isOpen(OFFSCREEN))) return;
  await interrupt(new Set(stuck.map((j) => j.id)), 'Interrupted: the engine stopped unexpectedly.');
}

// Marks jobs as interrupted, never silently dropped; one whose song is still in
// the inbox can be retried.
async function interrupt(ids, why) {
  const waiting = new Set(await inbox.keys().catch(() => []));
  await update((jobs) => {
    for (const j of jobs) {
      if (!ids.has(j.id) || !ACTIVE.has(j.status)) continue;
      if (j.status === 'cancelling') Object.assign(j, { status: 'cancelled', finished: Date.now() });
      else Object.assign(j, { status: 'interrupted', error: why, retry: waiting.has(j.key), finished: Date.now() });
    }
    pump(jobs);
  });
}

async function retry(id) {
  const waiting = new Set(await inbox.keys().catch(() => []));
  await update((jobs) => {
    const job = byId(jobs, id);
    if (!job || job.status !== 'interrupted') return;
    if (!waiting.has(job.key)) {
      job.retry = false;
      throw new Error('The song is no longer in the inbox: choose the file again.');
    }
    // To the end of the queue, as a fresh job of the same song and settings.
    jobs.splice(jobs.indexOf(job), 1);
    jobs.push(Object.assign(job, { status: 'queued', stage: 'waiting', error: '', retry: false, done: 0, total: 0, created: Date.now() }));
    pump(jobs);
  });
}

runtime.onConnect((port) => {
  if (port.name !== 'popup') return;
  ports.add(port);
  port.onDisconnect.addListener(() => ports.delete(port));
  port.onMessage.addListener(async (msg) => {
    try {
      if (msg.type === 'enqueue') await enqueue(msg);
      else if (msg.type === 'cancel') await cancel(msg.id);
      else if (msg.type === 'show') await show(msg.id);
      else if (msg.type === 'clear') await clearFinished();
      else if (msg.type === 'retry') await retry(msg.id);
      else if (msg.type === 'state') await update(() => {});
      else await capture.onPopupMessage(msg);
    } catch (e) {
      console.error(e);
      try {
        port.postMessage({ type: 'error', error: String(e?.message ?? e), about: msg.type });
      } catch {
        /* popup closed */
      }
    }
  });
  update(() => {}).then(checkEngineAlive).then(capture.check);
});

// ------------------------------------------------------------------ from the engine

function eta(job, stats) {
  // Seconds left: the measured pace of this job, else the last jobs' pace.
  const left = Math.max(0, job.total - job.done);
  if (job.done > 0 && job.separatingSince) return ((Date.now() - job.separatingSince) / 1000 / job.done) * left;
  if (stats.secondsPerSegment && job.total) return stats.secondsPerSegment * left;
  return null;
}

async function onEngineMessage(msg) {
  if (await capture.onEngineMessage(msg)) return;
  switch (msg.type) {
    case 'stage':
      await update((jobs, stats) => {
        const job = byId(jobs, msg.id);
        if (!job || (job.status !== 'running' && job.status !== 'cancelling')) return;
        job.stage = msg.stage;
        job.detail = msg.detail || '';
        if (msg.stage === 'separating') {
          Object.assign(job, { separatingSince: Date.now(), done: msg.done || 0, total: msg.total || 0, backend: msg.backend });
          job.eta = eta(job, stats);
          job.etaAt = Date.now();
        }
      });
      break;
    case 'progress':
      await update((jobs, stats) => {
        const job = byId(jobs, msg.id);
        if (!job || (job.status !== 'running' && job.status !== 'cancelling')) return;
        Object.assign(job, { done: msg.done, total: msg.total });
        job.eta = eta(job, stats);
        job.etaAt = Date.now();
        if (msg.seconds) stats.secondsPerSegment = stats.secondsPerSegment ? 0.7 * stats.secondsPerSegment + 0.3 * msg.seconds : msg.seconds;
      });
      break;
    case 'finished': {
      const proceed = await update((jobs) => {
        const job = byId(jobs, msg.id);
        if (!job) return false;
        if (job.status === 'cancelling') {
          Object.assign(job, { status: 'cancelled', finished: Date.now() });
          pump(jobs);
          return false;
        }
        Object.assign(job, {
          status: 'saving',
          stage: 'saving',
          done: job.total,
          eta: 0,
          warnings: msg.result?.warnings || [],
          frames: msg.result?.frames,
          timings: msg.timings,
        });
        pump(jobs);
        return true;
      });
      if (proceed) saveStems(msg.id, msg.files);
      else await tellEngine({ type: 'release', id: msg.id }).catch(() => {});
      break;
    }
    case 'failed':
      await fail(msg.id, msg.error);
      break;
    case 'idle': {
      const jobs = await storage.get('jobs', []);
      const busy = jobs.some((j) => ACTIVE.has(j.status)) || (await capture.recording());
      if (!busy && (await enginePage.isOpen(OFFSCREEN))) await enginePage.close();
      break;
    }
  }
}

runtime.onMessage((msg) => {
  if (msg?.to !== 'sw') return undefined;
  return onEngineMessage(msg).then(() => ({ ok: true }));
});

// ------------------------------------------------------------------ saving

// The song's name as a folder name every OS accepts.
export function folderName(fileName) {
  let name = String(fileName).replace(/\.[A-Za-z0-9]{1,5}$/, ''); // drop the extension
  name = name.replace(/[\u0000-\u001f\u007f<>:"/\\|?*~]/g, '_').replace(/\s+/g, ' ').trim();
  name = name.replace(/^[.\s]+|[.\s]+$/g, '');
  if (/^(con|prn|aux|nul|com\d|lpt\d)$/i.test(name)) name = `${name}_`;
  if (name.length > 80) name = [...name].slice(0, 80).join('').trim();
  // File systems limit a name to 255 bytes: keep well under in UTF-8 (CJK takes
  // 3 bytes a character, emoji 4), cutting between characters, not inside one.
  const bytes = (t) => new TextEncoder().encode(t).length;
  while (bytes(name) > 150) name = [...name].slice(0, -1).join('').trim();
  name = name.replace(/[.\s]+$/g, '');
  return name || 'Untitled';
}

// Folders already used under Downloads/Demixer/, as far as Chrome's download
// history knows, plus those of jobs saving right now. The first file's final
// name catches folders made outside Chrome's history (see saveStems).
async function usedFolders(exceptJob) {
  const used = new Set();
  const items = await downloads.search({ filenameRegex: `[/\\\\]${ROOT_FOLDER}[/\\\\][^/\\\\]+[/\\\\][^/\\\\]+$`, limit: 0 });
  for (const item of items) {
    const parts = item.filename.split(/[/\\]/);
    if (parts[parts.length - 3] === ROOT_FOLDER) used.add(parts[parts.length - 2].toLowerCase());
  }
  const jobs = await storage.get('jobs', []);
  for (const j of jobs) if (j.folder && j.id !== exceptJob) used.add(j.folder.toLowerCase());
  return used;
}

async function finalName(downloadId) {
  for (let i = 0; i < 100; i++) {
    const [item] = await downloads.search({ id: downloadId });
    if (!item) return null;
    if (item.filename) return item.filename;
    await sleep(50);
  }
  return null;
}

async function saveStems(id, files) {
  try {
    const jobs = await storage.get('jobs', []);
    const job = byId(jobs, id);
    const song = folderName(job.name);
    const used = await usedFolders(id);
    const [first, ...rest] = files;
    let folder = null;
    let firstId = null;
    for (let n = 1; n < 1000 && firstId === null; n++) {
      const candidate = n === 1 ? song : `${song} (${n})`;
      if (used.has(candidate.toLowerCase())) continue;
      const d = await downloads.start({ url: first.url, filename: `${ROOT_FOLDER}/${candidate}/${first.stem}.wav` });
      const parts = ((await finalName(d)) || '').split(/[/\\]/);
      const [dir, base] = [parts[parts.length - 2], parts[parts.length - 1]];
      if (dir === candidate && base !== `${first.stem}.wav` && /^ ?\(\d+\)/.test(base.slice(first.stem.length)) && base.startsWith(first.stem)) {
        // The browser renamed the file ("drums (1).wav" in Chromium, "drums(1).wav"
        // in Firefox): the folder exists, unknown to its download history. Take it
        // back and try the next folder name.
        await downloads.discard(d);
        used.add(candidate.toLowerCase());
      } else {
        folder = dir === candidate ? candidate : dir || candidate; // (another extension may rename downloads)
        firstId = d;
      }
    }
    if (firstId === null) throw new Error('no free folder name');
    const list = [{ stem: first.stem, id: firstId, state: 'in_progress' }];
    for (const f of rest) {
      const d = await downloads.start({ url: f.url, filename: `${ROOT_FOLDER}/${folder}/${f.stem}.wav` });
      list.push({ stem: f.stem, id: d, state: 'in_progress' });
    }
    const keep = await update((all) => {
      const j = byId(all, id);
      if (!j || j.status !== 'saving') return false;
      Object.assign(j, { folder, downloads: list });
      return true;
    });
    if (!keep) {
      for (const d of list) await downloads.discard(d.id); // cancelled meanwhile
      return;
    }
    await reconcile(id);
  } catch (e) {
    console.error(e);
    await fail(id, `The stems could not be saved: ${e?.message ?? e}`);
    await tellEngine({ type: 'release', id }).catch(() => {});
  }
}

// Brings a saving job's downloads up to date; finishes the job when all are complete.
async function reconcile(id) {
  const states = new Map();
  const jobs = await storage.get('jobs', []);
  const job = byId(jobs, id);
  if (!job?.downloads) return;
  for (const d of job.downloads) {
    const [item] = await downloads.search({ id: d.id });
    states.set(d.id, item ? { state: item.state, error: item.error } : { state: 'interrupted', error: 'FILE_MISSING' });
  }
  const outcome = await update((all) => {
    const j = byId(all, id);
    if (!j || j.status !== 'saving') return null;
    for (const d of j.downloads) Object.assign(d, states.get(d.id) || {});
    const broken = j.downloads.find((d) => d.state === 'interrupted');
    if (broken) {
      Object.assign(j, { status: 'failed', error: `Saving ${broken.stem}.wav failed (${broken.error || 'interrupted'}).`, finished: Date.now() });
      return 'failed';
    }
    if (j.downloads.every((d) => d.state === 'complete')) {
      Object.assign(j, { status: 'done', stage: 'done', finished: Date.now() });
      return 'done';
    }
    return null;
  });
  if (outcome) {
    if (outcome === 'failed') for (const d of job.downloads) await downloads.discard(d.id);
    await tellEngine({ type: 'release', id }).catch(() => {});
  }
}

downloads.onChanged(async (delta) => {
  if (!delta.state && !delta.error) return;
  const jobs = await storage.get('jobs', []);
  const job = jobs.find((j) => j.status === 'saving' && j.downloads?.some((d) => d.id === delta.id));
  if (job) await reconcile(job.id);
});

// ------------------------------------------------------------------ browser start

// Jobs cut short by closing the browser (or reloading the extension) cannot go
// on: their engine page is gone. They are shown as interrupted (with Retry while
// their song is still in the inbox), never dropped. A marker in session storage,
// which the browser clears when it restarts, tells such a start from a service
// worker that was merely stopped while a job ran on in the offscreen document.
async function noticeBrowserStart() {
  if (await sessionStorage.get('sessionStarted', false)) return;
  await sessionStorage.set('sessionStarted', Date.now());
  const jobs = await storage.get('jobs', []);
  const cut = jobs.filter((j) => ACTIVE.has(j.status) && j.status !== 'queued');
  await interrupt(new Set(cut.map((j) => j.id)), 'Interrupted: the browser was closed while this job ran.');
  // Songs no job will use again go; scratch of the engine is swept by the engine page.
  const kept = new Set((await storage.get('jobs', [])).filter((j) => j.status === 'queued' || (j.status === 'interrupted' && j.retry)).map((j) => j.key));
  for (const key of await inbox.keys().catch(() => [])) {
    if (kept.has(key)) continue;
    // A song the popup copied in a moment ago is about to be queued: leave it.
    const file = await inbox.get(key).catch(() => null);
    if (!file || Date.now() - file.lastModified > 60000) await inbox.remove(key);
  }
  await update((all) => pump(all)); // queued jobs that never started now can
}
const browserStart = noticeBrowserStart().catch((e) => console.error(e));
runtime.onStartup(() => browserStart);
runtime.onInstalled(() => browserStart);

// ------------------------------------------------------------------ tab capture

// capture_control.js records a tab in the offscreen document and hands the
// recording to enqueue() as a job like any file.
const capture = captureControl({
  ensureEngine,
  tellEngine,
  enqueue,
  isEngineOpen: () => enginePage.isOpen(OFFSCREEN),
  post(message) {
    for (const port of ports) {
      try {
        port.postMessage(message);
      } catch {
        ports.delete(port);
      }
    }
  },
});
runtime.onStartup(capture.reset);
runtime.onInstalled(capture.reset);
