// The library: every finished job's stems, kept in the extension's OPFS so that the
// player (player/) can play them and export them again, with no download needed.
// Its format is defined here once; the offscreen page writes entries, the player
// and the offscreen page read them, tests write hour-long entries straight into it.
//
//   library/<id>/entry.json        the entry (below); written last, so an entry
//                                  without it is unfinished and swept (sweepUnfinished)
//   library/<id>/<stem>.<ext>      the stems as the folder gets them (the job's format),
//                                  and <stem>.mid where MIDI was asked
//   library/<id>/play/<stem>.wav   a 16-bit WAV per stem for the player when the job's
//                                  format is not WAV (for WAV the stems themselves play)
//   library/<id>/peaks/<stem>.peaks  the waveform overview: Int8 pairs (min, max) of
//                                  both channels per PEAKS_BIN frames, of full scale 127
//
// entry.json:
//   {version: 1, id, name, created (ms since 1970), source: 'file'|'tab', settings,
//    sampleRate, frames, stems: [...], files: [{stem, file, bytes, midi?}],
//    play: {stem: path in the entry}, peaks: {bin, files: {stem: path in the entry}}, bytes}
// `bytes` is every file of the entry on disk (entry.json aside): what the size limit counts.

import * as opfs from './opfs.js';

export const LIBRARY = 'library';
export const VERSION = 1;
export const ENTRY_FILE = 'entry.json';
// Frames per (min, max) pair: 43 pairs a second, 5 KB a minute a stem. Mirrors PEAKS_BIN of
// pycore/peaks.py, which writes the peaks files (and tells the engine's answer its value).
export const PEAKS_BIN = 1024;
export const PLAY_DIR = 'play';
export const PEAKS_DIR = 'peaks';

export const GB = 1024 ** 3;
// The Library size setting's value (pycore/settings.py: "1", "2", ... GB) in bytes.
export const limitBytes = (value) => Number(value) * GB;

export const entryDir = (id) => `${LIBRARY}/${id}`;
export const playPath = (stem) => `${PLAY_DIR}/${stem}.wav`;
export const peaksPath = (stem) => `${PEAKS_DIR}/${stem}.peaks`;

export async function readEntry(id) {
  const file = await (await opfs.fileHandle(`${entryDir(id)}/${ENTRY_FILE}`)).getFile();
  const entry = JSON.parse(await file.text());
  if (entry.version !== VERSION) throw new Error(`library entry ${id} has version ${entry.version}, not ${VERSION}`);
  return entry;
}

// entry.json is the commit: a writable's content replaces the file only at close(), the one
// atomic step OPFS offers in both browsers, so a crash never leaves half of it.
export async function writeEntry(entry) {
  const handle = await opfs.fileHandle(`${entryDir(entry.id)}/${ENTRY_FILE}`, true);
  const writable = await handle.createWritable();
  await writable.write(JSON.stringify(entry));
  await writable.close();
}

// A File of the entry (a stem, a play copy, a peaks file): backed by disk, not memory.
export async function entryFile(id, path) {
  return (await opfs.fileHandle(`${entryDir(id)}/${path}`)).getFile();
}

// Every complete entry, newest first; unreadable ones are skipped (and logged).
export async function listEntries() {
  const out = [];
  for (const name of await folders()) {
    try {
      out.push(await readEntry(name));
    } catch (e) {
      if (e?.name !== 'NotFoundError') console.warn(`library entry ${name} skipped:`, e);
    }
  }
  return out.sort((a, b) => b.created - a.created);
}

export const removeEntry = (id) => opfs.remove(entryDir(id));
export const clear = () => opfs.remove(LIBRARY);

// The ids of every folder in the library, complete entries or not.
export async function folders() {
  let root;
  try {
    root = await opfs.dir(LIBRARY);
  } catch {
    return [];
  }
  const names = [];
  for await (const [name, handle] of root.entries()) if (handle.kind === 'directory') names.push(name);
  return names;
}

// Folders of entries a crash left without entry.json: no job is running when this runs.
export async function sweepUnfinished() {
  for (const name of await folders()) {
    try {
      await readEntry(name);
    } catch {
      await opfs.remove(entryDir(name));
    }
  }
}

// The entries to remove, oldest first, so that the rest fit in `limit` bytes; the
// newest entry always stays (a song larger than the limit is kept alone, and the
// popup says it is over).
export function overLimit(entries, limit) {
  const byAge = [...entries].sort((a, b) => a.created - b.created);
  let total = byAge.reduce((sum, e) => sum + e.bytes, 0);
  const out = [];
  while (total > limit && byAge.length > 1) {
    const oldest = byAge.shift();
    total -= oldest.bytes;
    out.push(oldest);
  }
  return out;
}

// What the popup lists of an entry.
export const summary = (e) => ({ id: e.id, name: e.name, created: e.created, source: e.source, settings: e.settings, frames: e.frames, sampleRate: e.sampleRate, stems: e.stems, bytes: e.bytes });
