// The stems' encoders for FLAC, MP3 and Opus, in the engine worker, streaming: pycore hands
// each stem's blocks over as they are computed (pycore/browser.py, EncodedStems) and the bytes
// go straight to the stem's OPFS file through `write(bytes, position)`, so no song-sized buffer
// is ever held. One header is rewritten in place at the end (FLAC's STREAMINFO: total samples,
// frame sizes, MD5; MP3's Xing/Info + LAME frame: frames, bytes, seek table, encoder delay and
// padding for gapless players).
//
//   await prepare(format)                      loads the format's libraries (once per worker)
//   const enc = await open(format, {write, tags, sampleRate})
//   enc.write(left, right)                     planar blocks: Int32Array samples already quantised
//                                              by pycore for FLAC, Float32Array for MP3 and Opus;
//                                              returns a promise when the encoder wants a pause
//   await enc.finish()  /  enc.abort()
//
// `write(bytes, position)` gets views into an encoder's memory: it must write them at once.
// Libraries (vendor/encoders/, from the bundle only: no eval, no blob: workers, no CDN):
//   libflac.min.wasm.js + .wasm    libflacjs 5.6.0 (MIT; libFLAC 1.3.4, BSD-3-Clause)
//   wasm-media-encoders.mjs        wasm-media-encoders 0.7.0 (MIT), its inlined wasm blanked by build.py
//   mp3.wasm                       LAME 3.100 (LGPL-2.0-or-later), its own file (NOTICE.lame.txt)
//   browser-id3-writer.mjs         browser-id3-writer 6.4.0 (MIT): the ID3v2.3 tag in front of an MP3
//   mediabunny.min.mjs             mediabunny 1.61.0 (MPL-2.0): the Ogg muxer for WebCodecs' Opus packets

const VENDOR = new URL('../vendor/encoders/', import.meta.url);
const IS_NODE = typeof process === 'object' && typeof process.versions?.node === 'string';

// ------------------------------------------------------------------ library loading

let flacLib = null;
function loadFlac() {
  flacLib ??= (async () => {
    let Flac;
    if (IS_NODE) {
      // In node the UMD file takes its CommonJS branch and reads the .wasm beside it with fs, but only if it
      // sees no global fetch (node >= 18 has one, which cannot fetch a file path: the load would fail).
      const { createRequire } = await import('node:module');
      const fetch0 = globalThis.fetch;
      globalThis.fetch = undefined;
      try { Flac = createRequire(import.meta.url)(new URL('libflac.min.wasm.js', VENDOR).pathname); } finally { globalThis.fetch = fetch0; }
    } else {
      // In a (module) worker the UMD file takes its global branch: it sets self.Flac. Its wasm is found through
      // self.FLAC_SCRIPT_LOCATION (a {file name: URL} map); Emscripten would otherwise look beside the worker's
      // own script. It also replaces self.fetch by a wrapper that retries failed fetches through XHR: the wrapper
      // has done its only job (fetching the .wasm) once the import has run, so the original is put back.
      const fetch0 = self.fetch;
      self.FLAC_SCRIPT_LOCATION = { 'libflac.min.wasm.wasm': new URL('libflac.min.wasm.wasm', VENDOR).href };
      await import(new URL('libflac.min.wasm.js', VENDOR).href);
      Flac = self.Flac;
      self.fetch = fetch0;
    }
    if (!Flac.isReady()) await new Promise((resolve) => Flac.on('ready', resolve));
    return Flac;
  })();
  return flacLib;
}

let lameLib = null;
function loadLame() {
  lameLib ??= (async () => {
    const { createEncoder } = await import(new URL('wasm-media-encoders.mjs', VENDOR).href);
    const url = new URL('mp3.wasm', VENDOR);
    let wasm = IS_NODE ? await (await import('node:fs/promises')).readFile(url) : url.href;
    // The first encoder compiles the wasm; the compiled module is handed to the next ones.
    const first = await createEncoder('audio/mpeg', wasm, (module) => { wasm = module; });
    let spare = first;
    return async () => {
      if (spare) { const e = spare; spare = null; return e; }
      return createEncoder('audio/mpeg', wasm);
    };
  })();
  return lameLib;
}

