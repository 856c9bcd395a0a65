// Saving a finished job's stems: Downloads/Demixer/<song>/<stem file>, from the blob:
// URLs the offscreen page made of their OPFS files. It picks a folder name nobody
// used (the one folder-name rule, lib/folder_name.js, then "<song> (2)", ...), starts
// the downloads, and follows them to the end (reconcile) to finish or fail the job.
//
// Built like capture_control.js: a factory given what it needs from the service worker.
//   downloads: lib/platform.js's     storage: lib/platform.js's
//   update(fn): the service worker's exclusive change of the job list
//   fail(id, error): fails a job     release(id): tells the offscreen page the stems can go

import { folderName } from '../lib/folder_name.js';
import * as jobs from './jobs.js';

export const ROOT_FOLDER = 'Demixer';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function saver({ downloads, storage, update, fail, release }) {
  // Folders already used under Downloads/Demixer/, as far as the browser's download
  // history knows, plus those of jobs saving right now. The first file's final name
  // catches folders made outside the history (see save).
  async function usedFolders(exceptJob) {
    const used = new Set();
    const items = await downloads.search({ filenameRegex: `[/\\\\]${ROOT_FOLDER}[/\\\\][^/\\\\]+[/\\\\][^/\\\\]+$`, limit: 0 });
    for (const item of items) {
      const parts = item.filename.split(/[/\\]/);
      if (parts[parts.length - 3] === ROOT_FOLDER) used.add(parts[parts.length - 2].toLowerCase());
    }
    for (const j of await storage.get('jobs', [])) if (j.folder && j.id !== exceptJob) used.add(j.folder.toLowerCase());
    return used;
  }

  async function finalName(downloadId) {
    for (let i = 0; i < 100; i++) {
      const [item] = await downloads.search({ id: downloadId });
      if (!item) return null;
      if (item.filename) return item.filename;
      await sleep(50);
    }
    return null;
  }

  // Starts the downloads of files [{stem, file, url}] into a new Demixer/<song>/ folder:
  // {folder, list: [{stem, file, id, state}]}. exceptJob: the job saving them, if any.
  async function startFolder(name, files, exceptJob) {
    const song = folderName(name);
    const used = await usedFolders(exceptJob);
    const [first, ...rest] = files;
    let folder = null;
    let firstId = null;
    for (let n = 1; n < 1000 && firstId === null; n++) {
      const candidate = n === 1 ? song : `${song} (${n})`;
      if (used.has(candidate.toLowerCase())) continue;
      const d = await downloads.start({ url: first.url, filename: `${ROOT_FOLDER}/${candidate}/${first.file}` });
      const parts = ((await finalName(d)) || '').split(/[/\\]/);
      const [dir, base] = [parts[parts.length - 2], parts[parts.length - 1]];
      if (dir === candidate && base !== first.file && base.startsWith(first.stem) && /^ ?\(\d+\)/.test(base.slice(first.stem.length))) {
        // The browser renamed the file ("drums (1).wav" in Chromium, "drums(1).wav" in
        // Firefox): the folder exists, unknown to its download history. Take it back and
        // try the next folder name.
        await downloads.discard(d);
        used.add(candidate.toLowerCase());
      } else {
        folder = dir === candidate ? candidate : dir || candidate; // (another extension may rename downloads)
        firstId = d;
      }
    }
    if (firstId === null) throw new Error('no free folder name');
    const list = [{ stem: first.stem, file: first.file, id: firstId, state: 'in_progress' }];
    for (const f of rest) {
      const d = await downloads.start({ url: f.url, filename: `${ROOT_FOLDER}/${folder}/${f.file}` });
      list.push({ stem: f.stem, file: f.file, id: d, state: 'in_progress' });
    }
    return { folder, list };
  }

  // files: [{stem, file, url}] from offscreen:finished.
  async function save(id, files) {
    try {
      const job = jobs.byId(await storage.get('jobs', []), id);
      if (!job) return;
      const { folder, list } = await startFolder(job.name, files, id);
      const keep = await update((all) => jobs.saving(all, id, folder, list));
      if (!keep) {
        for (const d of list) await downloads.discard(d.id); // cancelled meanwhile
        return;
      }
      await reconcile(id);
    } catch (e) {
      console.error(e);
      await fail(id, `The stems could not be saved: ${e?.message ?? e}`);
      await release(id);
    }
  }

  // Brings a saving job's downloads up to date; finishes the job when all are complete.
  async function reconcile(id) {
    const job = jobs.byId(await storage.get('jobs', []), id);
    if (!job?.downloads) return;
    const states = new Map();
    for (const d of job.downloads) {
      const [item] = await downloads.search({ id: d.id });
      states.set(d.id, item ? { state: item.state, error: item.error } : { state: 'interrupted', error: 'FILE_MISSING' });
    }
    const outcome = await update((all) => jobs.downloadsChanged(all, id, states, Date.now()));
    if (outcome === 'failed') for (const d of job.downloads) await downloads.discard(d.id);
    if (outcome) await release(id);
  }

  // A download changed: the saving job it belongs to, if any, is brought up to date.
  async function onDownloadChanged(delta) {
    if (!delta.state && !delta.error) return;
    const all = await storage.get('jobs', []);
    const job = all.find((j) => j.status === 'saving' && j.downloads?.some((d) => d.id === delta.id));
    if (job) await reconcile(job.id);
  }

  // A cancelled saving job: its downloads and their files go.
  async function discard(downloadIds) {
    for (const d of downloadIds) await downloads.discard(d);
  }

  // Downloads ids' outcome, waited for: null when all completed, else the first error in words.
  async function settled(ids, timeoutMs = 10 * 60 * 1000) {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const items = await Promise.all(ids.map(async (d) => (await downloads.search({ id: d }))[0]));
      const broken = items.find((item) => !item || item.state === 'interrupted');
      if (broken) return `the download was interrupted (${broken?.error || 'its file is gone'})`;
      if (items.every((item) => item.state === 'complete')) return null;
      await sleep(250);
    }
    return 'the download did not finish in time';
  }

  return { save, startFolder, settled, onDownloadChanged, discard };
}
