// The inbox: songs waiting to be separated, kept in the extension's Origin
// Private File System (OPFS).
//
// Why OPFS: the popup picks the File, but it may close at any moment and it
// talks only to the service worker, whose messages carry JSON, not Blobs. Every
// extension page (popup, offscreen document) and the service worker share one
// origin, hence one OPFS: the popup streams the File into it (no copy in
// memory) and sends the service worker only the key; the offscreen document
// opens the file by that key. IndexedDB would work too, but OPFS streams
// in and out, and is where long outputs will be written later.

const DIR = 'inbox';

async function folder() {
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle(DIR, { create: true });
}

// Copies `file` into the inbox; returns its key.
export async function put(file) {
  const key = crypto.randomUUID();
  const handle = await (await folder()).getFileHandle(key, { create: true });
  const writable = await handle.createWritable();
  await file.stream().pipeTo(writable); // closes the writable when done
  return key;
}

export async function get(key) {
  const handle = await (await folder()).getFileHandle(key);
  return handle.getFile();
}

export async function remove(key) {
  try {
    await (await folder()).removeEntry(key);
  } catch {
    /* already gone */
  }
}

export async function keys() {
  const out = [];
  for await (const name of (await folder()).keys()) out.push(name);
  return out;
}
