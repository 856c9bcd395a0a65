// The one module that touches the browser's extension APIs (chrome.* here;
// Firefox's browser.* later). Everything else imports from it.
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

// The page that hosts the engine. Chrome: an offscreen document (one at a time).
// Firefox has none; its event page has a DOM and will host the engine itself.
export const enginePage = {
  async isOpen(path) {
    const url = ext().runtime.getURL(path);
    const contexts = await ext().runtime.getContexts({ contextTypes: ['OFFSCREEN_DOCUMENT'], documentUrls: [url] });
    return contexts.length > 0;
  },
  open: (path) =>
    ext().offscreen.createDocument({
      url: path,
      // WORKERS: the engine runs in a worker started there. BLOBS: the finished
      // stems become blob: URLs there, for chrome.downloads in the service worker.
      reasons: ['WORKERS', 'BLOBS'],
      justification:
        'Runs the stem separation engine (Pyodide and onnxruntime-web in a worker) and creates blob URLs of the finished stems for download.',
    }),
  close: () => ext().offscreen.closeDocument(),
};
