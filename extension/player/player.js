// The stem player: player.html?id=<library entry id>. A row per stem (waveform from
// the precomputed peaks, fader, mute, solo), a transport (play, seek, loop, speed,
// transposition), the keyboard for all of it, and the export buttons. The audio is
// player_audio.js (one Signalsmith Stretch node for every stem); the library's format is
// lib/library.js. window.demixerPlayer is a read-only view of the state, for the tests.

import * as library from '../lib/library.js';
import { loadSchema } from '../lib/settings.js';
import { Engine } from './player_audio.js';
import { initExport, requestExport } from './player_export.js';
import { WavReader } from './wav.js';

const $ = (id) => document.getElementById(id);
const FADER_MIN_DB = -60; // the fader's bottom is silence
const COLORS = { vocals: '#f06292', drums: '#ffb74d', bass: '#9575cd', other: '#4db6ac', instrumental: '#4fc3f7' };
const FALLBACK_COLORS = ['#4fc3f7', '#aed581', '#ff8a65', '#ba68c8', '#fff176', '#90a4ae'];
const SEEK_S = 5;
const SEEK_FINE_S = 1;
const SPEED_STEP = 5;
const MISSING = 'This song is no longer in the library.';

const ui = {
  entry: null,
  engine: null,
  frames: 0,
  sampleRate: 44100,
  stems: [], // {name, db, muted, soloed, row, canvas, region, head, peaks, color}
  playing: false,
  hovered: -1,
  loop: { start: 0, end: 0, on: false }, // seconds
  draft: null, // the loop being drawn
  scrub: null, // the position being dragged to
  speed: 100,
  semitones: 0,
  peakMax: 127,
  binFrames: 1024,
  error: null,
};

// m:ss.s (minutes unbounded: 59:59.9 for an hour-long song), tenths floored.
export function clock(seconds) {
  const tenths = Math.floor(Math.max(0, seconds) * 10 + 1e-6);
  const m = Math.floor(tenths / 600);
  const rest = tenths - m * 600;
  return `${m}:${String(Math.floor(rest / 10)).padStart(2, '0')}.${rest % 10}`;
}

const dbText = (db) => (db <= FADER_MIN_DB ? '−∞ dB' : `${db > 0 ? '+' : db < 0 ? '−' : ''}${Math.abs(db).toFixed(1)} dB`);
const dbGain = (db) => (db <= FADER_MIN_DB ? 0 : 10 ** (db / 20));
const length = () => ui.frames / ui.sampleRate;

// What each stem is heard at: fader × (muted? 0) × (a solo active and this one not soloed? 0).
function effectiveGains() {
  const soloing = ui.stems.some((s) => s.soloed);
  return Object.fromEntries(ui.stems.map((s) => [s.name, s.muted || (soloing && !s.soloed) ? 0 : dbGain(s.db)]));
}

// The mix's name, for its file: "without vocals" (muted), "vocals only", "drums and vocals"
// (soloed); none for the full mix.
function mixLabel(gains) {
  const names = Object.keys(gains);
  const heard = names.filter((n) => gains[n] > 0);
  const silent = names.filter((n) => gains[n] === 0);
  const and = (list) => (list.length < 2 ? list.join('') : `${list.slice(0, -1).join(', ')} and ${list[list.length - 1]}`);
  if (!silent.length) return undefined;
  if (!heard.length) return 'silence';
  if (heard.length === 1) return `${heard[0]} only`;
  return ui.stems.some((s) => s.soloed) ? and(heard) : `without ${and(silent)}`;
}

function applyGains() {
  const gains = effectiveGains();
  ui.stems.forEach((s, i) => {
    ui.engine?.setGain(i, gains[s.name]);
    s.row.classList.toggle('silent', gains[s.name] === 0);
    s.mute.setAttribute('aria-pressed', String(s.muted));
    s.solo.setAttribute('aria-pressed', String(s.soloed));
  });
}

function position() {
  if (ui.scrub !== null) return ui.scrub;
  return ui.engine ? ui.engine.position : 0;
}

// ------------------------------------------------------------ the test hook