const loadId3 = () => import(new URL('browser-id3-writer.mjs', VENDOR).href);
const loadMediabunny = () => import(new URL('mediabunny.min.mjs', VENDOR).href);

// ------------------------------------------------------------------ output helper

function sink(write) {
  let pos = 0, end = 0;
  return {
    get pos() { return pos; },
    get end() { return end; },
    put(bytes) { if (bytes.length) { write(bytes, pos); pos += bytes.length; end = Math.max(end, pos); } },
    at(bytes, position) { write(bytes, position); end = Math.max(end, position + bytes.length); },
  };
}

// ------------------------------------------------------------------ FLAC

function vorbisComment(vendor, tags, isLast) {
  // FLAC METADATA_BLOCK_VORBIS_COMMENT: block header (big-endian) + Vorbis comment (little-endian lengths).
  const te = new TextEncoder();
  const fields = [];
  for (const [key, value] of Object.entries(tags)) if (value != null && value !== '') fields.push(te.encode(`${key.toUpperCase()}=${value}`));
  const v = te.encode(vendor);
  const len = 4 + v.length + 4 + fields.reduce((n, f) => n + 4 + f.length, 0);
  const b = new Uint8Array(4 + len), d = new DataView(b.buffer);
  d.setUint32(0, ((isLast ? 0x80 : 0) | 4) << 24 | len);
  let p = 4;
  d.setUint32(p, v.length, true); b.set(v, p + 4); p += 4 + v.length;
  d.setUint32(p, fields.length, true); p += 4;
  for (const f of fields) { d.setUint32(p, f.length, true); b.set(f, p + 4); p += 4 + f.length; }
  return b;
}

async function openFlac(bits, { write, tags, frames, sampleRate }) {
  const Flac = await loadFlac();
  const out = sink(write);
  const enc = Flac.create_libflac_encoder(sampleRate, 2, bits, 5, frames || 0, false);
  if (!enc) throw new Error('FLAC encoder could not be created');
  const meta = []; // libFLAC's header writes (samples == 0), held until the first audio frame
  let headerDone = false, streamInfo = null, final = null, error = null;
  const writeHeader = () => {
    // libFLAC writes "fLaC", STREAMINFO and an empty VORBIS_COMMENT (its vendor string only); we pass STREAMINFO
    // through and replace the comment block by one that carries the tags.
    headerDone = true;
    const h = new Uint8Array(meta.reduce((n, m) => n + m.length, 0));
    let o = 0;
    for (const m of meta) { h.set(m, o); o += m.length; }
    if (String.fromCharCode(...h.subarray(0, 4)) !== 'fLaC') throw new Error('libFLAC header not understood');
    const blocks = [];
    let vendor = 'reference libFLAC';
    for (let p = 4; p < h.length;) {
      const type = h[p] & 0x7f, len = (h[p + 1] << 16) | (h[p + 2] << 8) | h[p + 3];
      if (type === 4) {
        const vl = new DataView(h.buffer, p + 4).getUint32(0, true);
        vendor = new TextDecoder().decode(h.subarray(p + 8, p + 8 + vl));
      } else blocks.push(h.slice(p, p + 4 + len));
      p += 4 + len;
    }
    if (blocks[0][0] & 0x7f) throw new Error('STREAMINFO is not the first FLAC metadata block');
    streamInfo = blocks[0].slice(4); // 34 bytes, written at offset 8
    out.put(h.subarray(0, 4));
    for (const b of blocks) { b[0] &= 0x7f; out.put(b); }
    out.put(vorbisComment(vendor, tags, true));
  };
  const status = Flac.init_encoder_stream(enc, (data, n, samples) => {
    try {
      if (!headerDone && samples === 0) { meta.push(data.slice(0, n)); return; }
      if (!headerDone) writeHeader();
      out.put(data.subarray(0, n));
    } catch (e) { error ??= e; throw e; } // libflacjs turns a throw into FLAC__STREAM_ENCODER_WRITE_STATUS_FATAL_ERROR
  }, (info) => { final = info; });
  if (status !== 0) throw new Error(`FLAC encoder init failed (status ${status})`);
  let total = 0;
  let open = true;
  return {
    // Int32Arrays: pycore has quantised them exactly as it does WAV (pycore/formats.py).
    write(left, right) {
      const n = left.length;
      if (!Flac.FLAC__stream_encoder_process(enc, [left, right], n)) {
        throw error ?? new Error(`FLAC encoding failed (state ${Flac.FLAC__stream_encoder_get_state(enc)})`);
      }
      total += n;
    },
    abort() {
      if (open) Flac.FLAC__stream_encoder_delete(enc);
      open = false;
    },
    async finish() {
      open = false;
      const ok = Flac.FLAC__stream_encoder_finish(enc);
      Flac.FLAC__stream_encoder_delete(enc);
      if (!ok || error) throw error ?? new Error('FLAC encoder could not finish');
      if (!headerDone) writeHeader(); // no audio at all
      // STREAMINFO as libFLAC ends it (its metadata callback; it cannot seek back itself without a seek callback):
      // min/max frame size (bytes 4..9), total samples (36 bits in bytes 13..17) and the MD5 (bytes 18..33).
      const s = streamInfo;
      const put24 = (o, v) => { s[o] = v >>> 16; s[o + 1] = (v >>> 8) & 255; s[o + 2] = v & 255; };
      put24(4, final.min_framesize); put24(7, final.max_framesize);
      s[13] = (s[13] & 0xf0) | (Math.floor(total / 2 ** 32) & 0x0f);
      new DataView(s.buffer).setUint32(14, total >>> 0);
      for (let i = 0; i < 16; i++) s[18 + i] = parseInt(final.md5sum.substr(2 * i, 2), 16);
      out.at(s, 8);
      return { bytes: out.pos, frames: total };
    },
  };
}

