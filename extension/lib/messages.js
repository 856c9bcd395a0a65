// The message catalogue: every message that crosses a context boundary, with its
// fields, the module that sends it and the module that handles it. A type is named
// `<sender>:<what>`, so the same event gets a new name at each hop (the engine
// worker's `engine:progress` becomes the offscreen page's `offscreen:progress`, which
// the service worker folds into `sw:jobs` for the popup).
//
//   player ──port 'player'──┐
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
/** @typedef {{type: 'popup:listen', id: string}} PopupListen  open the player on a library entry (its id is the job's) */
/** @typedef {{type: 'popup:library-remove', id: string}} PopupLibraryRemove */
/** @typedef {{type: 'popup:library-clear'}} PopupLibraryClear  every byte of the library goes */
/** @typedef {{type: 'popup:library-limit', limit: string}} PopupLibraryLimit  the Library size setting changed (GB, its schema value): trim to it */

// ---------------------------------------------------------------- player → service worker (port 'player')
/** @typedef {{kind: 'folder'|'stem'|'zip'|'mix', stem?: string, gains?: Object<string, number>, format?: string, label?: string}} ExportAsk  gains: linear, as heard (0: muted or not soloed); label: the mix's name ("without vocals") */
/** @typedef {{type: 'player:export', request: string, id: string} & ExportAsk} PlayerExport */

// ---------------------------------------------------------------- service worker → player (port 'player')
/** @typedef {{type: 'sw:export', request: string, state: 'working'|'done'|'failed', what?: string, error?: string}} SwExport  what: where it was saved, in words */

// ---------------------------------------------------------------- service worker → popup (port 'popup')
/** @typedef {{type: 'sw:jobs', jobs: object[], now: number}} SwJobs  the whole job list, after every change */
/** @typedef {{type: 'sw:error', error: string, about: string}} SwError  a popup request failed (`about`: its type) */
/** @typedef {{type: 'sw:capture', capture: object, maxSeconds: number}} SwCapture  the tab capture's state */
/** @typedef {{type: 'sw:capture-level', level: number, seconds: number}} SwCaptureLevel  the recording's peak level */
/** @typedef {{entries: object[], bytes: number, removed: {name: string, bytes: number}[]}} LibraryState  entries: lib/library.js summary(); removed: just now, to stay under the size limit */
/** @typedef {{type: 'sw:library', library: LibraryState, limit: number, notice: string}} SwLibrary  limit: bytes; notice: what the size limit removed last, in words */

// ---------------------------------------------------------------- service worker → offscreen page (runtime message)
/** @typedef {{gpu: boolean, why?: string, diagnostics?: {software?: boolean, agreementDb?: number, fail?: 'load'|'lost'|'nan'}}} GpuChoice  what the engine may do with the GPU (service_worker.js gpuChoice) */
/** @typedef {{type: 'sw:run', job: {id: string, key: string, name: string, settings: JobSettings, gpu: GpuChoice}}} SwRun */
/** @typedef {{type: 'sw:cancel', id: string}} SwCancel */
/** @typedef {{type: 'sw:release', id: string}} SwRelease  the stems are saved (or dropped): free their blob: URLs (the library keeps the files) */
/** @typedef {{type: 'sw:library-list', limit?: number}} SwLibraryList  answered with a LibraryState, the oldest entries removed first to fit `limit` bytes when given */
/** @typedef {{type: 'sw:library-remove', id: string}} SwLibraryRemove  answered with a LibraryState */
/** @typedef {{type: 'sw:library-clear'}} SwLibraryClear  answered with a LibraryState */
/** @typedef {{type: 'sw:export-make', request: string, id: string} & ExportAsk} SwExportMake  answered at once; offscreen:exported follows */
/** @typedef {{type: 'sw:export-release', request: string}} SwExportRelease  the export's downloads are over: free its files */
/** @typedef {{type: 'sw:capture-start', streamId: string, maxSeconds: number}} SwCaptureStart */
/** @typedef {{type: 'sw:capture-stop', reason: string}} SwCaptureStop */

// ---------------------------------------------------------------- offscreen page → service worker (runtime message)
/** @typedef {{type: 'offscreen:stage', id: string, stage: 'decoding'|'engine'|'separating'|'transcribing', detail?: string, done?: number, total?: number, backend?: string, device?: string}} OffscreenStage */
/** @typedef {{type: 'offscreen:progress', id: string, done: number, total: number, seconds: number, backend: string, device: string}} OffscreenProgress */
/** @typedef {{type: 'offscreen:alive', id: string}} OffscreenAlive  every few seconds while a job runs: keeps Firefox's event page (and Chromium's service worker) from being unloaded */
/** @typedef {{type: 'offscreen:finished', id: string, files: {stem: string, url: string, bytes: number}[], result: object, timings: object, library: LibraryState}} OffscreenFinished  url: a blob: URL of the stem's file in the library */
/** @typedef {{type: 'offscreen:exported', request: string, name: string, files: {file: string, url: string}[], folder: boolean, warnings: string[]}} OffscreenExported  name: the song; folder: the files go in Demixer/<song>/, else beside it */
/** @typedef {{type: 'offscreen:export-failed', request: string, error: string}} OffscreenExportFailed */
/** @typedef {{type: 'offscreen:failed', id: string, error: string, cancelled: boolean}} OffscreenFailed */
/** @typedef {{type: 'offscreen:idle'}} OffscreenIdle  the engine was let go after a while without work: the page may close */
/** @typedef {{type: 'offscreen:capture-level', level: number, seconds: number}} OffscreenCaptureLevel */
/** @typedef {{type: 'offscreen:capture-saved', key?: string, seconds?: number, captured?: number, peak?: number, reason?: string, error?: string}} OffscreenCaptureSaved  the recording ended, whatever ended it */