function installHook() {
  const hook = {};
  const props = {
    ready: () => ui.engine !== null,
    error: () => ui.error,
    position: () => position(),
    playing: () => ui.playing,
    rate: () => ui.speed / 100,
    semitones: () => ui.semitones,
    loop: () => ({ ...ui.loop }),
    gains: () => effectiveGains(),
    contextTime: () => (ui.engine ? ui.engine.contextTime : 0),
    length: () => length(),
    stems: () => ui.stems.map((s) => s.name),
    hovered: () => ui.stems[ui.hovered]?.name ?? null,
    stats: () => (ui.engine ? { reads: ui.engine.reads, reports: ui.engine.reports, pending: ui.engine.pendingSchedules, processorError: ui.engine.processorError, lastIn: ui.engine.lastIn, segments: ui.engine.segments.length, peakFedAhead: ui.engine.peakFedAhead, state: ui.engine.ctx.state } : null),
  };
  for (const [key, get] of Object.entries(props)) Object.defineProperty(hook, key, { get, enumerable: true });
  Object.defineProperty(window, 'demixerPlayer', { value: Object.freeze(hook) });
}

// ------------------------------------------------------------ transport

async function play() {
  if (!ui.engine) return;
  ui.playing = true;
  renderTransport();
  tick();
  try {
    await ui.engine.play();
  } catch (e) {
    status(`Could not play: ${e?.message ?? e}`, 'failed');
    ui.playing = false;
  }
  renderTransport();
}

function pause() {
  if (!ui.engine) return;
  ui.playing = false;
  ui.engine.pause();
  renderTransport();
  render();
}

const togglePlay = () => (ui.playing ? pause() : play());

function seek(seconds) {
  if (!ui.engine) return;
  let t = Math.max(0, Math.min(seconds, length()));
  // Past the loop while it is on: the loop goes off, the seek goes where it was asked
  // (before it, the loop stays: that plays into it).
  if (ui.loop.on && t >= ui.loop.end) setLoop(ui.loop.start, ui.loop.end, false);
  if (t >= length() && ui.playing) {
    pause(); // to the end: it stops there (and plays again from the start)
  }
  ui.engine.seek(t);
  render();
}

function setLoop(start, end, on) {
  const a = Math.max(0, Math.min(start, end));
  const b = Math.min(length(), Math.max(start, end));
  ui.loop = { start: a, end: b, on: Boolean(on) && b - a >= 0.05 };
  if (ui.engine) {
    ui.engine.setLoop(a, b, ui.loop.on);
    ui.loop = ui.engine.loopSeconds; // on whole frames, as it plays
  }
  renderTransport();
  render();
}

function toggleLoop() {
  if (ui.loop.end - ui.loop.start < 0.05) {
    // No region yet: the next 4 s from here (clamped to the song).
    const t = position();
    setLoop(Math.min(t, Math.max(0, length() - 4)), Math.min(length(), Math.max(t, 0) + 4), true);
    return;
  }
  setLoop(ui.loop.start, ui.loop.end, !ui.loop.on);
}

function setSpeed(percent) {
  ui.speed = Math.max(50, Math.min(150, Math.round(percent)));
  $('speed').value = ui.speed;
  $('speed-out').value = `${ui.speed} %`;
  ui.engine?.setRate(ui.speed / 100);
}

function setSemitones(st) {
  ui.semitones = Math.max(-12, Math.min(12, Math.round(st)));
  $('semitones').value = ui.semitones;
  $('semitones-out').value = `${ui.semitones > 0 ? '+' : ui.semitones < 0 ? '−' : ''}${Math.abs(ui.semitones)} st`;
  ui.engine?.setSemitones(ui.semitones);
}

// Exclusive, unless `add` (Ctrl/Cmd held): then it joins (or leaves) the soloed set.
function solo(i, add) {
  const s = ui.stems[i];
  if (!s) return;
  if (add) s.soloed = !s.soloed;
  else {
    const alone = s.soloed && ui.stems.every((o) => o === s || !o.soloed);
    ui.stems.forEach((o) => (o.soloed = false));
    s.soloed = !alone;
  }
  applyGains();
}

function mute(i) {
  const s = ui.stems[i];
  if (!s) return;
  s.muted = !s.muted;
  applyGains();
}

