// Whether a typed array can be handed to another thread as it is: only a whole,
// unshared buffer can be transferred; a view into a larger or shared one must be copied.
export function transferableAsIs(a) {
  const shared = typeof SharedArrayBuffer === 'function' && a.buffer instanceof SharedArrayBuffer; // absent without isolation
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && !shared;
}
