// The popup: a thin view. It picks songs, copies each into the inbox (OPFS, see
// lib/inbox.js) and tells the service worker their keys and the chosen settings; it
// shows the jobs the service worker reports. Closing it stops nothing: the jobs run
// in the offscreen document and their state lives with the service worker.
// It talks to the service worker alone: popup:* out, sw:* in (lib/messages.js). It lists
// the library (the songs kept to listen to) that the service worker reports, with Listen
// (the player, in a tab) and Remove.

import { runtime, features, storage } from '../lib/platform.js';
import * as inbox from '../lib/inbox.js';
import { unexpected } from '../lib/messages.js';
import { loadSchema, describe } from '../lib/settings.js';
import * as capturePanel from './capture_panel.js';

const $ = (id) => document.getElementById(id);
let chosen = []; // File objects not yet started
let port = null;
let jobs = [];
let schema = null; // the job settings' schema, once loaded
let shelf = { entries: [], bytes: 0 }; // the library, as the service worker last said
let shelfLimit = 0;
let shelfNotice = '';
// The extension's own settings (not a job's) are remembered from one popup to the next.
const REMEMBERED = ['save', 'library'];

// ------------------------------------------------------------------ service worker link

function connect() {
  port = runtime.connect('popup');
  port.onMessage.addListener((msg) => {
    switch (msg.type) {
      case 'sw:jobs':
        jobs = msg.jobs;
        render();
        break;
      case 'sw:error':
        if (msg.about?.startsWith('popup:capture')) capturePanel.notice(msg.error);
        else notice(msg.error);
        break;
      case 'sw:capture':
        capturePanel.show(msg.capture, msg.maxSeconds);
        break;
      case 'sw:capture-level':
        capturePanel.level(msg.level);
        break;
      case 'sw:library':
        shelf = msg.library;
        shelfLimit = msg.limit;
        shelfNotice = msg.notice;
        renderLibrary();
        render();
        break;
      default:
        unexpected('popup', msg);
    }
  });
  port.onDisconnect.addListener(() => {
    // The service worker was stopped (Chrome does that when idle): reconnect,
    // which starts it again.
    port = null;
    setTimeout(connect, 200);
  });
  port.postMessage({ type: 'popup:refresh' });
}

function send(message) {
  if (!port) connect();
  port.postMessage(message);
}

// ------------------------------------------------------------------ settings

// The menus, drawn from the schema: each element marked data-setting gets its label,
// choices and default (a fieldset gets radio buttons, a label a <select id=NAME>).
function renderSettings() {
  for (const el of document.querySelectorAll('[data-setting]')) {
    const name = el.dataset.setting;
    const spec = schema[name];
    if (!spec) throw new Error(`the popup offers a setting the schema lacks: ${name}`);
    el.title = spec.hint;
    if (spec.switch) {
      // An off/on setting: a checkbox, checked for 'on'.
      const box = Object.assign(document.createElement('input'), { type: 'checkbox', id: name, checked: spec.default === 'on' });
      el.replaceChildren(box, ` ${spec.label}`);
    } else if (el.tagName === 'FIELDSET') {
      const legend = document.createElement('legend');
      legend.textContent = spec.label;
      el.replaceChildren(
        legend,
        ...spec.choices.map((c) => {
          const label = document.createElement('label');
          const input = Object.assign(document.createElement('input'), { type: 'radio', name, value: c.value, checked: c.value === spec.default });
          label.append(input, ` ${c.label}`);
          return label;
        }),
      );
    } else {
      const select = Object.assign(document.createElement('select'), { id: name });
      select.append(...spec.choices.map((c) => new Option(c.label, c.value, c.value === spec.default, c.value === spec.default)));
      el.replaceChildren(`${spec.label} `, select);
    }
  }
}

// The remembered settings shown as chosen, and kept when changed; a smaller library trims it at once.
async function rememberSettings() {
  const saved = await storage.get('settings', {});
  for (const name of REMEMBERED) {
    const control = document.getElementById(name);
    if (!control || saved[name] === undefined || !schema[name].choices.some((c) => c.value === saved[name])) continue;
    if (schema[name].switch) control.checked = saved[name] === 'on';
    else control.value = saved[name];
  }
  for (const name of REMEMBERED) {
    document.getElementById(name)?.addEventListener('change', async () => {
      const now = chosenSettings();
      await storage.set('settings', { ...(await storage.get('settings', {})), ...Object.fromEntries(REMEMBERED.map((n) => [n, now[n]])) });
      if (name === 'library') send({ type: 'popup:library-limit', limit: now.library });
    });
  }
}

