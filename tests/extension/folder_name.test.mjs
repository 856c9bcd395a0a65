// folderName: every case of tests/support/folder_names.json, which pycore's song_folder
// must give too (tests/core/test_names.py; tests/extension/test_folder_names_agree.py).
//
//   node --test tests/extension/

import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';

import { MAX_BYTES, folderName } from '../../extension/lib/folder_name.js';

const TABLE = JSON.parse(fs.readFileSync(new URL('../support/folder_names.json', import.meta.url), 'utf8'));
const bytes = (text) => new TextEncoder().encode(text).length;

test('the table is whole', () => {
  assert.ok(TABLE.length >= 24, `${TABLE.length} rows`);
  for (const row of TABLE) assert.deepEqual(Object.keys(row).sort(), ['folder', 'name', 'why']);
  assert.equal(MAX_BYTES, 150);
});

test('every name of the table gets its folder', () => {
  const wrong = TABLE.filter((row) => folderName(row.name) !== row.folder).map(
    (row) => `${JSON.stringify(row.name)}: ${JSON.stringify(folderName(row.name))}, expected ${JSON.stringify(row.folder)} (${row.why})`,
  );
  assert.deepEqual(wrong, []);
});

test('long names are cut on a character boundary', () => {
  for (const char of ['a', 'é', '東', '🎵']) {
    const name = folderName(char.repeat(300) + '.mp3');
    assert.ok(bytes(name) <= MAX_BYTES && bytes(name) > MAX_BYTES - 4, `${char}: ${bytes(name)} bytes`);
    assert.deepEqual([...new Set(name)], [char]);
    assert.ok(name.isWellFormed(), `${char}: half an emoji is left`);
  }
});

test('a missing name is Untitled', () => {
  assert.equal(folderName(undefined), 'Untitled');
  assert.equal(folderName(null), 'Untitled');
});
