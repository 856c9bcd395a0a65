// Compressed audio (any format the browser decodes: MP3, AAC, FLAC, Ogg,
// Opus, WAV...) -> stereo float PCM at the model's rate, 44,100 Hz.
//
// decodeAudioData resamples to its context's rate, so a 44.1 kHz
// OfflineAudioContext gives 44.1 kHz whatever the file's rate. The channel
// policy mirrors pycore/channels.py: mono is used for both sides; more than two
// channels are downmixed (front left/right plus the others at -3 dB, the LFE
// dropped, scaled so that nothing can clip).

import { decodeMp3, frameHeader, NotStreamable } from './mp3_stream.js';
import { HEAD_BYTES, browserTrimsByTimestamp, correction, isMatroska } from './webm_opus.js';

export const SAMPLE_RATE = 44100;
const SIDE = 0.7071;

export class DecodeError extends Error {}

export async function decodeToStereo(arrayBuffer) {
  const context = new OfflineAudioContext({ numberOfChannels: 2, length: 1, sampleRate: SAMPLE_RATE });
  let audio;
  try {
    audio = await context.decodeAudioData(arrayBuffer);
  } catch {
    throw new DecodeError(
      'This file could not be read as audio: its format is not supported by the browser, or the file is damaged.',
    );
  }
  const n = audio.length;
  if (n === 0) throw new DecodeError('This file contains no audio.');
  const warnings = [];
  const channels = audio.numberOfChannels;
  let left, right;
  if (channels === 1) {
    left = audio.getChannelData(0);
    right = left.slice();
    warnings.push('mono input: the channel is used for both left and right');
  } else if (channels === 2) {
    left = audio.getChannelData(0);
    right = audio.getChannelData(1);
  } else {
    const others = [];
    for (let c = 2; c < channels; c++) if (!(channels >= 4 && c === 3)) others.push(audio.getChannelData(c));
    const gain = 1 / (1 + SIDE * others.length);
    left = new Float32Array(n);
    right = new Float32Array(n);
    const l = audio.getChannelData(0);
    const r = audio.getChannelData(1);
    for (let i = 0; i < n; i++) {
      let shared = 0;
      for (const o of others) shared += o[i];
      shared *= SIDE;
      left[i] = (l[i] + shared) * gain;
      right[i] = (r[i] + shared) * gain;
    }
    const lfe = channels >= 4 ? ' (LFE dropped)' : '';
    warnings.push(`${channels}-channel input downmixed to stereo: front left/right plus the other channels at -3 dB${lfe}`);
  }
  return { left, right, frames: n, seconds: n / SAMPLE_RATE, warnings };
}

// ------------------------------------------------------------------ long files
//
// What is read in pieces and what is decoded whole:
// - WAV (RIFF/RF64, PCM 8-32 bit or float, any rate and channel count) is not
//   decoded here at all: the engine reads the file in place, a window at a
//   time (pycore/wav.py through an OPFS sync handle), whatever its length.
// - MP3 (MPEG-1/2/2.5 Layer III) is demuxed here (mp3_stream.js) and decoded
//   frame by frame with WebCodecs' AudioDecoder into an OPFS scratch WAV at the
//   file's own rate (pycore resamples): memory stays small whatever its length.
// - Every other format (FLAC, Ogg, M4A, ..., and an MP3 that path cannot take)
//   is decoded whole with decodeAudioData, which has no streaming form, then
//   written to the scratch WAV in pieces so that the engine reads it like any
//   WAV. The decoded song is in memory meanwhile (about 10 MB per minute of
//   stereo at 44.1 kHz, plus the file itself), so files above WHOLE_FILE_LIMIT
//   are refused with a message that says what to do instead.

export const WHOLE_FILE_LIMIT = 200 * 1024 * 1024;
const PIECE_FRAMES = 1 << 16;

// The first 12 bytes of a file -> 'wav', 'mp3', 'empty' or 'other'.
export function sniff(head) {
  if (head.byteLength === 0) return 'empty';
  const tag = (a, b) => String.fromCharCode(...head.subarray(a, b));
  if (head.byteLength >= 12 && ['RIFF', 'RF64'].includes(tag(0, 4)) && tag(8, 12) === 'WAVE') return 'wav';
  if (tag(0, 3) === 'ID3' || frameHeader(head, 0)) return 'mp3';
  return 'other';
}

