// Paths in the extension's Origin Private File System (OPFS), where long
// inputs and outputs live on disk instead of in memory.
//
//   inbox/<key>            songs waiting (inbox.js)
//   work/<job id>/         one job's scratch: input.wav (a decoded compressed
//                          song) and <stem>.wav (the stems, written as they come)
//
// work/ is scratch only: whatever a crash leaves there is swept when the engine
// page starts (sweepWork), since no job can be running then.

export const WORK = 'work';

export const jobDir = (id) => `${WORK}/${id}`;

const parts = (path) => path.split('/').filter(Boolean);

export async function dir(path, create = false) {
  let d = await navigator.storage.getDirectory();
  for (const part of parts(path)) d = await d.getDirectoryHandle(part, { create });
  return d;
}

export async function fileHandle(path, create = false) {
  const p = parts(path);
  const name = p.pop();
  return (await dir(p.join('/'), create)).getFileHandle(name, { create });
}

// Removes a file or a folder and everything in it; quiet when it is not there.
export async function remove(path) {
  const p = parts(path);
  const name = p.pop();
  try {
    await (await dir(p.join('/'))).removeEntry(name, { recursive: true });
  } catch {
    /* already gone */
  }
}

export const sweepWork = () => remove(WORK);

// Random access to an OPFS file through a FileSystemSyncAccessHandle (workers
// only): the interface pycore/browser.py's JsFile expects.
export async function openSync(path, { create = false, truncate = false } = {}) {
  const handle = await (await fileHandle(path, create)).createSyncAccessHandle();
  if (truncate) handle.truncate(0);
  return {
    read(pos, n) {
      const buf = new Uint8Array(n);
      const got = handle.read(buf, { at: pos });
      return got === n ? buf : buf.subarray(0, got);
    },
    write: (pos, data) => handle.write(data, { at: pos }),
    size: () => handle.getSize(),
    truncate: (n) => handle.truncate(n),
    flush: () => handle.flush(),
    close: () => handle.close(),
  };
}