// ------------------------------------------------------------------ MP3

const MP3_BITRATES = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
// LAME tag fields that LAME 3.100 itself writes for these two settings (taken from the `lame` 3.100 command
// line's own output for `-b 320 --cbr` and `-V 0`, whose encoder settings are the library's here):
// quality, revision/VBR method, lowpass/100, encoding flags + ATH type, ABR/min bitrate, misc, preset.
const LAME_TAG = {
  cbr: { tag: 'Info', quality: 57, revMethod: 0x01, lowpass: 205, flagsAth: 0x34, minBitrate: 255, misc: 0x4d, preset: 320 },
  vbr: { tag: 'Xing', quality: 100, revMethod: 0x04, lowpass: 221, flagsAth: 0x35, minBitrate: 32, misc: 0x4d, preset: 500 },
};
const ENCODER_DELAY = 576; // LAME 3.100's encoder delay (samples before the first input sample)

let CRC16 = null;
function crc16(bytes, crc = 0) { // CRC-16/ARC, as LAME's CRC_update_lookup
  if (!CRC16) {
    CRC16 = new Uint16Array(256);
    for (let i = 0; i < 256; i++) { let c = i; for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1; CRC16[i] = c; }
  }
  for (let i = 0; i < bytes.length; i++) crc = (crc >>> 8) ^ CRC16[(crc ^ bytes[i]) & 0xff];
  return crc;
}

function id3Tag(ID3Writer, tags) {
  const w = new ID3Writer(new ArrayBuffer(0));
  w.padding = 0;
  if (tags.title) w.setFrame('TIT2', tags.title);
  if (tags.album) w.setFrame('TALB', tags.album);
  if (tags.comment) w.setFrame('COMM', { description: '', text: tags.comment, language: 'eng' });
  return new Uint8Array(w.addTag());
}