// Formats this browser cannot encode are not offered, and the popup says why in a line.
async function hideUnencodable() {
  const missing = [];
  for (const choice of schema.format.choices) {
    if (await features.encodes(choice)) continue;
    document.querySelector(`#format option[value="${choice.value}"]`)?.remove();
    missing.push(choice.label);
  }
  $('format-note').hidden = missing.length === 0;
  $('format-note').textContent = `Not offered here: ${missing.join(', ')} (this browser has no encoder for it).`;
}

// The settings as chosen now, whole: the service worker checks them.
function chosenSettings() {
  const settings = {};
  for (const name of Object.keys(schema)) {
    const radio = document.querySelector(`input[name="${name}"]:checked`);
    const control = document.getElementById(name);
    if (schema[name].switch) settings[name] = control?.checked ? 'on' : 'off';
    else settings[name] = radio ? radio.value : control?.value;
  }
  return settings;
}

// ------------------------------------------------------------------ choosing songs

function add(files) {
  for (const f of files) {
    if (!chosen.some((c) => c.name === f.name && c.size === f.size && c.lastModified === f.lastModified)) chosen.push(f);
  }
  renderChosen();
}

function renderChosen() {
  const list = $('chosen');
  list.replaceChildren(
    ...chosen.map((f, i) => {
      const li = document.createElement('li');
      const name = document.createElement('span');
      name.textContent = `${f.name} (${(f.size / 1048576).toFixed(1)} MB)`;
      const remove = document.createElement('button');
      remove.className = 'link';
      remove.textContent = 'remove';
      remove.addEventListener('click', () => {
        chosen.splice(i, 1);
        renderChosen();
      });
      li.append(name, remove);
      return li;
    }),
  );
  $('start').disabled = chosen.length === 0;
}

function notice(text) {
  $('notice').textContent = text || '';
}

async function start() {
  const files = chosen;
  if (files.length === 0) return;
  $('start').disabled = true;
  notice('');
  const settings = chosenSettings();
  const entries = [];
  try {
    for (const f of files) {
      $('start').textContent = `Preparing ${f.name}…`;
      entries.push({ key: await inbox.put(f), name: f.name, size: f.size });
    }
  } catch (e) {
    for (const entry of entries) await inbox.remove(entry.key);
    notice(`Could not read the file: ${e?.message ?? e}`);
    $('start').textContent = 'Start';
    $('start').disabled = false;
    return;
  }
  send({ type: 'popup:enqueue', files: entries, settings });
  chosen = [];
  $('files').value = '';
  $('start').textContent = 'Start';
  renderChosen();
}

// ------------------------------------------------------------------ jobs

