// The message catalogue: every message that crosses a context boundary, with its
// fields, the module that sends it and the module that handles it. A type is named
// `<sender>:<what>`, so the same event gets a new name at each hop (the engine
// worker's `engine:progress` becomes the offscreen page's `offscreen:progress`, which
// the service worker folds into `sw:jobs` for the popup).
//
//   popup ──port 'popup'──► service worker ──runtime message──► offscreen page ──postMessage──► engine worker ──postMessage──► model worker
//         ◄── sw:* ──────                  ◄── offscreen:* ────                ◄── engine:* ──                ◄── model:* ───
//
// Senders and handlers use the type strings literally (so `git grep 'engine:progress'`
// finds the catalogue, its sender and its handler); tests/extension/messages.test.mjs
// checks that each type below has exactly the sender and the handler named here, that
// no other type is sent, and that every dispatcher ends in a `default` branch.
// Paths are relative to extension/.

/** @typedef {{stems: string, format: string, preset: string, clip: string}} JobSettings  see lib/settings.js */
/** @typedef {{key: string, name: string, size: number}} InboxFile  a song copied into the OPFS inbox (lib/inbox.js) */

// ---------------------------------------------------------------- popup → service worker (port 'popup')
/** @typedef {{type: 'popup:refresh'}} PopupRefresh  send the state now (also keeps the service worker awake) */
/** @typedef {{type: 'popup:enqueue', files: InboxFile[], settings: JobSettings}} PopupEnqueue  one job per file */
/** @typedef {{type: 'popup:cancel', id: string}} PopupCancel */
/** @typedef {{type: 'popup:retry', id: string}} PopupRetry  an interrupted job whose song is still in the inbox */
/** @typedef {{type: 'popup:clear'}} PopupClear  forget the finished jobs */
/** @typedef {{type: 'popup:show', id: string}} PopupShow  open the folder of a done job */
/** @typedef {{type: 'popup:capture-start', tabId: number|null, title: string, streamId: string|null, streamError: string, settings: JobSettings}} PopupCaptureStart */
/** @typedef {{type: 'popup:capture-stop', settings: JobSettings}} PopupCaptureStop  stop and separate */
/** @typedef {{type: 'popup:capture-keep', settings: JobSettings}} PopupCaptureKeep  separate a recording whose tab went away */
/** @typedef {{type: 'popup:capture-discard'}} PopupCaptureDiscard */

// ---------------------------------------------------------------- service worker → popup (port 'popup')
/** @typedef {{type: 'sw:jobs', jobs: object[], now: number}} SwJobs  the whole job list, after every change */
/** @typedef {{type: 'sw:error', error: string, about: string}} SwError  a popup request failed (`about`: its type) */
/** @typedef {{type: 'sw:capture', capture: object, maxSeconds: number}} SwCapture  the tab capture's state */
/** @typedef {{type: 'sw:capture-level', level: number, seconds: number}} SwCaptureLevel  the recording's peak level */

// ---------------------------------------------------------------- service worker → offscreen page (runtime message)
/** @typedef {{gpu: boolean, why?: string, diagnostics?: {software?: boolean, agreementDb?: number, fail?: 'load'|'lost'|'nan'}}} GpuChoice  what the engine may do with the GPU (service_worker.js gpuChoice) */
/** @typedef {{type: 'sw:run', job: {id: string, key: string, name: string, settings: JobSettings, gpu: GpuChoice}}} SwRun */
/** @typedef {{type: 'sw:cancel', id: string}} SwCancel */
/** @typedef {{type: 'sw:release', id: string}} SwRelease  the stems are saved (or dropped): free their files */
/** @typedef {{type: 'sw:capture-start', streamId: string, maxSeconds: number}} SwCaptureStart */
/** @typedef {{type: 'sw:capture-stop', reason: string}} SwCaptureStop */

// ---------------------------------------------------------------- offscreen page → service worker (runtime message)
/** @typedef {{type: 'offscreen:stage', id: string, stage: 'decoding'|'engine'|'separating'|'transcribing', detail?: string, done?: number, total?: number, backend?: string, device?: string}} OffscreenStage */
/** @typedef {{type: 'offscreen:progress', id: string, done: number, total: number, seconds: number, backend: string, device: string}} OffscreenProgress */
/** @typedef {{type: 'offscreen:alive', id: string}} OffscreenAlive  every few seconds while a job runs: keeps Firefox's event page (and Chromium's service worker) from being unloaded */
/** @typedef {{type: 'offscreen:finished', id: string, files: {stem: string, url: string, bytes: number}[], result: object, timings: object}} OffscreenFinished  url: a blob: URL of the stem's OPFS file */
/** @typedef {{type: 'offscreen:failed', id: string, error: string, cancelled: boolean}} OffscreenFailed */
/** @typedef {{type: 'offscreen:idle'}} OffscreenIdle  the engine was let go after a while without work: the page may close */
/** @typedef {{type: 'offscreen:capture-level', level: number, seconds: number}} OffscreenCaptureLevel */
/** @typedef {{type: 'offscreen:capture-saved', key?: string, seconds?: number, captured?: number, peak?: number, reason?: string, error?: string}} OffscreenCaptureSaved  the recording ended, whatever ended it */

// ---------------------------------------------------------------- offscreen page → engine worker
/** @typedef {{type: 'offscreen:separate', id: string, input: string, outDir: string, settings: JobSettings, gpu: GpuChoice, song: string, cancel: Int32Array}} OffscreenSeparate  input, outDir: OPFS paths; song: for the stems' tags; cancel: set to 1 to cancel (shared memory where the page is cross-origin isolated) */