// ------------------------------------------------------------ drawing

function renderTransport() {
  const b = $('play');
  b.textContent = ui.playing ? '❚❚' : '▶';
  b.classList.toggle('playing', ui.playing);
  b.setAttribute('aria-label', ui.playing ? 'Pause' : 'Play');
  b.title = ui.playing ? 'Pause (Space)' : 'Play (Space)';
  const l = $('loop');
  l.setAttribute('aria-pressed', String(ui.loop.on));
  const has = ui.loop.end - ui.loop.start >= 0.05;
  $('loop-range').textContent = has ? `${clock(ui.loop.start)}–${clock(ui.loop.end)}${ui.loop.on ? '' : ' (off)'}` : '';
}

let shownClock = '';
function render() {
  const t = position();
  const text = clock(t);
  if (text !== shownClock) $('position').textContent = shownClock = text;
  const len = length() || 1;
  const frac = Math.min(t, len) / len;
  const loop = ui.draft ?? ui.loop;
  const has = loop.end - loop.start > 0;
  const regionKey = has ? `${loop.start} ${loop.end} ${!ui.draft && !loop.on}` : '';
  for (const s of ui.stems) {
    const x = Math.round(frac * s.width * 2) / 2; // no layout, and only when it moves half a pixel
    if (x !== s.headX) s.head.style.transform = `translateX(${(s.headX = x)}px)`;
    if (s.regionKey === regionKey) continue;
    s.regionKey = regionKey;
    s.region.hidden = !has;
    if (has) {
      s.region.style.left = `${(loop.start / len) * 100}%`;
      s.region.style.width = `${((loop.end - loop.start) / len) * 100}%`;
      s.region.classList.toggle('off', !ui.draft && !loop.on);
    }
  }
}

let ticking = false;
function tick() {
  if (ticking) return;
  ticking = true;
  const frame = () => {
    render();
    if (ui.playing || ui.scrub !== null) requestAnimationFrame(frame);
    else ticking = false;
  };
  requestAnimationFrame(frame);
}

// The overview from the peaks file: per pixel column, the lowest min and the highest max of its bins.
function drawWave(s) {
  const c = s.canvas;
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(c.clientWidth * dpr));
  const h = Math.max(1, Math.round(c.clientHeight * dpr));
  if (c.width !== w) c.width = w;
  if (c.height !== h) c.height = h;
  const g = c.getContext('2d');
  g.clearRect(0, 0, w, h);
  const mid = h / 2;
  g.fillStyle = s.color;
  const peaks = s.peaks;
  if (!peaks || !peaks.length) {
    g.fillRect(0, Math.floor(mid), w, 1);
    return;
  }
  const bins = peaks.length >> 1;
  const perPx = ui.frames / ui.binFrames / w; // bins per pixel column
  const scale = (h / 2 - 1) / ui.peakMax; // the loudest stem fills the height: the stems' levels compare
  for (let x = 0; x < w; x++) {
    const b0 = Math.min(bins - 1, Math.floor(x * perPx));
    const b1 = Math.min(bins, Math.max(b0 + 1, Math.floor((x + 1) * perPx)));
    let lo = 127;
    let hi = -128;
    for (let b = b0; b < b1; b++) {
      const mn = peaks[2 * b];
      const mx = peaks[2 * b + 1];
      if (mn < lo) lo = mn;
      if (mx > hi) hi = mx;
    }
    const top = mid - hi * scale;
    const bottom = mid - lo * scale;
    g.fillRect(x, Math.floor(top), 1, Math.max(1, Math.ceil(bottom - top)));
  }
}

// ------------------------------------------------------------ rows and pointer

function timeAt(wave, clientX) {
  const r = wave.getBoundingClientRect();
  return (Math.max(0, Math.min(clientX - r.left, r.width)) / r.width) * length();
}

// A mute or solo button: a toggle whose state is in aria-pressed.
function toggleButton(className, text, label, title) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = className;
  b.textContent = text;
  b.setAttribute('aria-label', label);
  b.setAttribute('aria-pressed', 'false');
  b.title = title;
  return b;
}

