// Tab capture, the service worker's side: it starts and stops the recording
// that runs in the offscreen document (offscreen/tab_recorder.js), shows "REC" on
// the toolbar badge meanwhile, and turns the finished recording into an ordinary
// job (the same settings, progress and folder layout as a file).
//
// State (chrome.storage.local 'capture'), what the popup shows:
//   {status: 'idle', message}                       nothing running; maybe a word on the last capture
//   {status: 'recording', tabId, title, started, settings}
//   {status: 'kept', key, seconds, reason, title, started, settings}
//   settings: the job settings the popup chose (checked by the service worker; the last
//   choice wins: Stop and Separate send the popup's settings again)
//       the tab was closed or navigated away: the recording waits for Separate or Discard
//
// Limits: MAX_SECONDS per capture (the recording stops there and is separated);
// a tab whose capture never rises above SILENT_PEAK (-60 dBFS) played nothing.

import { storage, tabs, tabCapture, badge } from '../lib/platform.js';
import * as inbox from '../lib/inbox.js';

export const MAX_SECONDS = 10 * 60;
const SILENT_PEAK = 0.001;
const MIN_SECONDS = 1;
const IDLE = { status: 'idle', message: '' };

function duration(seconds) {
  const s = Math.round(seconds);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

// "<tab title> - 2026-11-24 20h31m05": the folder name the stems go to. No dot
// at the end, since a file job's name loses its extension there.
export function captureName(title, started) {
  const d = new Date(started);
  const two = (n) => String(n).padStart(2, '0');
  const stamp = `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}h${two(d.getMinutes())}m${two(d.getSeconds())}`;
  const name = String(title || '').trim() || 'Tab capture';
  return `${name} - ${stamp}`;
}

// ensureEngine(): opens the offscreen document. tellEngine(msg): messages it.
// enqueue(files, settings): the service worker's job queue. post(msg): to every open popup.
export function captureControl({ ensureEngine, tellEngine, enqueue, post, isEngineOpen }) {
  let lock = Promise.resolve();

  // One change at a time, saved, and shown to the popups.
  function change(fn) {
    const next = lock.then(async () => {
      const state = await storage.get('capture', IDLE);
      const result = await fn(state);
      const fresh = result?.state ?? state;
      await storage.set('capture', fresh);
      post({ type: 'sw:capture', capture: fresh, maxSeconds: MAX_SECONDS });
      return result?.value;
    });
    lock = next.catch((e) => console.error(e));
    return next;
  }

  async function start({ tabId, title, settings, streamId, streamError }) {
    return change(async (state) => {
      if (state.status === 'recording') {
        throw new Error(`A capture is already running (${state.title || 'another tab'}). Stop it before starting another.`);
      }
      if (state.status === 'kept') {
        throw new Error('The last recording is waiting: separate or discard it before starting a new capture.');
      }
      if (!tabCapture.available()) throw new Error('This browser cannot capture tabs (Chromium-based browsers only).');
      if (tabId == null) throw new Error('There is no tab to capture here.');
      // The popup made the stream id: an id is only good in the process that
      // asked for it, and the extension's cross-origin-isolated pages (popup,
      // offscreen document) do not share the service worker's process.
      if (!streamId) throw new Error(`This tab cannot be captured${streamError ? `: ${streamError}` : '.'}`);
      await ensureEngine();
      const answer = await tellEngine({ type: 'sw:capture-start', streamId, maxSeconds: MAX_SECONDS });
      if (answer?.error) throw new Error(`The capture could not start: ${answer.error}`);
      await badge.set('REC', '#e53935').catch(() => {});
      return { state: { status: 'recording', tabId, title: title || '', started: Date.now(), settings, rate: answer.rate } };
    });
  }

  async function stop({ settings, reason = 'stopped' } = {}) {
    const stopping = await change((state) => {
      if (state.status !== 'recording') return { value: false };
      return { state: { ...state, settings: settings ?? state.settings, stopping: reason }, value: true };
    });
    if (stopping) await tellEngine({ type: 'sw:capture-stop', reason });
  }

  function jobFrom(state, key) {
    return enqueue([{ key, name: captureName(state.title, state.started), size: 0, source: 'tab' }], state.settings);
  }

  // The recording's level, for the popups' meter (offscreen:capture-level).
  function level(msg) {
    post({ type: 'sw:capture-level', level: msg.level, seconds: msg.seconds });
  }

  // The recording has ended (offscreen:capture-saved).
  async function saved(result) {
    await badge.set('').catch(() => {});
    let job = null;
    await change(async (state) => {
      const where = state.title ? `"${state.title}"` : 'The tab';
      if (result.error) return { state: { ...IDLE, message: result.error } };
      const reason = state.stopping || result.reason;
      if (!result.key || result.peak < SILENT_PEAK) {
        if (result.key) await inbox.remove(result.key);
        return {
          state: {
            ...IDLE,
            message: `${where} played no sound during the ${duration(result.captured || 0)} captured, so there is nothing to separate. Start the music in the tab, then capture it.`,
          },
        };
      }
      if (result.seconds < MIN_SECONDS) {
        await inbox.remove(result.key);
        return { state: { ...IDLE, message: 'The capture was shorter than a second: nothing to separate.' } };
      }
      if (reason === 'closed' || reason === 'navigated') {
        const why = reason === 'closed' ? 'was closed' : 'went to another page';
        return {
          state: {
            status: 'kept',
            key: result.key,
            seconds: result.seconds,
            reason,
            title: state.title,
            started: state.started,
            settings: state.settings,
            message: `${where} ${why} during the capture; ${duration(result.seconds)} of sound were recorded.`,
          },
        };
      }
      job = { state, key: result.key };
      const message =
        reason === 'limit'
          ? `The capture reached its ${MAX_SECONDS / 60}-minute limit: the ${MAX_SECONDS / 60} minutes recorded are being separated.`
          : '';
      return { state: { ...IDLE, message } };
    });
    if (job) await jobFrom(job.state, job.key);
  }

  async function keep({ settings }) {
    let job = null;
    await change((state) => {
      if (state.status !== 'kept') return undefined;
      job = { ...state, settings: settings ?? state.settings };
      return { state: IDLE };
    });
    if (job) await jobFrom(job, job.key);
  }

  async function discard() {
    await change(async (state) => {
      if (state.status !== 'kept') return undefined;
      await inbox.remove(state.key);
      return { state: IDLE };
    });
  }

  // A recording whose offscreen document is gone (the browser restarted, the
  // document crashed) will never report: say so.
  async function check() {
    const state = await storage.get('capture', IDLE);
    if (state.status === 'recording' && !(await isEngineOpen())) {
      await badge.set('').catch(() => {});
      await change(() => ({ state: { ...IDLE, message: 'The capture stopped unexpectedly; nothing was kept.' } }));
    } else {
      post({ type: 'sw:capture', capture: state, maxSeconds: MAX_SECONDS });
    }
  }

  async function reset() {
    await badge.set('').catch(() => {});
    await change(async (state) => {
      if (state.key) await inbox.remove(state.key);
      return { state: IDLE };
    });
  }

  const recording = async () => (await storage.get('capture', IDLE)).status === 'recording';

  // The captured tab goes away: keep what was recorded (tab_recorder.js also
  // sees the track end; whichever comes first stops it).
  tabs.onRemoved(async (tabId) => {
    const state = await storage.get('capture', IDLE);
    if (state.status === 'recording' && state.tabId === tabId) await stop({ reason: 'closed' });
  });
  tabs.onUpdated(async (tabId, info) => {
    if (info.status !== 'loading') return;
    const state = await storage.get('capture', IDLE);
    if (state.status === 'recording' && state.tabId === tabId) await stop({ reason: 'navigated' });
  });

  return { start, stop, keep, discard, level, saved, check, reset, recording };
}