// ---------------------------------------------------------------- engine worker → offscreen page
/** @typedef {{type: 'engine:loading', id: string, what: string}} EngineLoading  a cold-start step */
/** @typedef {{type: 'engine:ready', id: string, backend: string, device: string, timings: object}} EngineReady  device: "GPU: <vendor architecture>" or "CPU: N threads" */
/** @typedef {{type: 'engine:progress', id: string, done: number, total: number, seconds: number, model: number, backend: string, device: string}} EngineProgress  one model segment finished */
/** @typedef {{type: 'engine:transcribing', id: string, stem: string}} EngineTranscribing  the stems are written; now this one's notes (MIDI) */
/** @typedef {{type: 'engine:done', id: string, result: {stems: string[], frames: number, warnings: string[], files: object[]}, timings: object}} EngineDone */
/** @typedef {{type: 'engine:failed', id: string, error: string, cancelled: boolean, input: boolean}} EngineFailed  input: the file, not the engine, is at fault */

// ---------------------------------------------------------------- engine worker → model worker (each answered by seq)
/** @typedef {{type: 'engine:load-model', seq: number, threads: number, gpu: boolean, why?: string, diagnostics?: object, profile?: boolean}} EngineLoadModel  GpuChoice's fields */
/** @typedef {{type: 'engine:run-model', seq: number, wave: Float32Array, spec: Float32Array}} EngineRunModel  transferred */
/** @typedef {{type: 'engine:run-notes', seq: number, audio: Float32Array}} EngineRunNotes  one window of the note model (Basic Pitch), transferred */
/** @typedef {{type: 'engine:end-profiling', seq: number}} EngineEndProfiling  sent by bench/profile.py, which stands in for the engine */

// ---------------------------------------------------------------- model worker → engine worker
/** @typedef {{backend: string, device: string, refused: string|null, agreement: number|null, failed: boolean}} ModelState  refused: why not the GPU; failed: it was tried and failed */
/** @typedef {{type: 'model:loaded', seq: number, seconds: number} & ModelState} ModelLoaded */
/** @typedef {{type: 'model:result', seq: number, freq: Float32Array, time: Float32Array, seconds: number} & ModelState} ModelResult  transferred */
/** @typedef {{type: 'model:notes', seq: number, note: Float32Array, onset: Float32Array, contour: Float32Array, seconds: number}} ModelNotes  transferred */
/** @typedef {{type: 'model:profiled', seq: number}} ModelProfiled */
/** @typedef {{type: 'model:error', seq: number|null, message: string}} ModelError */

const POPUP = 'popup/popup.js';
const SW = 'background/service_worker.js';
const CAPTURE = 'background/capture_control.js';
const OFFSCREEN = 'offscreen/offscreen.js';
const ENGINE = 'engine/engine_worker.js';
const MODEL = 'engine/model_worker.js';
const POOL = 'engine/session_pool.js';

// type -> [the module that sends it, the module that handles it]
export const MESSAGES = {
  'popup:refresh': [POPUP, SW],
  'popup:enqueue': [POPUP, SW],
  'popup:cancel': [POPUP, SW],
  'popup:retry': [POPUP, SW],
  'popup:clear': [POPUP, SW],
  'popup:show': [POPUP, SW],
  'popup:capture-start': ['popup/capture_panel.js', SW],
  'popup:capture-stop': ['popup/capture_panel.js', SW],
  'popup:capture-keep': ['popup/capture_panel.js', SW],
  'popup:capture-discard': ['popup/capture_panel.js', SW],

  'sw:jobs': [SW, POPUP],
  'sw:error': [SW, POPUP],
  'sw:capture': [CAPTURE, POPUP],
  'sw:capture-level': [CAPTURE, POPUP],

  'sw:run': [SW, OFFSCREEN],
  'sw:cancel': [SW, OFFSCREEN],
  'sw:release': [SW, OFFSCREEN],
  'sw:capture-start': [CAPTURE, OFFSCREEN],
  'sw:capture-stop': [CAPTURE, OFFSCREEN],

  'offscreen:stage': [OFFSCREEN, SW],
  'offscreen:progress': [OFFSCREEN, SW],
  'offscreen:alive': [OFFSCREEN, SW],
  'offscreen:finished': [OFFSCREEN, SW],
  'offscreen:failed': [OFFSCREEN, SW],
  'offscreen:idle': [OFFSCREEN, SW],
  'offscreen:capture-level': [OFFSCREEN, SW],
  'offscreen:capture-saved': [OFFSCREEN, SW],

  'offscreen:separate': [OFFSCREEN, ENGINE],

  'engine:loading': [ENGINE, OFFSCREEN],
  'engine:ready': [ENGINE, OFFSCREEN],
  'engine:progress': [ENGINE, OFFSCREEN],
  'engine:transcribing': [ENGINE, OFFSCREEN],
  'engine:done': [ENGINE, OFFSCREEN],
  'engine:failed': [ENGINE, OFFSCREEN],

  'engine:load-model': [POOL, MODEL],
  'engine:run-model': [POOL, MODEL],
  'engine:run-notes': [POOL, MODEL],
  'engine:end-profiling': ['../bench/profile.py', MODEL],

  'model:loaded': [MODEL, POOL],
  'model:result': [MODEL, POOL],
  'model:notes': [MODEL, POOL],
  'model:profiled': [MODEL, POOL],
  'model:error': [MODEL, POOL],
};

// A dispatcher's `default` branch: a type no handler knows is a bug, never silently dropped.
export function unexpected(where, message) {
  console.warn(`${where}: unexpected message type ${JSON.stringify(message?.type)}`, message);
}
