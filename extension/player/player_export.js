// The player's export buttons talk to the service worker over a runtime port named
// 'player' (lib/messages.js: PlayerExport out, SwExport back):
//   out:  player:export {request, id, kind, stem?, gains?, format?, label?}
//         kind: 'folder' (every stem, to Downloads/Demixer/<song>/), 'stem' (one: `stem`),
//               'zip' (every stem in one zip), 'mix' (the mix heard now: `gains`, `format`, `label`)
//         gains: {stem: linear gain}, 0 where a stem is muted or another is soloed
//   back: sw:export {request, state: 'working'|'done'|'failed', what?, error?}, shown in the
//         status line. The service worker tells every player tab: answers to requests of
//         other tabs are not ours.

import { unexpected } from '../lib/messages.js';
import { runtime } from '../lib/platform.js';

let entryId = null;
let show = () => {};
let port = null;
const asked = new Map(); // request -> what it saves, in words

// id: the library entry; status(text, state): shows a line ('working'|'done'|'failed').
export function initExport(id, status) {
  entryId = id;
  show = status;
}

function connect() {
  const p = runtime.connect('player');
  p.onMessage.addListener(onMessage);
  p.onDisconnect.addListener(() => {
    if (port === p) port = null;
  });
  return p;
}

function onMessage(message) {
  switch (message?.type) {
    case 'sw:export': {
      const what = asked.get(message.request);
      if (what === undefined) return; // another tab's
      if (message.state === 'working') show(`Saving ${what}…`, 'working');
      else if (message.state === 'done') show(message.what ? `Saved ${message.what} (${what}).` : `Saved ${what}.`, 'done'); // what: "to Downloads/…"
      else show(message.error ?? `Could not save ${what}.`, 'failed');
      if (message.state !== 'working') asked.delete(message.request);
      break;
    }
    default:
      unexpected('player', message);
  }
}

const WORDS = { folder: 'the stems', zip: 'the stems as a zip', mix: 'the mix' };

export function requestExport({ kind, stem, gains, format, label }) {
  const request = crypto.randomUUID();
  const message = { type: 'player:export', request, id: entryId, kind };
  if (stem !== undefined) message.stem = stem;
  if (gains !== undefined) message.gains = gains;
  if (format !== undefined) message.format = format;
  if (label !== undefined) message.label = label;
  const what = kind === 'stem' ? stem : kind === 'mix' && label ? `the mix, ${label}` : WORDS[kind];
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      port ??= connect();
      port.postMessage(message);
      asked.set(request, what);
      show(`Asking to save ${what}…`, 'working');
      return message;
    } catch {
      port = null; // the service worker went away since: connect again, once
    }
  }
  show('Could not reach the extension to save: reload this page.', 'failed');
  return message;
}
