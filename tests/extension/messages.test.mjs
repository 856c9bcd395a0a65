// The message catalogue (extension/lib/messages.js) against the code: every type in
// it is sent by exactly the module it names and handled by exactly the module it
// names; no other type is sent or handled anywhere; every dispatcher over message
// types ends in a `default` branch.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';

import { MESSAGES } from '../../extension/lib/messages.js';
import { REPO } from './schema.mjs';

const EXTENSION = path.join(REPO, 'extension');
const TYPE = /[a-z]+:[a-z-]+/.source;
// A sender writes `type: 'x:y'` in the message it posts; a handler has `case 'x:y':`
// (or, in a bench standing in for a context, compares `.type === 'x:y'`).
const SENT = new RegExp(`\\btype:\\s*'(${TYPE})'`, 'g');
const HANDLED = new RegExp(`\\bcase\\s+'(${TYPE})':`, 'g');

function sources() {
  const files = [];
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(m?js)$/.test(e.name)) files.push(p);
    }
  };
  walk(EXTENSION);
  return files.map((p) => ({ rel: path.relative(EXTENSION, p).split(path.sep).join('/'), text: fs.readFileSync(p, 'utf8') }));
}

const CATALOGUE = 'lib/messages.js';
const code = sources().filter((f) => f.rel !== CATALOGUE);
const bench = { rel: '../bench/profile.py', text: fs.readFileSync(path.join(REPO, 'bench', 'profile.py'), 'utf8') };

function where(regex, files) {
  const found = new Map(); // type -> Set of files
  for (const f of files) {
    for (const m of f.text.matchAll(regex)) {
      if (!found.has(m[1])) found.set(m[1], new Set());
      found.get(m[1]).add(f.rel);
    }
  }
  return found;
}

test('each message type is sent by the one module the catalogue names', () => {
  const sent = where(SENT, code);
  // bench/profile.py stands in for the engine to drive a model worker: only what no extension module sends counts there.
  for (const [type, files] of where(SENT, [bench])) if (MESSAGES[type]?.[0] === bench.rel) sent.set(type, files);
  for (const [type, [sender]] of Object.entries(MESSAGES)) {
    assert.deepEqual([...(sent.get(type) || [])], [sender], `${type}: sent by ${[...(sent.get(type) || ['nobody'])].join(', ')}`);
  }
});

test('each message type is handled by the one module the catalogue names', () => {
  const handled = where(HANDLED, code);
  for (const [type, [, handler]] of Object.entries(MESSAGES)) {
    assert.deepEqual([...(handled.get(type) || [])], [handler], `${type}: handled by ${[...(handled.get(type) || ['nobody'])].join(', ')}`);
  }
});

test('no message type outside the catalogue is sent or handled', () => {
  const known = new Set(Object.keys(MESSAGES));
  for (const [type, files] of [...where(SENT, code), ...where(HANDLED, code)]) {
    assert.ok(known.has(type), `${type} (in ${[...files].join(', ')}) is not in lib/messages.js`);
  }
});

test('the catalogue documents the fields of every type it lists', () => {
  const text = fs.readFileSync(path.join(EXTENSION, CATALOGUE), 'utf8');
  for (const type of Object.keys(MESSAGES)) assert.match(text, new RegExp(`@typedef \\{\\{type: '${type}'`), type);
});

test('every dispatcher over message types ends in a default branch', () => {
  let dispatchers = 0;
  for (const f of code) {
    for (const m of f.text.matchAll(/switch \(([\w.?]*\.type)\) \{/g)) {
      dispatchers += 1;
      // The switch's own body: up to the brace that closes it.
      let depth = 0;
      let i = m.index + m[0].length - 1;
      const start = i;
      for (; i < f.text.length; i++) {
        if (f.text[i] === '{') depth++;
        else if (f.text[i] === '}' && --depth === 0) break;
      }
      const body = f.text.slice(start, i);
      const cases = [...body.matchAll(/^(\s*)(case |default:)/gm)];
      const indent = Math.min(...cases.map((c) => c[1].length));
      const last = cases.filter((c) => c[1].length === indent).at(-1);
      assert.equal(last?.[2], 'default:', `${f.rel}: the switch on ${m[1]} has no default branch at its end`);
    }
  }
  assert.ok(dispatchers >= 8, `only ${dispatchers} dispatchers found: the scan is broken`);
});
