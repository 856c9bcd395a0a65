// The popup's "Capture this tab" box: starts and stops a capture through the
// service worker (background/capture_control.js), shows the elapsed time and a live
// level meter while recording, and, when the tab went away mid-capture, offers to
// separate what was recorded. The settings are the popup's, whole, as for files,
// sent again with Stop and Separate so that the last choice counts.

import { tabs, tabCapture } from '../lib/platform.js';

const $ = (id) => document.getElementById(id);
let state = { status: 'idle', message: '' };
let maxSeconds = 600;
let send = () => {};
let settings = () => ({});

const clock = (s) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, '0')}`;

// The meter shows the peak on a dB scale, -60 dBFS (empty) to 0 dBFS (full).
function meterValue(peak) {
  if (!(peak > 0)) return 0;
  return Math.max(0, Math.min(1, 1 + (20 * Math.log10(peak)) / 60));
}

function render() {
  const recording = state.status === 'recording';
  const kept = state.status === 'kept';
  $('capture').hidden = recording || kept;
  $('recording').hidden = !recording;
  $('kept').hidden = !kept;
  $('capture-limit').textContent = `Records what the tab plays, up to ${maxSeconds / 60} minutes.`;
  if (recording) {
    $('rec-title').textContent = state.title || 'this tab';
    $('rec-title').title = state.title || '';
    tick();
  }
  if (kept) $('kept-text').textContent = state.message;
  $('capture-notice').textContent = recording || kept ? '' : state.message || '';
  $('capture-stop').disabled = Boolean(state.stopping);
  $('capture-stop').textContent = state.stopping ? 'Stopping…' : 'Stop and separate';
}

function tick() {
  if (state.status !== 'recording') return;
  $('elapsed').textContent = `${clock((Date.now() - state.started) / 1000)} / ${clock(maxSeconds)}`;
}

async function startCapture() {
  $('capture-notice').textContent = '';
  let tab = null;
  try {
    tab = await tabs.target();
  } catch {
    /* no tab: the service worker says so */
  }
  // The stream id is made here, in the click: see capture_control.js's start().
  let streamId = null;
  let streamError = '';
  if (tab) {
    try {
      streamId = await tabCapture.streamId(tab.id);
    } catch (e) {
      streamError = String(e?.message ?? e);
    }
  }
  send({ type: 'popup:capture-start', tabId: tab?.id ?? null, title: tab?.title ?? '', streamId, streamError, settings: settings() });
}

// The capture's state, from the service worker (sw:capture).
export function show(capture, max) {
  state = capture || state;
  maxSeconds = max || maxSeconds;
  render();
}

// The recording's peak since the last report (sw:capture-level).
export function level(peak) {
  $('level').value = meterValue(peak);
}

// An error answer from the service worker about a capture request.
export function notice(text) {
  $('capture-notice').textContent = text;
}

export function init(options) {
  send = options.send;
  settings = options.settings;
  if (!tabCapture.available()) {
    $('capture-box').hidden = true; // Firefox: no tabCapture
    return;
  }
  $('capture').addEventListener('click', startCapture);
  $('capture-stop').addEventListener('click', () => send({ type: 'popup:capture-stop', settings: settings() }));
  $('kept-separate').addEventListener('click', () => send({ type: 'popup:capture-keep', settings: settings() }));
  $('kept-discard').addEventListener('click', () => send({ type: 'popup:capture-discard' }));
  setInterval(tick, 250);
  render();
}
