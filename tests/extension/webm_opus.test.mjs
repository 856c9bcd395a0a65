// The WebM/Matroska Opus start correction (extension/offscreen/webm_opus.js) on a real
// ffmpeg-made WebM: its header says CodecDelay 6.5 ms (1 ms ticks) and pre-skip 312.
import assert from 'node:assert/strict';
import test from 'node:test';

import { PROBE, correction, isMatroska, parseMatroska } from '../../extension/offscreen/webm_opus.js';

const bytes = Uint8Array.from(Buffer.from(PROBE, 'base64'));

test('the WebM header is read: scale, codec delay, pre-skip, first block', () => {
  assert.ok(isMatroska(bytes));
  const m = parseMatroska(bytes);
  assert.equal(m.docType, 'webm');
  assert.equal(m.timestampScale, 1_000_000);
  const audio = m.tracks.find((t) => t.type === 2);
  assert.equal(audio.codec, 'A_OPUS');
  assert.equal(audio.codecDelay, 6_500_000);
});

test('a browser that trims by timestamp has 24 samples at 48 kHz (22 at 44.1 kHz) put back', () => {
  assert.equal(correction(bytes, 48000, true).pad, 24);
  assert.equal(correction(bytes, 44100, true).pad, 22);
  assert.equal(correction(bytes, 44100, false).pad, 0); // Firefox: the pre-skip alone is dropped
});

test('anything that is not Matroska Opus is left alone', () => {
  assert.ok(!isMatroska(new Uint8Array([0x52, 0x49, 0x46, 0x46])));
  assert.equal(correction(new Uint8Array(64), 44100, true).pad, 0);
});