function makeRow(name, i) {
  const row = document.createElement('div');
  row.className = 'row';
  row.dataset.stem = name;
  row.setAttribute('role', 'group');
  row.setAttribute('aria-label', name);
  const label = document.createElement('div');
  label.className = 'name';
  label.textContent = name;
  const dbLabel = document.createElement('small');
  dbLabel.textContent = dbText(0);
  label.append(dbLabel);
  const muteB = toggleButton('mute', 'M', `Mute ${name}`, `Mute ${name} (M with the pointer over the row)`);
  const soloB = toggleButton('solo', 'S', `Solo ${name}`, `Solo ${name}${i < 9 ? ` (${i + 1})` : ''}; Ctrl/⌘+click adds to the solo`);
  const fader = document.createElement('input');
  fader.type = 'range';
  fader.className = 'fader';
  fader.min = String(FADER_MIN_DB);
  fader.max = '6';
  fader.step = '0.5';
  fader.value = '0';
  fader.setAttribute('aria-label', `${name} volume`);
  fader.setAttribute('aria-valuetext', dbText(0));
  fader.title = `${name} volume (double-click: 0 dB)`;
  const wave = document.createElement('div');
  wave.className = 'wave';
  wave.setAttribute('role', 'img');
  wave.setAttribute('aria-label', `${name} waveform`);
  wave.title = 'Click or drag to seek; Shift+drag to draw a loop';
  const canvas = document.createElement('canvas');
  const region = document.createElement('div');
  region.className = 'region';
  region.hidden = true;
  const head = document.createElement('div');
  head.className = 'head';
  wave.append(canvas, region, head);
  row.append(label, muteB, soloB, fader, wave);

  const s = { name, db: 0, muted: false, soloed: false, row, canvas, region, head, mute: muteB, solo: soloB, peaks: null, width: 0, headX: null, regionKey: null, color: COLORS[name] ?? FALLBACK_COLORS[i % FALLBACK_COLORS.length] };
  muteB.addEventListener('click', () => mute(i));
  soloB.addEventListener('click', (e) => solo(i, e.ctrlKey || e.metaKey));
  const setDb = (db) => {
    s.db = db;
    fader.value = String(db);
    dbLabel.textContent = dbText(db);
    fader.setAttribute('aria-valuetext', dbText(db));
    applyGains();
  };
  fader.addEventListener('input', () => setDb(Number(fader.value)));
  fader.addEventListener('dblclick', () => setDb(0));
  row.addEventListener('pointerenter', () => {
    ui.hovered = i;
    row.classList.add('hover');
  });
  row.addEventListener('pointerleave', () => {
    if (ui.hovered === i) ui.hovered = -1;
    row.classList.remove('hover');
  });
  wirePointer(wave);
  new ResizeObserver(() => {
    s.width = wave.clientWidth;
    drawWave(s);
    render();
  }).observe(canvas);
  return s;
}

function wirePointer(wave) {
  let mode = null;
  let from = 0;
  let lastSeek = 0;
  wave.addEventListener('pointerdown', (e) => {
    if (e.button !== 0 || !ui.engine) return;
    e.preventDefault();
    wave.setPointerCapture(e.pointerId);
    const t = timeAt(wave, e.clientX);
    if (e.shiftKey) {
      mode = 'loop';
      from = t;
      ui.draft = { start: t, end: t, on: true };
    } else {
      mode = 'seek';
      ui.scrub = t;
      seek(t);
      lastSeek = performance.now();
    }
    tick();
    render();
  });
  wave.addEventListener('pointermove', (e) => {
    if (!mode) return;
    const t = timeAt(wave, e.clientX);
    if (mode === 'loop') ui.draft = { start: Math.min(from, t), end: Math.max(from, t), on: true };
    else {
      ui.scrub = t;
      const now = performance.now();
      if (!ui.playing || now - lastSeek > 80) {
        seek(t); // dragging while playing: a seek every 80 ms at most
        lastSeek = now;
      }
    }
    render();
  });
  const end = (e) => {
    if (!mode) return;
    const t = timeAt(wave, e.clientX);
    if (mode === 'loop') {
      const a = Math.min(from, t);
      const b = Math.max(from, t);
      ui.draft = null;
      if (b - a >= 0.05) setLoop(a, b, true);
    } else {
      seek(t);
      ui.scrub = null;
    }
    mode = null;
    render();
  };
  wave.addEventListener('pointerup', end);
  wave.addEventListener('pointercancel', end);
}

