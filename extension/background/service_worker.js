// The service worker: orchestration only. No audio passes through here.
//
//   popup ──popup:*──► here ──sw:*──► offscreen page (the engine's host)
//   popup ◄──sw:*───── here ◄──offscreen:*── offscreen page
//   here ──► chrome.downloads (saving.js): Demixer/<song>/<stem file>, from the offscreen page's blob: URLs
//   player ──player:*──► here ──sw:export-make──► offscreen page (exports.js) ──► downloads
//   library (lib/library.js, kept by the offscreen page): its state is cached here, key 'library'
//
// Every message type, its fields, sender and handler: lib/messages.js.
//
// Job state lives in storage (key 'jobs'), not in memory: the browser stops an idle
// service worker at any time and every event starts it again, so each handler reads
// the state, changes it (jobs.js) and writes it back, one at a time (update).

import { runtime, storage, sessionStorage, downloads, enginePage, tabs } from '../lib/platform.js';
import * as inbox from '../lib/inbox.js';
import { unexpected } from '../lib/messages.js';
import { loadSchema, normalize } from '../lib/settings.js';
import { captureControl } from './capture_control.js';
import * as jobs from './jobs.js';
import { ROOT_FOLDER, saver } from './saving.js';
import { GB, limitBytes } from '../lib/library.js';

const OFFSCREEN = 'offscreen/offscreen.html';

// ------------------------------------------------------------------ state

let lock = Promise.resolve();
const ports = new Set();
const playerPorts = new Set();

// Runs fn(jobs, stats) with exclusive access to the state, saves it and shows it
// to every open popup. Returns fn's result.
function update(fn) {
  const next = lock.then(async () => {
    const list = await storage.get('jobs', []);
    const stats = await storage.get('stats', {});
    const result = await fn(list, stats);
    const kept = jobs.trim(list);
    await storage.set('jobs', kept);
    await storage.set('stats', stats);
    toPopups({ type: 'sw:jobs', jobs: kept, now: Date.now() });
    return result;
  });
  lock = next.catch((e) => console.error(e));
  return next;
}

