// The player's WAV reader: the RIFF header parsed properly (the 'fmt ' and 'data' chunks
// found wherever they are, WAVE_FORMAT_EXTENSIBLE, RF64's ds64 for files over 4 GB) and
// random access to the samples as Float32 per channel, read from the File by slices, so
// a song of any length is never read whole.

const PCM = 1;
const FLOAT = 3;
const EXTENSIBLE = 0xfffe;
const HEAD = 1 << 16; // read the first 64 KB to find the chunks; further only when a big chunk precedes 'data'

export class WavError extends Error {}

const text4 = (view, at) => String.fromCharCode(view.getUint8(at), view.getUint8(at + 1), view.getUint8(at + 2), view.getUint8(at + 3));

async function bytesAt(file, at, n) {
  return new DataView(await file.slice(at, at + n).arrayBuffer());
}

// {codec: 'pcm'|'float', bits, channels, sampleRate, blockAlign, dataOffset, frames}
export async function readHeader(file) {
  let view = await bytesAt(file, 0, Math.min(file.size, HEAD));
  if (view.byteLength < 12) throw new WavError('not a WAV file (too short)');
  const riff = text4(view, 0);
  if ((riff !== 'RIFF' && riff !== 'RF64') || text4(view, 8) !== 'WAVE') throw new WavError('not a WAV file');
  let viewStart = 0; // the file offset of view's first byte
  let fmt = null;
  let dataOffset = -1;
  let dataBytes = 0;
  let ds64Data = null;
  let at = 12;
  while (at + 8 <= file.size) {
    if (at + 8 > viewStart + view.byteLength) {
      viewStart = at;
      view = await bytesAt(file, at, Math.min(file.size - at, HEAD));
    }
    const id = text4(view, at - viewStart);
    const size = view.getUint32(at - viewStart + 4, true);
    const body = at + 8;
    if (id === 'data') {
      dataOffset = body;
      dataBytes = size;
      break;
    }
    if (id === 'fmt ' || id === 'ds64') {
      if (body + Math.min(size, 40) > viewStart + view.byteLength) {
        viewStart = body - 8;
        view = await bytesAt(file, viewStart, Math.min(file.size - viewStart, HEAD));
      }
      const o = body - viewStart;
      if (id === 'ds64') {
        // riffSize (8), dataSize (8), sampleCount (8): the 64-bit sizes of RF64
        ds64Data = view.getUint32(o + 8, true) + view.getUint32(o + 12, true) * 2 ** 32;
      } else {
        if (size < 16) throw new WavError("the WAV file's 'fmt ' chunk is too short");
        let tag = view.getUint16(o, true);
        const channels = view.getUint16(o + 2, true);
        const sampleRate = view.getUint32(o + 4, true);
        const blockAlign = view.getUint16(o + 12, true);
        const bits = view.getUint16(o + 14, true);
        if (tag === EXTENSIBLE) {
          if (size < 40) throw new WavError('a WAVE_FORMAT_EXTENSIBLE header without its sub-format');
          tag = view.getUint16(o + 24, true); // the sub-format GUID starts with the format tag
        }
        if (tag !== PCM && tag !== FLOAT) throw new WavError(`WAV format ${tag} is not PCM or float`);
        fmt = { codec: tag === FLOAT ? 'float' : 'pcm', bits, channels, sampleRate, blockAlign };
      }
    }
    at = body + size + (size & 1); // chunks are padded to an even size
  }
  if (!fmt) throw new WavError("the WAV file has no 'fmt ' chunk");
  if (dataOffset < 0) throw new WavError("the WAV file has no 'data' chunk");
  const supported = fmt.codec === 'pcm' ? [16, 24, 32].includes(fmt.bits) : [32, 64].includes(fmt.bits);
  if (!supported) throw new WavError(`${fmt.bits}-bit ${fmt.codec} WAV is not supported`);
  if (fmt.channels < 1 || fmt.channels > 2) throw new WavError(`${fmt.channels} channels: the player plays mono or stereo`);
  if (fmt.blockAlign !== (fmt.bits / 8) * fmt.channels) throw new WavError('the WAV file has an inconsistent block size');
  if (ds64Data !== null && dataBytes === 0xffffffff) dataBytes = ds64Data;
  // A writer that could not seek back leaves 0 or 0xFFFFFFFF: the data runs to the end of the file.
  const available = file.size - dataOffset;
  if (dataBytes === 0 || dataBytes === 0xffffffff || dataBytes > available) dataBytes = available;
  return { ...fmt, dataOffset, frames: Math.floor(dataBytes / fmt.blockAlign) };
}

// Frames [start, end) of a WAV file as [left, right] Float32Arrays (mono doubled).
export class WavReader {
  constructor(file, header) {
    this.file = file;
    this.h = header;
    this.frames = header.frames;
  }

  static async open(file) {
    return new WavReader(file, await readHeader(file));
  }

  // Always end - start frames: silence past the file's end (stems of a song may differ by a few frames).
  async read(start, end) {
    const h = this.h;
    const n = Math.max(0, end - start);
    const a = Math.max(0, Math.min(start, h.frames));
    const b = Math.max(a, Math.min(end, h.frames));
    const buf = await this.file.slice(h.dataOffset + a * h.blockAlign, h.dataOffset + b * h.blockAlign).arrayBuffer();
    const got = toFloat(buf, b - a, h);
    if (b - a === n) return got;
    return got.map((c) => {
      const padded = new Float32Array(n);
      padded.set(c, a - start);
      return padded;
    });
  }
}

export function toFloat(buf, n, h) {
  const ch = h.channels;
  const left = new Float32Array(n);
  const right = ch === 1 ? null : new Float32Array(n);
  const view = new DataView(buf);
  const bytes = new Uint8Array(buf);
  const total = n * ch;
  const out = (i, v) => {
    if (ch === 1) left[i] = v;
    else if (i & 1) right[i >> 1] = v;
    else left[i >> 1] = v;
  };
  if (h.codec === 'pcm' && h.bits === 16) {
    const s = new Int16Array(buf, 0, total); // the slice is a fresh buffer: aligned
    if (ch === 2) {
      for (let i = 0, j = 0; i < n; i++, j += 2) {
        left[i] = s[j] / 32768;
        right[i] = s[j + 1] / 32768;
      }
    } else for (let i = 0; i < n; i++) left[i] = s[i] / 32768;
  } else if (h.codec === 'pcm' && h.bits === 24) {
    for (let i = 0, b = 0; i < total; i++, b += 3) {
      const v = (bytes[b] | (bytes[b + 1] << 8) | (bytes[b + 2] << 16)) << 8; // sign from bit 31
      out(i, (v >> 8) / 8388608);
    }
  } else if (h.codec === 'pcm' && h.bits === 32) {
    for (let i = 0; i < total; i++) out(i, view.getInt32(i * 4, true) / 2147483648);
  } else if (h.bits === 32) {
    const s = new Float32Array(buf, 0, total);
    if (ch === 2) {
      for (let i = 0, j = 0; i < n; i++, j += 2) {
        left[i] = s[j];
        right[i] = s[j + 1];
      }
    } else left.set(s);
  } else {
    for (let i = 0; i < total; i++) out(i, view.getFloat64(i * 8, true));
  }
  return [left, right ?? left.slice()];
}