// ------------------------------------------------------------ keyboard

const CONTROL_KEYS = new Set(['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown', 'Home', 'End', 'PageUp', 'PageDown']);

function onKey(e) {
  if (!ui.engine || e.altKey) return;
  const onControl = e.target instanceof Element && e.target.matches('input, select, textarea');
  if (onControl && CONTROL_KEYS.has(e.key)) return; // a slider's or a menu's own keys
  if (e.target instanceof Element && e.target.matches('select') && e.key !== ' ') return; // a menu's type-ahead
  if ((e.ctrlKey || e.metaKey) && e.key !== ' ') return; // the browser's shortcuts
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  const digit = /^(?:Digit|Numpad)([1-9])$/.exec(e.code);
  if (digit && !e.ctrlKey && !e.metaKey) {
    solo(Number(digit[1]) - 1, false);
    e.preventDefault();
    return;
  }
  switch (key) {
    case ' ':
      togglePlay();
      break;
    case 'ArrowLeft':
      seek(position() - (e.shiftKey ? SEEK_FINE_S : SEEK_S));
      break;
    case 'ArrowRight':
      seek(position() + (e.shiftKey ? SEEK_FINE_S : SEEK_S));
      break;
    case 'Home':
      seek(ui.loop.on ? ui.loop.start : 0);
      break;
    case 'l':
      toggleLoop();
      break;
    case '[': {
      const t = position();
      setLoop(t, ui.loop.end > t ? ui.loop.end : Math.min(length(), t + 4), true);
      break;
    }
    case ']': {
      const t = position();
      setLoop(ui.loop.start < t ? ui.loop.start : Math.max(0, t - 4), t, true);
      break;
    }
    case 'm': {
      // The row under the pointer; without one, the row holding the focus.
      let i = ui.hovered;
      if (i < 0) i = ui.stems.findIndex((s) => s.row.contains(document.activeElement));
      if (i < 0) return;
      mute(i);
      break;
    }
    case '-':
      setSpeed(ui.speed - SPEED_STEP);
      break;
    case '=':
    case '+':
      setSpeed(ui.speed + SPEED_STEP);
      break;
    default:
      return;
  }
  e.preventDefault();
}

// ------------------------------------------------------------ status and exports

function status(text, state = '') {
  const el = $('status');
  el.textContent = text;
  el.className = state;
  el.dataset.state = state;
}

async function fillFormats() {
  const select = $('mix-format');
  try {
    const schema = await loadSchema();
    const choices = schema.format?.choices ?? [];
    for (const c of choices) select.add(new Option(c.label, c.value));
    const wanted = ui.entry.settings?.format;
    select.value = choices.some((c) => c.value === wanted) ? wanted : schema.format.default;
  } catch {
    select.add(new Option('WAV 16-bit', 'wav16'));
  }
}

function wireExports() {
  initExport(ui.entry.id, status);
  const pick = $('stem-pick');
  for (const s of ui.stems) pick.add(new Option(s.name, s.name));
  const label = () => {
    $('save-stem').textContent = `Save ${pick.value}`;
    $('save-stem').setAttribute('aria-label', `Save the ${pick.value} stem`);
  };
  pick.addEventListener('change', label);
  label();
  $('save-folder').addEventListener('click', () => requestExport({ kind: 'folder' }));
  $('save-stem').addEventListener('click', () => requestExport({ kind: 'stem', stem: pick.value }));
  $('save-zip').addEventListener('click', () => requestExport({ kind: 'zip' }));
  $('save-mix').addEventListener('click', () => {
    const gains = effectiveGains();
    requestExport({ kind: 'mix', gains, format: $('mix-format').value, label: mixLabel(gains) });
  });
  fillFormats();
}

// ------------------------------------------------------------ start

function missing(text) {
  $('missing').textContent = text;
  $('missing').hidden = false;
  $('player').hidden = true;
  $('song').textContent = 'Demixer';
  document.title = 'Song not found — Demixer';
  document.body.dataset.ready = 'missing';
}

