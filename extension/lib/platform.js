// The one module that touches the browser's extension APIs (chrome.* in
// Chromium, browser.* in Firefox) and the one place where the two differ.
// Everything else imports from it and asks about capabilities (`features`),
// never about the browser.
//
// Lazy: each function looks the namespace up when called, because the
// offscreen document exposes only chrome.runtime.

const ext = () => globalThis.browser ?? globalThis.chrome;

export const runtime = {
  url: (path) => ext().runtime.getURL(path),

  // Resolves with the receiver's answer; rejects when nobody listens.
  send: (message) => ext().runtime.sendMessage(message),

  // handler(message, sender) may return a value or a promise (its result is the answer);
  // return undefined to leave the message to other listeners.
  onMessage(handler) {
    ext().runtime.onMessage.addListener((message, sender, sendResponse) => {
      let answer;
      try {
        answer = handler(message, sender);
      } catch (e) {
        sendResponse({ error: String(e?.message ?? e) });
        return false;
      }
      if (answer === undefined) return false;
      Promise.resolve(answer).then(sendResponse, (e) => sendResponse({ error: String(e?.message ?? e) }));
      return true; // the answer comes asynchronously
    });
  },

  connect: (name) => ext().runtime.connect({ name }),
  onConnect: (handler) => ext().runtime.onConnect.addListener(handler),
  onStartup: (handler) => ext().runtime.onStartup.addListener(handler),
  onInstalled: (handler) => ext().runtime.onInstalled.addListener(handler),
};

export const storage = {
  async get(key, fallback) {
    const got = await ext().storage.local.get(key);
    return got[key] ?? fallback;
  },
  set: (key, value) => ext().storage.local.set({ [key]: value }),
};

// Cleared when the browser restarts (or the extension is reloaded), unlike
// storage.local: a marker here tells a fresh browser session from a service
// worker that was merely stopped and started again.
export const sessionStorage = {
  async get(key, fallback) {
    const got = await ext().storage.session.get(key);
    return got[key] ?? fallback;
  },
  set: (key, value) => ext().storage.session.set({ [key]: value }),
};

export const downloads = {
  // Returns the download id.
  start: ({ url, filename }) => ext().downloads.download({ url, filename, conflictAction: 'uniquify', saveAs: false }),
  search: (query) => ext().downloads.search(query),
  show: (id) => ext().downloads.show(id),
  async discard(id) {
    // Stop it, delete its file, forget it: nothing of a cancelled job stays on disk.
    const d = ext().downloads;
    await d.cancel(id).catch(() => {});
    await d.removeFile(id).catch(() => {});
    await d.erase({ id }).catch(() => {});
  },
  onChanged: (handler) => ext().downloads.onChanged.addListener(handler),
};

// What this browser lets the extension do, for the views to adapt to.
export const features = {
  // Firefox offers extensions no tab capture.
  get tabCapture() {
    return typeof ext().tabCapture?.getMediaStreamId === 'function';
  },
  // Whether the browser can encode a format of the schema (lib/job_settings.json): the
  // WebAssembly encoders (WAV, FLAC, MP3) run everywhere; Opus needs WebCodecs' AudioEncoder.
  async encodes(format) {
    if (format.codec !== 'opus') return true;
    if (typeof globalThis.AudioEncoder === 'undefined') return false;
    const config = { codec: 'opus', sampleRate: format.rate, numberOfChannels: 2, bitrate: format.bitrate * 1000 };
    return (await globalThis.AudioEncoder.isConfigSupported(config).catch(() => ({ supported: false }))).supported;
  },
};

// The page that hosts the engine (offscreen.html: decoding, the engine's worker,
// blob: URLs of the stems), opened and closed by the background.
//   Chromium: an offscreen document (one at a time).
//   Firefox: no offscreen documents, but the background is an event page with
//   a DOM, so the engine's page is an iframe inside it. An iframe rather than
//   running the engine in the background's own context: runtime messages are
//   not delivered to the context that sent them, so the very same message
//   protocol works unchanged between two frames, and closing the engine is
//   just removing the frame. It lives as long as the event page, which the
//   engine's messages keep awake while it works (see offscreen.js).
const hasOffscreen = () => typeof ext().offscreen?.createDocument === 'function';
const engineFrame = () => globalThis.document?.querySelector('iframe[data-demixer-engine]') ?? null;

export const enginePage = {
  async isOpen(path) {
    if (!hasOffscreen()) return engineFrame() !== null;
    const url = ext().runtime.getURL(path);
    const contexts = await ext().runtime.getContexts({ contextTypes: ['OFFSCREEN_DOCUMENT'], documentUrls: [url] });
    return contexts.length > 0;
  },
  open(path) {
    if (!hasOffscreen()) {
      return new Promise((resolve, reject) => {
        const frame = document.createElement('iframe');
        frame.dataset.demixerEngine = '';
        frame.addEventListener('load', () => resolve(), { once: true });
        frame.addEventListener('error', () => reject(new Error('the engine page did not load')), { once: true });
        frame.src = ext().runtime.getURL(path);
        document.body.append(frame);
      });
    }
    return ext().offscreen.createDocument({
      url: ext().runtime.getURL(path),
      // WORKERS: the engine runs in a worker started there. BLOBS: the finished
      // stems become blob: URLs there, for chrome.downloads in the service worker.
      // USER_MEDIA: a tab capture records there (one document, all its reasons).
      reasons: ['WORKERS', 'BLOBS', 'USER_MEDIA'],
      justification:
        'Runs the stem separation engine (Pyodide and onnxruntime-web in a worker), records the audio of a captured tab, and creates blob URLs of the finished stems for download.',
    });
  },
  async close() {
    if (!hasOffscreen()) engineFrame()?.remove();
    else await ext().offscreen.closeDocument();
  },
};

// ------------------------------------------------------------------ tab capture (Chromium only)

export const tabs = {
  // The tab the popup acts on: the active tab of its window; when the popup was
  // opened as a tab of its own, the tab it was opened from. The title is there
  // when the user invoked the extension on that tab (activeTab), else undefined.
  async target() {
    const self = await ext().tabs.getCurrent(); // undefined in the toolbar popup
    if (self) {
      if (self.openerTabId === undefined) return null;
      return ext().tabs.get(self.openerTabId);
    }
    const [tab] = await ext().tabs.query({ active: true, currentWindow: true });
    return tab ?? null;
  },
  // A tab of the extension's own page (the player), focused when one is open already.
  async openPage(path) {
    const url = ext().runtime.getURL(path);
    const [open] = await ext().tabs.query({ url });
    if (open) {
      await ext().tabs.update(open.id, { active: true });
      await ext().windows?.update(open.windowId, { focused: true }).catch(() => {});
      return open.id;
    }
    return (await ext().tabs.create({ url })).id;
  },
  onRemoved: (handler) => ext().tabs.onRemoved.addListener(handler),
  onUpdated: (handler) => ext().tabs.onUpdated.addListener(handler),
};

export const tabCapture = {
  available: () => Boolean(ext().tabCapture?.getMediaStreamId),
  // An id for getUserMedia in the offscreen document (Chrome 116+: an id made
  // without consumerTabId works in any of the extension's pages).
  streamId: (tabId) => ext().tabCapture.getMediaStreamId({ targetTabId: tabId }),
};

export const badge = {
  async set(text, color) {
    await ext().action.setBadgeText({ text });
    if (color) await ext().action.setBadgeBackgroundColor({ color });
  },
};
