// MP3 in pieces: a demuxer for MPEG audio Layer III frames and WebCodecs'
// AudioDecoder, so that an hour-long MP3 never sits decoded in memory.
//
// decodeAudioData has no streaming form, and neither onnxruntime-web nor
// Pyodide brings a demuxer, but MP3 needs little: a file is an optional ID3v2
// tag, then frames whose 4-byte headers give their length, then maybe an ID3v1
// or APE tag. The first frame may be a Xing/Info frame (no audio) whose LAME
// extension gives the encoder delay and padding; they are trimmed as
// decodeAudioData trims them, so the stems have the song's exact length.

const BITRATES = {
  1: [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320], // MPEG-1 Layer III
  2: [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160], // MPEG-2 and 2.5
};
const RATES = { 3: [44100, 48000, 32000], 2: [22050, 24000, 16000], 0: [11025, 12000, 8000] };
const DECODER_DELAY = 529; // samples every MP3 decoder adds in front
const PIECE = 1 << 20;
const MAX_QUEUE = 64;

// The header at b[i..i+3] -> {length, rate, channels, samples, sideInfo, protected}, or null.
export function frameHeader(b, i) {
  if (i + 4 > b.length || b[i] !== 0xff || (b[i + 1] & 0xe0) !== 0xe0) return null;
  const version = (b[i + 1] >> 3) & 3; // 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5, 1: reserved
  const layer = (b[i + 1] >> 1) & 3; // 1: Layer III
  const bitrateIndex = b[i + 2] >> 4;
  const rateIndex = (b[i + 2] >> 2) & 3;
  if (version === 1 || layer !== 1 || bitrateIndex === 0 || bitrateIndex === 15 || rateIndex === 3) return null;
  const mpeg1 = version === 3;
  const bitrate = BITRATES[mpeg1 ? 1 : 2][bitrateIndex] * 1000;
  const rate = RATES[version][rateIndex];
  const padding = (b[i + 2] >> 1) & 1;
  const mono = b[i + 3] >> 6 === 3;
  return {
    length: Math.floor(((mpeg1 ? 144 : 72) * bitrate) / rate) + padding,
    rate,
    channels: mono ? 1 : 2,
    samples: mpeg1 ? 1152 : 576,
    sideInfo: mpeg1 ? (mono ? 17 : 32) : mono ? 9 : 17,
    protected: (b[i + 1] & 1) === 0,
    version,
  };
}

function id3v2Length(b) {
  if (b.length < 10 || b[0] !== 0x49 || b[1] !== 0x44 || b[2] !== 0x33) return 0; // "ID3"
  const size = ((b[6] & 0x7f) << 21) | ((b[7] & 0x7f) << 14) | ((b[8] & 0x7f) << 7) | (b[9] & 0x7f);
  return 10 + size + (b[5] & 0x10 ? 10 : 0);
}

// Xing/Info frame -> {delay, padding} (zeros without a LAME extension), else null.
function infoTag(frame, h) {
  const at = 4 + h.sideInfo + (h.protected ? 2 : 0);
  const tag = String.fromCharCode(...frame.subarray(at, at + 4));
  if (tag !== 'Xing' && tag !== 'Info') return String.fromCharCode(...frame.subarray(36, 40)) === 'VBRI' ? { delay: 0, padding: 0 } : null;
  const flags = (frame[at + 7] | (frame[at + 6] << 8)) >>> 0;
  let p = at + 8 + (flags & 1 ? 4 : 0) + (flags & 2 ? 4 : 0) + (flags & 4 ? 100 : 0) + (flags & 8 ? 4 : 0);
  if (p + 24 > frame.length || !/^[A-Za-z]{4}/.test(String.fromCharCode(...frame.subarray(p, p + 4)))) return { delay: 0, padding: 0 };
  p += 21; // encoder string (9), revision, lowpass, replay gain (8), flags, bitrate
  return { delay: (frame[p] << 4) | (frame[p + 1] >> 4), padding: ((frame[p + 1] & 0x0f) << 8) | frame[p + 2] };
}