async function loadPeaks(s, path) {
  try {
    const file = await library.entryFile(ui.entry.id, path);
    s.peaks = new Int8Array(await file.arrayBuffer());
  } catch (e) {
    console.warn(`no waveform for ${s.name}:`, e);
  }
}

async function loadAllPeaks() {
  await Promise.all(ui.stems.map((s) => loadPeaks(s, ui.entry.peaks?.files?.[s.name] ?? library.peaksPath(s.name))));
  let max = 16; // silence stays flat
  for (const s of ui.stems) if (s.peaks) for (const v of s.peaks) if (Math.abs(v) > max) max = Math.abs(v);
  ui.peakMax = Math.min(127, max);
  ui.stems.forEach(drawWave);
  document.body.dataset.waves = 'drawn';
}

async function main() {
  installHook();
  const id = new URLSearchParams(location.search).get('id');
  let entry;
  try {
    if (!id || /[\\/]/.test(id)) throw Object.assign(new Error('no such entry'), { name: 'NotFoundError' });
    entry = await library.readEntry(id);
  } catch (e) {
    missing(e?.name === 'NotFoundError' || e?.name === 'TypeError' ? MISSING : `This song could not be opened: ${e?.message ?? e}`);
    return;
  }
  ui.entry = entry;
  document.title = `${entry.name} — Demixer`;
  $('song').textContent = entry.name;
  $('song').title = entry.name;

  let readers;
  try {
    readers = await Promise.all(
      entry.stems.map(async (stem) => WavReader.open(await library.entryFile(entry.id, entry.play?.[stem] ?? library.playPath(stem)))),
    );
  } catch (e) {
    missing(e?.name === 'NotFoundError' ? `${MISSING} (its files are gone)` : `This song could not be opened: ${e?.message ?? e}`);
    return;
  }
  ui.sampleRate = entry.sampleRate ?? readers[0].h.sampleRate;
  ui.frames = entry.frames ?? Math.max(...readers.map((r) => r.frames));
  ui.binFrames = entry.peaks?.bin ?? library.PEAKS_BIN;
  const odd = readers.find((r) => r.h.sampleRate !== ui.sampleRate);
  if (odd) {
    missing(`This song could not be opened: a stem is at ${odd.h.sampleRate} Hz, not ${ui.sampleRate} Hz`);
    return;
  }

  $('player').hidden = false;
  $('length').textContent = clock(length());
  $('info').textContent = `${entry.stems.length} stems · ${(ui.sampleRate / 1000).toFixed(1)} kHz`;
  const rows = $('rows');
  ui.stems = entry.stems.map((name, i) => makeRow(name, i));
  rows.append(...ui.stems.map((s) => s.row));
  loadAllPeaks();
  wireExports();

  $('play').addEventListener('click', togglePlay);
  $('loop').addEventListener('click', toggleLoop);
  $('speed').addEventListener('input', () => setSpeed(Number($('speed').value)));
  $('speed').addEventListener('dblclick', () => setSpeed(100));
  $('semitones').addEventListener('input', () => setSemitones(Number($('semitones').value)));
  $('semitones').addEventListener('dblclick', () => setSemitones(0));
  document.addEventListener('keydown', onKey);
  // A focused button would take Space as a click too (on keyup): Space is the transport's.
  document.addEventListener('keyup', (e) => {
    if (e.key === ' ' && e.target instanceof Element && e.target.matches('button, select')) e.preventDefault();
  });
  renderTransport();
  render();

  try {
    ui.engine = await Engine.create({ sampleRate: ui.sampleRate, frames: ui.frames, stems: entry.stems.map((name, i) => ({ name, reader: readers[i] })) });
  } catch (e) {
    ui.error = String(e?.message ?? e);
    status(`The audio engine could not start: ${ui.error}`, 'failed');
    document.body.dataset.ready = 'error';
    return;
  }
  ui.engine.onEnded = () => {
    ui.playing = false;
    renderTransport();
    render();
  };
  applyGains();
  document.body.dataset.ready = 'true';
}

main();