function toPopups(message, to = ports) {
  for (const port of to) {
    try {
      port.postMessage(message);
    } catch {
      to.delete(port);
    }
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A job's settings, checked once, here, where they enter: everything after takes them as they are.
async function settingsOf(given) {
  return normalize(await loadSchema(), given);
}

// ------------------------------------------------------------------ the engine's page

let opening = null;

async function ensureEngine() {
  if (await enginePage.isOpen(OFFSCREEN)) return;
  if (!opening) opening = enginePage.open(OFFSCREEN).finally(() => (opening = null));
  await opening;
}

// Sends a message to the offscreen page, waiting for it to listen.
async function tellEngine(message) {
  for (let attempt = 0; ; attempt++) {
    try {
      const answer = await runtime.send(message);
      if (answer !== undefined) return answer;
    } catch (e) {
      if (!/Receiving end does not exist|Could not establish connection/i.test(String(e?.message))) throw e;
    }
    if (attempt > 100) throw new Error('the engine page does not answer');
    await sleep(100);
  }
}

const release = (id) => tellEngine({ type: 'sw:release', id }).catch(() => {});

// Starts the next queued job when none is running. Call inside update().
function pump(list) {
  const job = jobs.nextToRun(list, Date.now());
  if (!job) return;
  const { id, key, name, settings, source } = job;
  (async () => {
    try {
      await ensureEngine();
      await tellEngine({ type: 'sw:run', job: { id, key, name, settings, source, gpu: await gpuChoice(settings) } });
    } catch (e) {
      console.error(e);
      await fail(id, `The engine could not start: ${e?.message ?? e}`);
    }
  })();
}

// What the engine may do with the GPU for a job: its setting, unless the GPU failed earlier in
// this browser session (chrome.storage.session, cleared when the browser closes); and the
// diagnostic switch `diagnostics.gpu` in chrome.storage.local (docs/architecture.md, never set by the popup).
async function gpuChoice(settings) {
  const [gpuRefused, diagnostics] = await Promise.all([sessionStorage.get('gpuRefused', null), storage.get('diagnostics', null)]);
  const extra = diagnostics?.gpu ? { diagnostics: diagnostics.gpu } : {};
  if (settings.gpu === 'never') return { gpu: false, why: 'not tried (Use the GPU: Never)', ...extra };
  if (gpuRefused) return { gpu: false, why: `not tried again: earlier in this browser session ${gpuRefused}`, ...extra };
  return { gpu: true, ...extra };
}

// A job whose GPU failed (not one that was told not to try) keeps later jobs off it.
async function rememberGpu(timings) {
  if (timings?.gpu_failed) await sessionStorage.set('gpuRefused', timings.gpu_refused);
}

async function fail(id, error) {
  await update((list) => {
    jobs.fail(list, id, error, Date.now());
    pump(list);
  });
}

const saving = saver({ downloads, storage, update, fail, release });

// ------------------------------------------------------------------ the library

// The Library size setting, in bytes (remembered by the popup in storage 'settings').
async function libraryLimit() {
  const settings = await storage.get('settings', {});
  return limitBytes(settings.library ?? (await loadSchema()).library.default);
}

// The offscreen page's answer (a LibraryState) kept and shown; what the size limit
// removed is said in words until the next removal.
async function showLibrary(state) {
  if (!state || state.error) throw new Error(state?.error || 'the library did not answer');
  const limit = await libraryLimit();
  let notice = await storage.get('libraryNotice', '');
  if (state.removed?.length) {
    const names = state.removed.map((r) => `"${r.name}"`).join(', ');
    notice = `To stay under the library's ${limit / GB} GB, the oldest ${state.removed.length === 1 ? 'song was' : 'songs were'} removed: ${names}.`;
    await storage.set('libraryNotice', notice);
  }
  const cached = { entries: state.entries, bytes: state.bytes, removed: [] };
  await storage.set('library', cached);
  toPopups({ type: 'sw:library', library: cached, limit, notice });
}

async function askLibrary(message) {
  await ensureEngine();
  await showLibrary(await tellEngine(message));
}

async function sendLibrary() {
  const limit = await libraryLimit();
  const library = await storage.get('library', null);
  if (library) toPopups({ type: 'sw:library', library, limit, notice: await storage.get('libraryNotice', '') });
  else await askLibrary({ type: 'sw:library-list' });
}

// ------------------------------------------------------------------ exports (from the player)

// Each export asked, until its downloads are over (key 'exports': request -> {id, kind}).
async function startExport(msg) {
  const { request, id, kind, stem, gains, format, label } = msg;
  const pending = await storage.get('exports', {});
  pending[request] = { id, kind, started: Date.now() };
  await storage.set('exports', pending);
  toPopups({ type: 'sw:export', request, state: 'working' }, playerPorts);
  try {
    await ensureEngine();
    await tellEngine({ type: 'sw:export-make', request, id, kind, stem, gains, format, label });
  } catch (e) {
    await exportOver(request, { state: 'failed', error: `The export could not start: ${e?.message ?? e}` });
  }
}

async function exportOver(request, outcome) {
  const pending = await storage.get('exports', {});
  delete pending[request];
  await storage.set('exports', pending);
  toPopups({ type: 'sw:export', request, ...outcome }, playerPorts);
  await tellEngine({ type: 'sw:export-release', request }).catch(() => {});
}

async function exported(msg) {
  try {
    let where;
    let ids;
    if (msg.folder) {
      const { folder, list } = await saving.startFolder(msg.name, msg.files.map((f) => ({ ...f, stem: f.file.replace(/\.[^.]*$/, '') })));
      ids = list.map((d) => d.id);
      where = `Downloads/${ROOT_FOLDER}/${folder}/`;
    } else {
      ids = [];
      for (const f of msg.files) ids.push(await downloads.start({ url: f.url, filename: `${ROOT_FOLDER}/${f.file}` }));
      const [item] = await downloads.search({ id: ids[0] });
      where = `Downloads/${ROOT_FOLDER}/${item?.filename?.split(/[/\\]/).pop() || msg.files[0].file}`;
    }
    const error = await saving.settled(ids);
    if (error) throw new Error(error);
    const warnings = msg.warnings?.length ? ` (${msg.warnings.join('; ')})` : '';
    await exportOver(msg.request, { state: 'done', what: `to ${where}${warnings}` });
  } catch (e) {
    await exportOver(msg.request, { state: 'failed', error: `Saving failed: ${e?.message ?? e}` });
  }
}

// ------------------------------------------------------------------ from the popup

async function enqueue({ files, settings }) {
  const checked = await settingsOf(settings);
  await update((list) => {
    jobs.enqueue(list, files, checked, Date.now());
    pump(list);
  });
}

async function cancel(id) {
  let job = null;
  const action = await update((list) => {
    job = jobs.byId(list, id);
    return jobs.cancel(list, id, Date.now());
  });
  if (action === 'forget-song') await inbox.remove(job.key);
  else if (action === 'stop-engine') await tellEngine({ type: 'sw:cancel', id });
  else if (action === 'discard-downloads') {
    await saving.discard((job.downloads || []).map((d) => d.id));
    await release(id);
  }
}

async function show(id) {
  const job = jobs.byId(await storage.get('jobs', []), id);
  const first = job?.downloads?.[0];
  if (first) downloads.show(first.id);
}

// A job marked running whose engine page is gone will never finish: say so.
async function checkEngineAlive() {
  const stuck = jobs.stuck(await storage.get('jobs', []), Date.now());
  if (stuck.length === 0 || (await enginePage.isOpen(OFFSCREEN))) return;
  await interrupt(new Set(stuck.map((j) => j.id)), 'Interrupted: the engine stopped unexpectedly.');
}

async function interrupt(ids, why) {
  const waiting = new Set(await inbox.keys().catch(() => []));
  await update((list) => {
    jobs.interrupt(list, ids, why, waiting, Date.now());
    pump(list);
  });
}

async function retry(id) {
  const waiting = new Set(await inbox.keys().catch(() => []));
  await update((list) => {
    jobs.retry(list, id, waiting, Date.now());
    pump(list);
  });
}

async function onPopupMessage(msg) {
  switch (msg.type) {
    case 'popup:refresh':
      return update(() => {});
    case 'popup:enqueue':
      return enqueue(msg);
    case 'popup:cancel':
      return cancel(msg.id);
    case 'popup:retry':
      return retry(msg.id);
    case 'popup:clear':
      return update((list) => jobs.clearFinished(list));
    case 'popup:show':
      return show(msg.id);
    case 'popup:capture-start':
      return capture.start({ ...msg, settings: await settingsOf(msg.settings) });
    case 'popup:capture-stop':
      return capture.stop({ settings: await settingsOf(msg.settings) });
    case 'popup:capture-keep':
      return capture.keep({ settings: await settingsOf(msg.settings) });
    case 'popup:capture-discard':
      return capture.discard();
    case 'popup:listen':
      return tabs.openPage(`player/player.html?id=${encodeURIComponent(msg.id)}`);
    case 'popup:library-remove':
      return askLibrary({ type: 'sw:library-remove', id: msg.id });
    case 'popup:library-clear':
      await storage.set('libraryNotice', '');
      return askLibrary({ type: 'sw:library-clear' });
    case 'popup:library-limit':
      return askLibrary({ type: 'sw:library-list', limit: limitBytes(msg.limit) });
    default:
      unexpected('service worker (from the popup)', msg);
  }
}

function onPlayerMessage(msg) {
  switch (msg.type) {
    case 'player:export':
      return startExport(msg);
    default:
      unexpected('service worker (from the player)', msg);
      return undefined;
  }
}

runtime.onConnect((port) => {
  if (port.name === 'player') {
    playerPorts.add(port);
    port.onDisconnect.addListener(() => playerPorts.delete(port));
    port.onMessage.addListener((msg) => Promise.resolve(onPlayerMessage(msg)).catch((e) => console.error(e)));
    return;
  }
  if (port.name !== 'popup') return;
  ports.add(port);
  port.onDisconnect.addListener(() => ports.delete(port));
  port.onMessage.addListener(async (msg) => {
    try {
      await onPopupMessage(msg);
    } catch (e) {
      console.error(e);
      try {
        port.postMessage({ type: 'sw:error', error: String(e?.message ?? e), about: msg?.type });
      } catch {
        /* popup closed */
      }
    }
  });
  update(() => {})
    .then(checkEngineAlive)
    .then(capture.check)
    .then(sendLibrary)
    .catch((e) => console.error(e));
});

// ------------------------------------------------------------------ from the engine's page

async function onEngineMessage(msg) {
  switch (msg.type) {
    case 'offscreen:stage':
      return update((list, stats) => jobs.stage(list, msg, stats, Date.now()));
    case 'offscreen:progress':
      return update((list, stats) => jobs.progress(list, msg, stats, Date.now()));
    case 'offscreen:alive':
      return undefined; // its arrival was the point: the background stays loaded
    case 'offscreen:finished': {
      await rememberGpu(msg.timings);
      await showLibrary(msg.library).catch((e) => console.error(e));
      const next = await update((list) => {
        const outcome = jobs.finish(list, msg, Date.now());
        pump(list);
        return outcome;
      });
      if (next === 'save') saving.save(msg.id, msg.files);
      else await release(msg.id);
      return undefined;
    }
    case 'offscreen:failed':
      return fail(msg.id, msg.error);
    case 'offscreen:idle': {
      const list = await storage.get('jobs', []);
      const exporting = Object.keys(await storage.get('exports', {})).length > 0;
      const busy = list.some((j) => jobs.ACTIVE.has(j.status)) || exporting || (await capture.recording());
      if (!busy && (await enginePage.isOpen(OFFSCREEN))) await enginePage.close();
      return undefined;
    }
    case 'offscreen:capture-level':
      return capture.level(msg);
    case 'offscreen:capture-saved':
      return capture.saved(msg);
    case 'offscreen:exported':
      exported(msg); // the downloads are followed to their end; the page need not wait
      return undefined;
    case 'offscreen:export-failed':
      return exportOver(msg.request, { state: 'failed', error: msg.error });
    default:
      unexpected('service worker (from the offscreen page)', msg);
  }
}

runtime.onMessage((msg) => {
  if (!String(msg?.type).startsWith('offscreen:')) return undefined; // not for this hop
  return onEngineMessage(msg).then(() => ({ ok: true }));
});

downloads.onChanged((delta) => saving.onDownloadChanged(delta));

// ------------------------------------------------------------------ browser start

// Jobs cut short by closing the browser (or reloading the extension) cannot go
// on: their engine page is gone. They are shown as interrupted (with Retry while
// their song is still in the inbox), never dropped. A marker in session storage,
// which the browser clears when it restarts, tells such a start from a service
// worker that was merely stopped while a job ran on in the offscreen document.
async function noticeBrowserStart() {
  if (await sessionStorage.get('sessionStarted', false)) return;
  await sessionStorage.set('sessionStarted', Date.now());
  const cut = (await storage.get('jobs', [])).filter((j) => jobs.ACTIVE.has(j.status) && j.status !== 'queued');
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

// capture_control.js records a tab in the offscreen page and hands the recording to
// enqueue() as a job like any file, with the settings the popup chose (checked above).
const capture = captureControl({
  ensureEngine,
  tellEngine,
  enqueue: (files, settings) => enqueue({ files, settings }),
  isEngineOpen: () => enginePage.isOpen(OFFSCREEN),
  post: toPopups,
});
runtime.onStartup(capture.reset);
runtime.onInstalled(capture.reset);
