// The library's size limit (extension/lib/library.js overLimit): the oldest entries go first,
// only as many as needed, and the newest always stays.
import assert from 'node:assert/strict';
import test from 'node:test';

import { overLimit, summary } from '../../extension/lib/library.js';

const MB = 1024 ** 2;
const entry = (id, created, mb) => ({ id, name: id, created, bytes: mb * MB, frames: 1, sampleRate: 44100, stems: ['vocals'], settings: {}, source: 'file', files: [] });

test('under the limit nothing goes', () => {
  assert.deepEqual(overLimit([entry('a', 1, 100), entry('b', 2, 100)], 300 * MB), []);
  assert.deepEqual(overLimit([entry('a', 1, 100), entry('b', 2, 200)], 300 * MB), []); // exactly at it
});

test('past the limit the oldest go first, only as many as needed', () => {
  const entries = [entry('new', 30, 100), entry('old', 10, 100), entry('mid', 20, 100)];
  assert.deepEqual(overLimit(entries, 250 * MB).map((e) => e.id), ['old']);
  assert.deepEqual(overLimit(entries, 150 * MB).map((e) => e.id), ['old', 'mid']);
});

test('the newest entry stays even when it alone is past the limit', () => {
  assert.deepEqual(overLimit([entry('huge', 5, 5000), entry('old', 1, 10)], 1000 * MB).map((e) => e.id), ['old']);
  assert.deepEqual(overLimit([entry('huge', 5, 5000)], 1000 * MB), []);
});

test('the popup is told what it lists, not the files', () => {
  assert.deepEqual(Object.keys(summary(entry('a', 1, 1))).sort(), ['bytes', 'created', 'frames', 'id', 'name', 'sampleRate', 'settings', 'source', 'stems']);
});