// The file's frames, in order, read in pieces: yields [header, bytes].
async function* frames(file) {
  let buf = new Uint8Array(0);
  let offset = 0; // file position of buf[0]
  let locked = false; // the last frame ended where this one starts
  let first = null;
  const fill = async (need) => {
    while (buf.length < need && offset + buf.length < file.size) {
      const start = offset + buf.length;
      const piece = new Uint8Array(await file.slice(start, Math.min(file.size, start + PIECE)).arrayBuffer());
      const joined = new Uint8Array(buf.length + piece.length);
      joined.set(buf);
      joined.set(piece, buf.length);
      buf = joined;
    }
  };
  await fill(10);
  let skip = 0;
  for (let n; (n = id3v2Length(buf.subarray(skip))) > 0; ) {
    skip += n;
    await fill(skip + 10);
  }
  let i = skip;
  for (;;) {
    if (i > PIECE) {
      buf = buf.slice(i); // drop what was consumed
      offset += i;
      i = 0;
    }
    await fill(i + 4);
    if (i + 4 > buf.length) return;
    const h = frameHeader(buf, i);
    const fits = h && (!first || (h.rate === first.rate && h.version === first.version));
    if (fits) {
      await fill(i + h.length + 4);
      if (i + h.length > buf.length) return; // a truncated last frame: the song ends before it
      const next = frameHeader(buf, i + h.length);
      // Out of sync (at the start, or after junk), a header counts only if another follows it.
      if (locked || next || i + h.length === buf.length) {
        first ??= h;
        locked = true;
        yield [h, buf.slice(i, i + h.length)];
        i += h.length;
        continue;
      }
    }
    locked = false;
    i += 1;
  }
}

export class NotStreamable extends Error {}

// Decodes an MP3 `file` piece by piece; calls begin(rate, channels) once, then
// write(interleaved Float32Array, frames) in order. Returns {frames, rate, channels}.
// Throws NotStreamable when this path cannot take the file (no WebCodecs, not
// Layer III, nothing decoded); the caller then decodes it whole.
export async function decodeMp3(file, { begin, write, isCancelled = () => false }) {
  if (typeof AudioDecoder === 'undefined') throw new NotStreamable('no WebCodecs AudioDecoder');
  const it = frames(file);
  let step = await it.next();
  if (step.done) throw new NotStreamable('no MPEG Layer III frames');
  const [h0, f0] = step.value;
  const config = { codec: 'mp3', sampleRate: h0.rate, numberOfChannels: h0.channels };
  if (!(await AudioDecoder.isConfigSupported(config)).supported) throw new NotStreamable('mp3 not supported by AudioDecoder');
  const info = infoTag(f0, h0);
  if (info) step = await it.next(); // the Xing/Info frame holds no audio
  let skipStart = info ? (info.delay || info.padding ? info.delay + DECODER_DELAY : 0) : 0;
  const holdBack = info && info.padding > DECODER_DELAY ? info.padding - DECODER_DELAY : 0;

  const channels = h0.channels;
  const ready = []; // decoded, interleaved, not yet written
  let failure = null;
  const decoder = new AudioDecoder({
    output: (data) => {
      try {
        const n = data.numberOfFrames;
        const out = new Float32Array(n * channels);
        const plane = new Float32Array(n);
        for (let c = 0; c < channels; c++) {
          data.copyTo(plane, { planeIndex: Math.min(c, data.numberOfChannels - 1), format: 'f32-planar' });
          for (let i = 0; i < n; i++) out[i * channels + c] = plane[i];
        }
        ready.push(out);
      } catch (e) {
        failure = e;
      } finally {
        data.close();
      }
    },
    error: (e) => {
      failure = e;
    },
  });
  decoder.configure(config);
  begin(h0.rate, channels);

  // The last `holdBack` frames are the encoder's padding: kept back until more come.
  let tail = new Float32Array(0);
  let written = 0;
  const drain = async () => {
    while (ready.length) {
      let x = ready.shift();
      if (skipStart > 0) {
        const drop = Math.min(skipStart, x.length / channels);
        x = x.subarray(drop * channels);
        skipStart -= drop;
      }
      const all = new Float32Array(tail.length + x.length);
      all.set(tail);
      all.set(x, tail.length);
      const keep = Math.min(all.length, holdBack * channels);
      const out = all.subarray(0, all.length - keep);
      tail = all.slice(all.length - keep);
      if (out.length) {
        await write(out, out.length / channels);
        written += out.length / channels;
      }
    }
  };
  const check = () => {
    if (failure) throw failure;
    if (isCancelled()) throw Object.assign(new Error('cancelled'), { cancelled: true });
  };

  try {
    let timestamp = 0;
    for (; !step.done; step = await it.next()) {
      const [h, bytes] = step.value;
      decoder.decode(new EncodedAudioChunk({ type: 'key', timestamp, data: bytes }));
      timestamp += Math.round((h.samples * 1e6) / h.rate);
      if (decoder.decodeQueueSize > MAX_QUEUE) await new Promise((r) => decoder.addEventListener('dequeue', r, { once: true }));
      check();
      await drain();
    }
    await decoder.flush();
    check();
    await drain();
  } catch (e) {
    if (e?.cancelled) throw e;
    if (written === 0) throw new NotStreamable(String(e?.message ?? e));
    throw e;
  } finally {
    if (decoder.state !== 'closed') decoder.close();
  }
  if (written === 0) throw new NotStreamable('nothing decoded');
  return { frames: written, rate: h0.rate, channels };
}