async function openMp3(mode, { write, tags, sampleRate }) {
  if (sampleRate !== 44100 && sampleRate !== 48000 && sampleRate !== 32000) throw new Error('MP3: MPEG-1 rates only');
  const newEncoder = await loadLame();
  const lame = await newEncoder();
  lame.configure(mode === 'cbr' ? { channels: 2, sampleRate, bitrate: 320 } : { channels: 2, sampleRate, vbrQuality: 0 });
  const out = sink(write);
  if (tags && (tags.title || tags.album || tags.comment)) {
    const { ID3Writer } = await loadId3();
    out.put(id3Tag(ID3Writer, tags));
  }
  // The first frame is the Xing/Info + LAME tag frame: reserved now (zeros), filled in by finish().
  const tagKbps = mode === 'cbr' ? 320 : 128;
  const tagPos = out.pos, tagLen = Math.floor(144000 * tagKbps / sampleRate);
  out.put(new Uint8Array(tagLen));
  // Follow LAME's output frame by frame (it may split frames across calls): frame offsets for the TOC,
  // the frame count, the first header (the tag frame copies it) and the CRC of the audio bytes.
  let starts = new Float64Array(4096), count = 0, need = 0, hdr = [], firstHeader = null, musicCrc = 0, inputFrames = 0;
  const scan = (b) => {
    musicCrc = crc16(b, musicCrc);
    for (let i = 0; i < b.length;) {
      if (need > 0) { const k = Math.min(need, b.length - i); need -= k; i += k; continue; }
      hdr.push(b[i++]);
      if (hdr.length < 4) continue;
      if (hdr[0] !== 0xff || (hdr[1] & 0xfe) !== 0xfa) throw new Error('LAME output is not MPEG-1 Layer III frames');
      const len = Math.floor(144000 * MP3_BITRATES[hdr[2] >> 4] / sampleRate) + ((hdr[2] >> 1) & 1);
      if (count === starts.length) { const s = new Float64Array(count * 2); s.set(starts); starts = s; }
      starts[count++] = out.pos + i - 4 - tagPos; // relative to the tag frame
      firstHeader ??= hdr.slice();
      need = len - 4; hdr = [];
    }
  };
  const emit = (bytes) => { if (bytes.length) { scan(bytes); out.put(bytes); } };
  return {
    write(left, right) {
      emit(lame.encode([left, right]));
      inputFrames += left.length;
    },
    abort() {},
    async finish() {
      emit(lame.finalize());
      if (need || hdr.length) throw new Error('LAME output ended inside a frame');
      const t = LAME_TAG[mode], f = new Uint8Array(tagLen), d = new DataView(f.buffer);
      const total = out.pos - tagPos; // bytes from the tag frame to the end (what LAME writes)
      const h = firstHeader ?? [0xff, 0xfb, 0, 0x44];
      f[0] = 0xff; f[1] = h[1] | 0x01; // no CRC
      const rateIndex = (h[2] >> 2) & 3;
      f[2] = (MP3_BITRATES.indexOf(tagKbps) << 4) | (rateIndex << 2) | (h[2] & 0x01); // no padding, keep private bit
      f[3] = h[3] & 0xcf; // channel mode, copyright, original, emphasis (mode extension cleared)
      const x = 4 + 32; // side info of MPEG-1 stereo
      for (let i = 0; i < 4; i++) f[x + i] = t.tag.charCodeAt(i);
      d.setUint32(x + 4, 0x0f); // frames, bytes, TOC, quality present
      d.setUint32(x + 8, count); // audio frames, the tag frame not counted
      d.setUint32(x + 12, total);
      for (let i = 0; i < 100; i++) {
        const off = count ? starts[Math.floor((i * count) / 100)] : 0;
        f[x + 16 + i] = Math.min(255, Math.floor((256 * off) / total));
      }
      d.setUint32(x + 116, t.quality);
      const l = x + 120; // the LAME extension
      for (let i = 0; i < 9; i++) f[l + i] = 'LAME3.100'.charCodeAt(i);
      f[l + 9] = t.revMethod; f[l + 10] = t.lowpass;
      // l+11..l+18: peak amplitude and replay gains: 0 (not measured)
      f[l + 19] = t.flagsAth; f[l + 20] = t.minBitrate;
      const padding = count * 1152 - inputFrames - ENCODER_DELAY;
      if (padding < 0 || padding > 0xfff) throw new Error(`MP3 padding out of range: ${padding}`);
      f[l + 21] = ENCODER_DELAY >> 4; f[l + 22] = ((ENCODER_DELAY & 15) << 4) | (padding >> 8); f[l + 23] = padding & 255;
      f[l + 24] = t.misc; // l+25: MP3 gain 0
      d.setUint16(l + 26, t.preset);
      d.setUint32(l + 28, total); // music length: the tag frame and all audio frames
      d.setUint16(l + 32, musicCrc);
      d.setUint16(l + 34, crc16(f.subarray(0, l + 34)));
      out.at(f, tagPos);
      return { bytes: out.pos, frames: inputFrames, mp3Frames: count, delay: ENCODER_DELAY, padding };
    },
  };
}