// ---------------------------------------------------------------- offscreen page → engine worker
/** @typedef {{type: 'offscreen:separate', id: string, input: string, outDir: string, scratchDir: string, settings: JobSettings, gpu: GpuChoice, song: string, cancel: Int32Array}} OffscreenSeparate  input, outDir (the library entry's folder), scratchDir: OPFS paths; song: for the stems' tags; cancel: set to 1 to cancel (shared memory where the page is cross-origin isolated) */
/** @typedef {{type: 'offscreen:mix', id: string, inputs: Object<string, string>, gains: Object<string, number>, format: string, output: string, scratchDir: string, song: string, label: string}} OffscreenMix  the mix you hear: inputs (OPFS WAV paths per stem) times gains, summed, into output (OPFS) */

// ---------------------------------------------------------------- engine worker → offscreen page
/** @typedef {{type: 'engine:loading', id: string, what: string}} EngineLoading  a cold-start step */
/** @typedef {{type: 'engine:ready', id: string, backend: string, device: string, timings: object}} EngineReady  device: "GPU: <vendor architecture>" or "CPU: N threads" */
/** @typedef {{type: 'engine:progress', id: string, done: number, total: number, seconds: number, model: number, backend: string, device: string}} EngineProgress  one model segment finished */
/** @typedef {{type: 'engine:transcribing', id: string, stem: string}} EngineTranscribing  the stems are written; now this one's notes (MIDI) */
/** @typedef {{type: 'engine:done', id: string, result: {stems: string[], frames: number, warnings: string[], files: object[]}, timings: object}} EngineDone */
/** @typedef {{type: 'engine:failed', id: string, error: string, cancelled: boolean, input: boolean}} EngineFailed  input: the file, not the engine, is at fault */
/** @typedef {{type: 'engine:mixed', id: string, frames: number, warnings: string[]}} EngineMixed  the mix is written (id: the export's request) */
/** @typedef {{type: 'engine:mix-failed', id: string, error: string}} EngineMixFailed */

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
const PLAYER = 'player/player_export.js';
const EXPORTS = 'offscreen/exports.js';

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
  'popup:listen': [POPUP, SW],
  'popup:library-remove': [POPUP, SW],
  'popup:library-clear': [POPUP, SW],
  'popup:library-limit': [POPUP, SW],

  'player:export': [PLAYER, SW],
  'sw:export': [SW, PLAYER],

  'sw:jobs': [SW, POPUP],
  'sw:error': [SW, POPUP],
  'sw:capture': [CAPTURE, POPUP],
  'sw:capture-level': [CAPTURE, POPUP],
  'sw:library': [SW, POPUP],

  'sw:run': [SW, OFFSCREEN],
  'sw:cancel': [SW, OFFSCREEN],
  'sw:release': [SW, OFFSCREEN],
  'sw:capture-start': [CAPTURE, OFFSCREEN],
  'sw:capture-stop': [CAPTURE, OFFSCREEN],
  'sw:library-list': [SW, OFFSCREEN],
  'sw:library-remove': [SW, OFFSCREEN],
  'sw:export-make': [SW, OFFSCREEN],
  'sw:library-clear': [SW, OFFSCREEN],
  'sw:export-release': [SW, OFFSCREEN],

  'offscreen:stage': [OFFSCREEN, SW],
  'offscreen:progress': [OFFSCREEN, SW],
  'offscreen:alive': [OFFSCREEN, SW],
  'offscreen:finished': [OFFSCREEN, SW],
  'offscreen:failed': [OFFSCREEN, SW],
  'offscreen:idle': [OFFSCREEN, SW],
  'offscreen:capture-level': [OFFSCREEN, SW],
  'offscreen:capture-saved': [OFFSCREEN, SW],
  'offscreen:exported': [EXPORTS, SW],
  'offscreen:export-failed': [EXPORTS, SW],

  'offscreen:separate': [OFFSCREEN, ENGINE],
  'offscreen:mix': [EXPORTS, ENGINE],

  'engine:loading': [ENGINE, OFFSCREEN],
  'engine:ready': [ENGINE, OFFSCREEN],
  'engine:progress': [ENGINE, OFFSCREEN],
  'engine:transcribing': [ENGINE, OFFSCREEN],
  'engine:done': [ENGINE, OFFSCREEN],
  'engine:failed': [ENGINE, OFFSCREEN],
  'engine:mixed': [ENGINE, EXPORTS],
  'engine:mix-failed': [ENGINE, EXPORTS],

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