function floatWavHeader(channels, rate, frames) {
  const block = channels * 4;
  const data = frames * block;
  const size = 4 + 26 + 12 + 8 + data;
  if (size > 0xffffffff) throw new DecodeError('This song is too long to decode in the browser in this format. Convert it to WAV (or FLAC split in parts) first.');
  const b = new DataView(new ArrayBuffer(58));
  const text = (at, s) => [...s].forEach((c, i) => b.setUint8(at + i, c.charCodeAt(0)));
  text(0, 'RIFF');
  b.setUint32(4, size, true);
  text(8, 'WAVE');
  text(12, 'fmt ');
  b.setUint32(16, 18, true);
  b.setUint16(20, 3, true); // IEEE float
  b.setUint16(22, channels, true);
  b.setUint32(24, rate, true);
  b.setUint32(28, rate * block, true);
  b.setUint16(32, block, true);
  b.setUint16(34, 32, true);
  b.setUint16(36, 0, true);
  text(38, 'fact');
  b.setUint32(42, 4, true);
  b.setUint32(46, frames, true);
  text(50, 'data');
  b.setUint32(54, data, true);
  return b.buffer;
}

// Decodes a compressed `file` into the OPFS file `handle` as a 32-bit float WAV
// with the file's own channels (pycore applies the channel policy and
// resamples, as for any WAV). Returns {frames, seconds, streamed}.
export async function decodeToWavFile(file, handle, isCancelled = () => false) {
  const head = new Uint8Array(await file.slice(0, 12).arrayBuffer());
  if (sniff(head) === 'mp3') {
    try {
      return { ...(await streamMp3ToWavFile(file, handle, isCancelled)), streamed: true };
    } catch (e) {
      if (!(e instanceof NotStreamable)) throw e;
      console.warn('MP3 not streamable, decoding it whole:', e.message);
    }
  }
  return { ...(await decodeWholeToWavFile(file, handle, isCancelled)), streamed: false };
}

async function streamMp3ToWavFile(file, handle, isCancelled) {
  const writable = await handle.createWritable();
  let format = null;
  try {
    await writable.write(new ArrayBuffer(58)); // the header, once the length is known
    const { frames, rate, channels } = await decodeMp3(file, {
      begin: (rate, channels) => (format = { rate, channels }),
      write: (pcm) => writable.write(pcm),
      isCancelled,
    });
    await writable.write({ type: 'write', position: 0, data: floatWavHeader(channels, rate, frames) });
    await writable.close();
    return { frames, seconds: frames / rate, rate: format.rate };
  } catch (e) {
    await writable.abort().catch(() => {});
    throw e;
  }
}

async function decodeWholeToWavFile(file, handle, isCancelled) {
  if (file.size > WHOLE_FILE_LIMIT) {
    const mb = (n) => Math.round(n / 1048576);
    throw new DecodeError(
      `This file is too large for the browser to decode (${mb(file.size)} MB; the limit for MP3, FLAC, Ogg and M4A is ${mb(WHOLE_FILE_LIMIT)} MB). ` +
        'Convert it to WAV, which Demixer reads in pieces whatever its length.',
    );
  }
  const context = new OfflineAudioContext({ numberOfChannels: 2, length: 1, sampleRate: SAMPLE_RATE });
  let audio;
  try {
    audio = await context.decodeAudioData(await file.arrayBuffer());
  } catch {
    throw new DecodeError(
      'This file could not be read as audio: its format is not supported by the browser, or the file is damaged.',
    );
  }
  if (audio.length === 0) throw new DecodeError('This file contains no audio.');
  if (isCancelled()) throw Object.assign(new Error('cancelled'), { cancelled: true });
  // Opus in WebM/Matroska: the samples Chromium trimmed from its start come back as silence (webm_opus.js).
  const head = new Uint8Array(await file.slice(0, HEAD_BYTES).arrayBuffer());
  const pad = isMatroska(head) ? correction(head, SAMPLE_RATE, await browserTrimsByTimestamp()).pad : 0;
  const frames = audio.length + pad;
  const channels = audio.numberOfChannels;
  const planes = Array.from({ length: channels }, (_, c) => audio.getChannelData(c));
  const writable = await handle.createWritable();
  try {
    await writable.write(floatWavHeader(channels, SAMPLE_RATE, frames));
    if (pad) await writable.write(new Float32Array(pad * channels));
    for (let start = 0; start < audio.length; start += PIECE_FRAMES) {
      const n = Math.min(PIECE_FRAMES, audio.length - start);
      const piece = new Float32Array(n * channels);
      for (let c = 0; c < channels; c++) {
        const plane = planes[c];
        for (let i = 0; i < n; i++) piece[i * channels + c] = plane[start + i];
      }
      await writable.write(piece);
    }
    await writable.close();
  } catch (e) {
    await writable.abort().catch(() => {});
    throw e;
  }
  return { frames, seconds: frames / SAMPLE_RATE };
}