// ------------------------------------------------------------------ Opus (WebCodecs AudioEncoder) in Ogg

// Samples (at 48 kHz) in an Opus packet, from its TOC byte (RFC 6716 section 3.1).
export function opusPacketSamples(p) {
  const config = p[0] >> 3;
  const frame = config < 12 ? [480, 960, 1920, 2880][config & 3] : config < 16 ? [480, 960][config & 1] : [120, 240, 480, 960][config & 3];
  const code = p[0] & 3;
  const count = code === 0 ? 1 : code === 3 ? (p[1] & 0x3f) : 2;
  return frame * count;
}

function opusHead(channels, preSkip, inputRate) {
  const b = new Uint8Array(19), d = new DataView(b.buffer);
  b.set([0x4f, 0x70, 0x75, 0x73, 0x48, 0x65, 0x61, 0x64, 1, channels]);
  d.setUint16(10, preSkip, true); d.setUint32(12, inputRate, true); // gain 0, mapping family 0
  return b;
}

/**
 * An Ogg Opus writer fed by WebCodecs' AudioEncoder output: call `add(chunk, metadata)` from the encoder's
 * output callback (or with {data, timestamp, duration} objects), then `finish(inputFrames, inputRate)` after
 * `await encoder.flush()`. Exported separately so that node can test it with packets from any Opus encoder.
 *
 * Granule positions count 48 kHz samples from the start of decoding, pre-skip included (RFC 7845 4.);
 * the final page's granule is pre-skip + the input's length at 48 kHz, which trims the encoder's tail padding.
 */
export async function openOggOpus({ write, tags = {}, channels = 2 }) {
  const mb = await loadMediabunny();
  const out = sink(write);
  const output = new mb.Output({
    format: new mb.OggOutputFormat(),
    target: new mb.StreamTarget(new WritableStream({ write(chunk) { out.at(chunk.data, chunk.position); } })),
  });
  const source = new mb.EncodedAudioPacketSource('opus');
  output.addAudioTrack(source);
  output.setMetadataTags({ ...(tags.title && { title: tags.title }), ...(tags.album && { album: tags.album }), ...(tags.comment && { comment: tags.comment }) });
  await output.start();
  let meta = null, held = null, samples = 0, preSkip = 312, bytes = 0;
  const pending = [];
  const flushHeld = async (duration) => {
    const { data, start, n } = held;
    held = null;
    await source.add(new mb.EncodedPacket(data, 'key', start / 48000, (duration ?? n) / 48000), pending.length ? undefined : meta);
    pending.push(1);
  };
  return {
    async add(chunk, metadata) {
      const data = chunk instanceof Uint8Array ? chunk : (() => { const b = new Uint8Array(chunk.byteLength); chunk.copyTo(b); return b; })();
      if (!meta) {
        const dc = metadata?.decoderConfig ?? {};
        let description = dc.description ? new Uint8Array(ArrayBuffer.isView(dc.description) ? dc.description.buffer.slice(dc.description.byteOffset, dc.description.byteOffset + dc.description.byteLength) : dc.description.slice(0)) : null;
        if (!description) description = opusHead(dc.numberOfChannels ?? channels, 312, 48000); // no OpusHead given
        preSkip = new DataView(description.buffer, description.byteOffset).getUint16(10, true);
        meta = { decoderConfig: { codec: 'opus', sampleRate: 48000, numberOfChannels: description[9], description } };
      }
      if (held) await flushHeld();
      const n = opusPacketSamples(data);
      held = { data, start: samples, n };
      samples += n;
      bytes += data.length;
    },
    async finish(inputFrames, inputRate = 44100) {
      // The last packet is held back so that its duration can end the stream exactly (end trimming).
      const end = preSkip + Math.round((inputFrames * 48000) / inputRate);
      if (held) {
        if (held.start >= end && pending.length) { held = null; } // padding only: drop it (its page would end before it starts)
        else await flushHeld(Math.max(0, Math.min(held.n, end - held.start)));
      }
      source.close();
      await output.finalize();
      return { bytes: out.end, granule: end, preSkip, packets: pending.length, packetBytes: bytes };
    },
  };
}

