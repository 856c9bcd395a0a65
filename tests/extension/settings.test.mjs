import assert from 'node:assert/strict';
import test from 'node:test';

import { SettingsError, defaults, describe, normalize } from '../../extension/lib/settings.js';
import { schema } from './schema.mjs';

test('the schema offers every setting a job has, each with its default among its choices', () => {
  assert.deepEqual(Object.keys(schema).sort(), ['clip', 'format', 'gpu', 'library', 'midi', 'preset', 'save', 'stems']);
  for (const [name, spec] of Object.entries(schema)) {
    assert.ok(spec.choices.length >= 2, name);
    assert.ok(spec.choices.some((c) => c.value === spec.default), name);
    assert.ok(spec.label && spec.hint, name);
  }
  assert.deepEqual(defaults(schema), { stems: 'four', preset: 'balanced', format: 'wav16', clip: 'rescale', midi: 'off', gpu: 'auto', save: 'on', library: '2' });
});

test('missing settings take their defaults; given ones are kept', () => {
  assert.deepEqual(normalize(schema, {}), defaults(schema));
  assert.deepEqual(normalize(schema, { clip: 'clamp', stems: 'two' }), { stems: 'two', preset: 'balanced', format: 'wav16', clip: 'clamp', midi: 'off', gpu: 'auto', save: 'on', library: '2' });
  assert.deepEqual(normalize(schema, { format: undefined, preset: null }), defaults(schema));
});

test('every choice of every setting is accepted', () => {
  for (const [name, spec] of Object.entries(schema)) {
    for (const { value } of spec.choices) assert.equal(normalize(schema, { [name]: value })[name], value);
  }
});

test('unknown settings and values are refused in words that name them', () => {
  assert.throws(() => normalize(schema, { format: 'mp3' }), (e) => e instanceof SettingsError && /format must be one of wav16, wav24, float32, flac16, flac24, mp3-320, mp3-v0, opus, not 'mp3'/.test(e.message));
  assert.throws(() => normalize(schema, { peaks: 'clamp' }), (e) => e instanceof SettingsError && /unknown setting 'peaks'/.test(e.message));
  assert.throws(() => normalize(schema, { clip: 'CLAMP' }), SettingsError);
  assert.throws(() => normalize(schema, 'four'), SettingsError);
  assert.throws(() => normalize(schema, ['four']), SettingsError);
});

test('a job is described in the menus\' own words', () => {
  assert.equal(describe(schema, { stems: 'two', preset: 'best', format: 'float32', clip: 'clamp', midi: 'off', gpu: 'auto' }), 'Vocals + instrumental, Best (4x slower), WAV 32-bit float, Clamp');
  // An off/on switch is named only when not at its default (by its label alone when turned on);
  // the library's size, the extension's own setting, never.
  assert.equal(describe(schema, { stems: 'four', preset: 'fast', format: 'flac16', clip: 'rescale', midi: 'on', gpu: 'never', save: 'on', library: '5' }), 'Vocals, drums, bass, other, Fast, FLAC 16-bit, Lower all stems to fit, MIDI of the notes, Use the GPU: Never');
  assert.equal(describe(schema, { stems: 'two', preset: 'balanced', format: 'wav16', clip: 'rescale', midi: 'off', gpu: 'auto', save: 'off', library: '2' }), 'Vocals + instrumental, Balanced, WAV 16-bit, Lower all stems to fit, Save to Downloads: No');
});