function duration(seconds) {
  seconds = Math.max(0, Math.round(seconds));
  if (seconds < 60) return `${seconds} s`;
  const m = Math.floor(seconds / 60);
  const s = seconds % 60;
  if (m < 60) return s ? `${m} min ${s} s` : `${m} min`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function statusText(job) {
  switch (job.status) {
    case 'queued':
      return 'Waiting to start';
    case 'running':
      if (job.stage === 'decoding') return 'Decoding the audio';
      if (job.stage === 'engine') return `Starting the engine${job.detail ? ` (loading ${job.detail})` : ''}`;
      if (job.stage === 'separating') {
        return job.total ? `Separating segment ${Math.min(job.done + 1, job.total)} of ${job.total}` : 'Separating';
      }
      if (job.stage === 'transcribing') return `Writing the notes of the ${job.detail} (MIDI)`;
      return 'Starting';
    case 'cancelling':
      return 'Cancelling…';
    case 'saving':
      return 'Saving';
    case 'done':
      return job.folder ? `Saved to Downloads/Demixer/${job.folder}/` : 'Done: in the library (not saved to Downloads)';
    case 'cancelled':
      return 'Cancelled';
    case 'interrupted':
      return job.error || 'Interrupted';
    case 'failed':
      return job.error || 'Failed';
    default:
      return job.status;
  }
}

function etaText(job) {
  if (job.status === 'done' && job.started && job.finished) return `took ${duration((job.finished - job.started) / 1000)}`;
  if (job.status !== 'running' || job.eta == null) return '';
  const left = job.eta - (Date.now() - job.etaAt) / 1000;
  return left > 1 ? `about ${duration(left)} left` : 'almost done';
}

function jobView(job) {
  const li = document.createElement('li');
  li.className = `job ${job.status}`;
  li.dataset.id = job.id;
  li.dataset.status = job.status;
  li.dataset.name = job.name;
  const name = document.createElement('div');
  name.className = 'name';
  name.textContent = job.name;
  name.title = `${job.name} - ${describe(schema, job.settings)}`;

  const line = document.createElement('div');
  line.className = 'line';
  const status = document.createElement('span');
  status.className = 'status';
  status.textContent = statusText(job);
  const eta = document.createElement('span');
  eta.className = 'eta';
  eta.textContent = etaText(job);
  line.append(status, eta);
  li.append(name, line);

  if (['queued', 'running', 'cancelling', 'saving'].includes(job.status)) {
    const bar = document.createElement('progress');
    bar.max = 1;
    if (job.status === 'saving') bar.value = 1;
    else if (job.stage === 'separating' && job.total) bar.value = job.done / job.total;
    else bar.removeAttribute('value'); // indeterminate
    li.append(bar);
  }
  if (job.device && ['running', 'saving', 'done'].includes(job.status)) {
    // What ran the model, and why not the GPU when it was tried and refused.
    const d = document.createElement('div');
    d.className = 'device';
    d.textContent = job.gpuFailed ? `${job.device}: ${job.gpuRefused}` : job.device; // the reason is worded whole
    if (job.gpuRefused) d.title = `GPU: ${job.gpuRefused}`;
    li.append(d);
  }
  if (job.warnings?.length && job.status === 'done') {
    const w = document.createElement('div');
    w.className = 'warnings';
    w.textContent = job.warnings.join('; ');
    li.append(w);
  }

  const actions = document.createElement('div');
  actions.className = 'actions';
  if (['queued', 'running', 'saving'].includes(job.status)) {
    const cancel = document.createElement('button');
    cancel.className = 'cancel';
    cancel.textContent = 'Cancel';
    cancel.addEventListener('click', () => send({ type: 'popup:cancel', id: job.id }));
    actions.append(cancel);
  }
  if (job.status === 'interrupted' && job.retry) {
    const again = document.createElement('button');
    again.className = 'retry';
    again.textContent = 'Retry';
    again.addEventListener('click', () => send({ type: 'popup:retry', id: job.id }));
    actions.append(again);
  }
  if (job.status === 'done' && inLibrary(job.id)) actions.append(listenButton(job.id));
  if (job.status === 'done' && job.folder) {
    const show = document.createElement('button');
    show.className = 'show';
    show.textContent = 'Open folder';
    show.addEventListener('click', () => send({ type: 'popup:show', id: job.id }));
    actions.append(show);
  }
  if (actions.childElementCount) li.append(actions);
  return li;
}

// Rows are updated in place while a job keeps its status, so that a button under
// the pointer is never replaced between press and release.
function render() {
  const list = $('jobs');
  const old = new Map([...list.children].map((li) => [li.dataset.id, li]));
  const rows = jobs
    .slice()
    .reverse()
    .map((job) => {
      const fresh = jobView(job);
      const li = old.get(job.id);
      if (!li || li.dataset.status !== fresh.dataset.status) return fresh;
      if (Boolean(li.querySelector('.listen')) !== Boolean(fresh.querySelector('.listen'))) return fresh;
      for (const part of ['.status', '.eta', '.warnings']) {
        const a = li.querySelector(part);
        const b = fresh.querySelector(part);
        if (a && b) a.textContent = b.textContent;
        else if (a || b) return fresh;
      }
      const bar = li.querySelector('progress');
      const freshBar = fresh.querySelector('progress');
      if (bar && freshBar) {
        if (freshBar.hasAttribute('value')) bar.value = freshBar.value;
        else bar.removeAttribute('value');
      }
      return li;
    });
  for (const li of old.values()) if (!rows.includes(li)) li.remove();
  rows.forEach((li, i) => {
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
  });
  $('empty').hidden = jobs.length > 0;
  $('clear').hidden = !jobs.some((j) => ['done', 'failed', 'cancelled', 'interrupted'].includes(j.status));
}

// ------------------------------------------------------------------ the library

const inLibrary = (id) => shelf.entries.some((e) => e.id === id);

function listenButton(id) {
  const b = document.createElement('button');
  b.className = 'listen';
  b.textContent = 'Listen';
  b.addEventListener('click', () => send({ type: 'popup:listen', id }));
  return b;
}

function megabytes(bytes) {
  if (bytes >= 1024 ** 3) return `${Number((bytes / 1024 ** 3).toFixed(1))} GB`;
  if (bytes === 0) return '0 MB';
  return `${Math.max(0.1, bytes / 1024 ** 2).toFixed(bytes < 10 * 1024 ** 2 ? 1 : 0)} MB`;
}

const clock = (seconds) => `${Math.floor(seconds / 60)}:${String(Math.floor(seconds % 60)).padStart(2, '0')}`;

function entryView(e) {
  const li = document.createElement('li');
  li.dataset.id = e.id;
  li.dataset.name = e.name;
  const title = document.createElement('div');
  title.className = 'title';
  title.textContent = e.name;
  title.title = `${e.name} - ${describe(schema, e.settings)}`;
  const about = document.createElement('div');
  about.className = 'about';
  const when = new Date(e.created).toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  about.textContent = `${clock(e.frames / e.sampleRate)} · ${e.stems.length} stems · ${megabytes(e.bytes)} · ${e.source === 'tab' ? 'a tab' : 'a file'} · ${when}`;
  about.title = `${e.source === 'tab' ? 'Captured from a tab' : 'From a file'}, ${new Date(e.created).toLocaleString()}`;
  const actions = document.createElement('div');
  actions.className = 'actions';
  const remove = document.createElement('button');
  remove.className = 'remove';
  remove.textContent = 'Remove';
  remove.title = 'Remove this song from the library (saved files in Downloads stay)';
  remove.addEventListener('click', () => send({ type: 'popup:library-remove', id: e.id }));
  actions.append(listenButton(e.id), remove);
  li.append(title, actions, about);
  return li;
}

async function renderLibrary() {
  $('library-list').replaceChildren(...shelf.entries.map(entryView));
  const n = shelf.entries.length;
  const over = shelfLimit && shelf.bytes > shelfLimit ? ' (over the limit: only the newest song is kept past it)' : '';
  let usage = `${n === 0 ? 'No songs' : n === 1 ? '1 song' : `${n} songs`} · ${megabytes(shelf.bytes)} of ${megabytes(shelfLimit)}${over}`;
  try {
    const { usage: used, quota } = await navigator.storage.estimate();
    usage += ` · browser storage for Demixer: ${megabytes(used)} used of ${megabytes(quota)}`;
  } catch {
    /* no estimate in this browser */
  }
  $('library-usage').textContent = usage;
  $('library-notice').hidden = !shelfNotice;
  $('library-notice').textContent = shelfNotice;
  $('library-clear').hidden = n === 0;
  $('library-clear').textContent = 'Clear library';
  delete $('library-clear').dataset.armed;
}

// ------------------------------------------------------------------ wiring

$('files').addEventListener('change', (e) => add(e.target.files));
$('start').addEventListener('click', start);
$('clear').addEventListener('click', () => send({ type: 'popup:clear' }));
// Two clicks: the first asks, the second removes every song.
$('library-clear').addEventListener('click', (e) => {
  const b = e.currentTarget;
  if (b.dataset.armed === undefined) {
    b.dataset.armed = '';
    b.textContent = `Remove all ${shelf.entries.length} songs? Click again`;
    return;
  }
  send({ type: 'popup:library-clear' });
});

const drop = $('drop');
drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  add(e.dataTransfer.files);
});
// Dropping anywhere else in the popup must not navigate away to the file.
window.addEventListener('dragover', (e) => e.preventDefault());
window.addEventListener('drop', (e) => e.preventDefault());

// Controls that need a capability this browser lacks are hidden, with a word why.
for (const el of document.querySelectorAll('[data-needs]')) if (!features[el.dataset.needs]) el.hidden = true;
$('no-tab-capture').hidden = features.tabCapture;

loadSchema().then(
  async (loaded) => {
    schema = loaded;
    renderSettings();
    await rememberSettings();
    await hideUnencodable();
    connect();
    capturePanel.init({ send, settings: chosenSettings });
    document.body.dataset.ready = ''; // for the tests: the menus are drawn and the jobs will follow
  },
  (e) => notice(`Demixer is damaged (${e?.message ?? e}): reinstall it.`),
);
// The ETA counts down between reports; a message now and then also keeps the
// service worker awake while the popup is open.
setInterval(() => {
  // Only the countdown text changes: rebuilding the rows would swallow clicks.
  for (const li of document.querySelectorAll('#jobs li.job')) {
    const job = jobs.find((j) => j.id === li.dataset.id);
    if (job?.status === 'running') li.querySelector('.eta').textContent = etaText(job);
  }
}, 1000);
setInterval(() => port?.postMessage({ type: 'popup:refresh' }), 20000);