// WebCodecs' AudioEncoder makes the Opus packets (Chromium; Firefox 130+), mediabunny puts them in Ogg.
// pycore hands over 48 kHz blocks (it resamples, as for the command line's libsndfile), so no
// browser resampler sits between the stems and the file.
async function openOpusWebCodecs({ write, tags, sampleRate, bitrate }) {
  const ogg = await openOggOpus({ write, tags, channels: 2 });
  let failure = null;
  let adds = Promise.resolve();
  let frames = 0;
  const encoder = new AudioEncoder({
    output: (chunk, metadata) => {
      adds = adds.then(() => ogg.add(chunk, metadata)).catch((e) => (failure ??= e));
    },
    error: (e) => (failure ??= e),
  });
  encoder.configure({ codec: 'opus', sampleRate, numberOfChannels: 2, bitrate, opus: { frameDuration: 20000, complexity: 10 } });
  const check = () => {
    if (failure) throw failure instanceof Error ? failure : new Error(`the Opus encoder failed: ${failure}`);
  };
  return {
    // Queued at once; a promise back when the encoder is behind (pycore awaits it while rescaling,
    // and during separation the encoder catches up while the model runs).
    write(left, right) {
      check();
      const data = new Float32Array(left.length * 2);
      data.set(left, 0);
      data.set(right, left.length);
      const audio = new AudioData({ format: 'f32-planar', sampleRate, numberOfFrames: left.length, numberOfChannels: 2, timestamp: Math.round((frames * 1e6) / sampleRate), data });
      encoder.encode(audio);
      audio.close();
      frames += left.length;
      if (encoder.encodeQueueSize <= 2) return undefined;
      return new Promise((resolve) => encoder.addEventListener('dequeue', resolve, { once: true })).then(() => adds);
    },
    abort() {
      if (encoder.state !== 'closed') encoder.close();
    },
    async finish() {
      check();
      await encoder.flush();
      encoder.close();
      await adds;
      check();
      return { ...(await ogg.finish(frames, sampleRate)), frames };
    },
  };
}

// ------------------------------------------------------------------ the one entry point

// format: the schema's choice for the format (lib/job_settings.json): {value, codec, bits, bitrate, vbr_quality, rate}.
export async function prepare(format) {
  switch (format.codec) {
    case 'flac':
      await loadFlac();
      return;
    case 'mp3':
      await Promise.all([loadLame(), loadId3()]);
      return;
    case 'opus': {
      if (typeof AudioEncoder === 'undefined') throw new Error('this browser cannot encode Opus (no WebCodecs AudioEncoder)');
      const { supported } = await AudioEncoder.isConfigSupported({ codec: 'opus', sampleRate: format.rate, numberOfChannels: 2, bitrate: format.bitrate * 1000 });
      if (!supported) throw new Error('this browser cannot encode Opus at 48 kHz');
      await loadMediabunny();
      return;
    }
    default:
      throw new Error(`no encoder for ${format.value}`);
  }
}

export async function open(format, { write, tags = {} }) {
  const sampleRate = format.rate;
  switch (format.codec) {
    case 'flac':
      return openFlac(format.bits, { write, tags, frames: 0, sampleRate });
    case 'mp3':
      return openMp3(format.vbr_quality === null || format.vbr_quality === undefined ? 'cbr' : 'vbr', { write, tags, sampleRate });
    case 'opus':
      return openOpusWebCodecs({ write, tags, sampleRate, bitrate: format.bitrate * 1000 });
    default:
      throw new Error(`no encoder for ${format.value}`);
  }
}
