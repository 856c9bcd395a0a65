// Exports from the player, made here for the service worker to download: a library
// entry's stems (the folder again, or one stem) as blob: URLs of their files; all of
// them as one zip (client-zip: streamed to an OPFS file, ZIP64 past 4 GB, stored, so
// each stem is byte for byte the folder's); or the mix you hear, rendered by the engine
// worker (offscreen:mix -> pycore/mix.py) into an OPFS file.
//
// It takes sw:export-make (through offscreen.js) and answers offscreen:exported or
// offscreen:export-failed; it sends the engine worker offscreen:mix and hears
// engine:mixed / engine:mix-failed (lib/messages.js).

import * as library from '../lib/library.js';
import * as opfs from '../lib/opfs.js';
import { unexpected } from '../lib/messages.js';
import { makeZip } from '../vendor/zip/client-zip.js';

// engineWorker(): offscreen.js's engine (started if needed). tell(msg): to the service worker.
export function exporter({ engineWorker, tell }) {
  const made = new Map(); // request -> {urls, dir}

  const scratchDir = (request) => `${opfs.WORK}/export-${request}`;

  // A blob: URL of a file on disk; .mid typed, or Chromium names it .txt (see offscreen.js).
  function urlOf(request, file, name) {
    const typed = name.endsWith('.mid') ? file.slice(0, file.size, 'audio/midi') : file;
    const url = URL.createObjectURL(typed);
    made.get(request).urls.push(url);
    return url;
  }

  async function make(msg) {
    made.set(msg.request, { urls: [], dir: scratchDir(msg.request) });
    try {
      const entry = await library.readEntry(msg.id).catch(() => {
        throw new Error('This song is no longer in the library.');
      });
      const out = await build(entry, msg);
      await tell({ type: 'offscreen:exported', request: msg.request, name: entry.name, warnings: [], ...out });
    } catch (e) {
      console.error(e);
      await release(msg.request);
      await tell({ type: 'offscreen:export-failed', request: msg.request, error: String(e?.message ?? e) });
    }
  }

  async function build(entry, msg) {
    const { request } = msg;
    switch (msg.kind) {
      case 'folder': {
        const files = [];
        for (const f of entry.files) files.push({ file: f.file, url: urlOf(request, await library.entryFile(entry.id, f.file), f.file) });
        return { files, folder: true };
      }
      case 'stem': {
        const f = entry.files.find((x) => x.stem === msg.stem && !x.midi);
        if (!f) throw new Error(`This song has no ${msg.stem} stem.`);
        const name = `${entry.name} (${f.stem})${f.file.slice(f.file.lastIndexOf('.'))}`;
        return { files: [{ file: name, url: urlOf(request, await library.entryFile(entry.id, f.file), name) }], folder: false };
      }
      case 'zip': {
        const inputs = [];
        for (const f of entry.files) {
          const file = await library.entryFile(entry.id, f.file);
          inputs.push({ name: `${entry.name}/${f.file}`, input: file, size: file.size, lastModified: new Date(entry.created) });
        }
        const name = `${entry.name}.zip`;
        const handle = await opfs.fileHandle(`${scratchDir(request)}/${name}`, true);
        await makeZip(inputs).pipeTo(await handle.createWritable()); // closes it when done
        return { files: [{ file: name, url: urlOf(request, await handle.getFile(), name) }], folder: false };
      }
      case 'mix': {
        const { warnings, path, name } = await mix(entry, msg);
        return { files: [{ file: name, url: urlOf(request, await (await opfs.fileHandle(path)).getFile(), name) }], folder: false, warnings };
      }
      default:
        throw new Error(`unknown export ${JSON.stringify(msg.kind)}`);
    }
  }

  // The engine worker renders it; its answers come by the request's id.
  async function mix(entry, msg) {
    const schema = await (await fetch(new URL('../lib/job_settings.json', import.meta.url))).json();
    const format = schema.format.choices.find((c) => c.value === msg.format);
    if (!format) throw new Error(`unknown format ${JSON.stringify(msg.format)}`);
    const gains = {};
    for (const stem of entry.stems) gains[stem] = Math.max(0, Number(msg.gains?.[stem] ?? 0)) || 0;
    const label = String(msg.label || 'mix');
    const name = `${entry.name} (${label}).${format.extension}`;
    const dir = scratchDir(msg.request);
    await opfs.dir(dir, true);
    const path = `${dir}/${name}`;
    const inputs = Object.fromEntries(entry.stems.map((stem) => [stem, `${library.entryDir(entry.id)}/${entry.play[stem]}`]));
    const worker = engineWorker();
    const answer = await new Promise((resolve, reject) => {
      const onMessage = ({ data: m }) => {
        if (m.id !== msg.request) return;
        switch (m.type) {
          case 'engine:mixed':
            worker.removeEventListener('message', onMessage);
            resolve(m);
            break;
          case 'engine:mix-failed':
            worker.removeEventListener('message', onMessage);
            reject(new Error(`The mix could not be made: ${m.error}`));
            break;
          default:
            unexpected('offscreen exports (from the engine)', m);
        }
      };
      worker.addEventListener('message', onMessage);
      worker.postMessage({ type: 'offscreen:mix', id: msg.request, inputs, gains, format: format.value, output: path, scratchDir: dir, song: entry.name, label });
    });
    return { warnings: answer.warnings, path, name };
  }

  // The downloads are over (or failed): the URLs and the export's scratch go.
  async function release(request) {
    const done = made.get(request);
    made.delete(request);
    for (const url of done?.urls || []) URL.revokeObjectURL(url);
    await opfs.remove(scratchDir(request));
  }

  return { make, release };
}
