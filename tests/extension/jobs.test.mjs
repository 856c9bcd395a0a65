// The job state machine (extension/background/jobs.js): queued → running → saving →
// done, and cancel, fail, interrupt and retry from each state where they apply.
import assert from 'node:assert/strict';
import test from 'node:test';

import * as jobs from '../../extension/background/jobs.js';

const SETTINGS = { stems: 'four', preset: 'balanced', format: 'wav16', clip: 'rescale' };
let ids = 0;
const newId = () => `job${++ids}`;

function queue(names, now = 1000) {
  const list = [];
  jobs.enqueue(list, names.map((name, i) => ({ key: `key-${name}`, name, size: 10 * i })), SETTINGS, now, newId);
  return list;
}

test('songs are queued one job each, with their settings copied whole', () => {
  const list = queue(['a.wav', 'b.mp3']);
  assert.equal(list.length, 2);
  assert.deepEqual(list.map((j) => [j.name, j.status, j.stage]), [['a.wav', 'queued', 'waiting'], ['b.mp3', 'queued', 'waiting']]);
  assert.deepEqual(list[0].settings, SETTINGS);
  assert.notEqual(list[0].settings, SETTINGS); // a copy: a later change of the popup's choice cannot reach it
});

test('one job runs at a time, in the order they came', () => {
  const list = queue(['a', 'b']);
  const first = jobs.nextToRun(list, 2000);
  assert.equal(first.name, 'a');
  assert.equal(first.status, 'running');
  assert.equal(first.started, 2000);
  assert.equal(jobs.nextToRun(list, 2001), null); // a is running
  jobs.fail(list, first.id, 'Separation failed: boom', 3000);
  assert.deepEqual([first.status, first.error, first.finished], ['failed', 'Separation failed: boom', 3000]);
  assert.equal(jobs.nextToRun(list, 3001).name, 'b'); // a failed job never stops the next one
});

test('a job goes running → saving → done as its downloads complete', () => {
  const list = queue(['song']);
  const job = jobs.nextToRun(list, 0);
  jobs.stage(list, { id: job.id, stage: 'separating', done: 0, total: 4 }, {}, 10);
  jobs.progress(list, { id: job.id, done: 1, total: 4, seconds: 5 }, {}, 5010);
  assert.equal(job.done, 1);
  const result = { warnings: ['mono input'], frames: 44100 };
  assert.equal(jobs.finish(list, { id: job.id, result, timings: { separate: 9 } }, 9000), 'save');
  assert.deepEqual([job.status, job.stage, job.done, job.eta, job.warnings, job.frames], ['saving', 'saving', 4, 0, ['mono input'], 44100]);
  const downloads = [{ stem: 'vocals', file: 'vocals.wav', id: 7, state: 'in_progress' }, { stem: 'drums', file: 'drums.wav', id: 8, state: 'in_progress' }];
  assert.equal(jobs.saving(list, job.id, 'song', downloads), true);
  assert.equal(jobs.downloadsChanged(list, job.id, new Map([[7, { state: 'complete' }]]), 9500), null);
  assert.equal(job.status, 'saving');
  assert.equal(jobs.downloadsChanged(list, job.id, new Map([[8, { state: 'complete' }]]), 9600), 'done');
  assert.deepEqual([job.status, job.folder, job.finished], ['done', 'song', 9600]);
});

test('a job set not to save to Downloads is done once its stems are in the library', () => {
  const list = [];
  jobs.enqueue(list, [{ key: 'k', name: 'song.mp3', size: 1 }], { stems: 'four', save: 'off' }, 0, () => 'id-1');
  const job = jobs.nextToRun(list, 0);
  assert.equal(job.source, 'file');
  assert.equal(jobs.finish(list, { id: job.id, result: { frames: 10 } }, 50), 'release');
  assert.deepEqual([job.status, job.stage, job.folder, job.finished], ['done', 'done', null, 50]);
});

test('a tab capture is a job whose source says so', () => {
  const list = [];
  jobs.enqueue(list, [{ key: 'k', name: 'Tab', size: 0, source: 'tab' }], { stems: 'four' }, 0, () => 'id-2');
  assert.equal(list[0].source, 'tab');
});

test('a download that breaks fails the job, naming the file', () => {
  const list = queue(['song']);
  const job = jobs.nextToRun(list, 0);
  jobs.finish(list, { id: job.id, result: {} }, 1);
  jobs.saving(list, job.id, 'song', [{ stem: 'bass', file: 'bass.wav', id: 3, state: 'in_progress' }]);
  assert.equal(jobs.downloadsChanged(list, job.id, new Map([[3, { state: 'interrupted', error: 'FILE_NO_SPACE' }]]), 2), 'failed');
  assert.equal(job.status, 'failed');
  assert.equal(job.error, 'Saving bass.wav failed (FILE_NO_SPACE).');
});

test('cancel: a queued job forgets its song, a running one stops the engine, a saving one drops its downloads', () => {
  const list = queue(['running', 'queued']);
  const running = jobs.nextToRun(list, 0);
  const queued = list[1];
  assert.equal(jobs.cancel(list, queued.id, 5), 'forget-song');
  assert.equal(queued.status, 'cancelled');
  assert.equal(jobs.cancel(list, running.id, 6), 'stop-engine');
  assert.equal(running.status, 'cancelling');
  assert.equal(jobs.nextToRun(list, 7), null); // nothing starts while the engine stops
  // The engine may still finish before it sees the cancel: the stems are released, not saved.
  assert.equal(jobs.finish(list, { id: running.id, result: {} }, 8), 'release');
  assert.equal(running.status, 'cancelled');
  assert.equal(jobs.cancel(list, running.id, 9), null); // nothing left to cancel

  const more = queue(['saving']);
  const saving = jobs.nextToRun(more, 0);
  jobs.finish(more, { id: saving.id, result: {} }, 1);
  assert.equal(jobs.cancel(more, saving.id, 2), 'discard-downloads');
  assert.equal(saving.status, 'cancelled');
  assert.equal(jobs.saving(more, saving.id, 'x', []), false); // its downloads, if they start now, are discarded
});

test('a failure while cancelling ends the job cancelled, without an error', () => {
  const list = queue(['x']);
  const job = jobs.nextToRun(list, 0);
  jobs.cancel(list, job.id, 1);
  jobs.fail(list, job.id, 'Cancelled', 2);
  assert.deepEqual([job.status, job.error], ['cancelled', '']);
});

test('interrupted jobs are kept, with Retry only while their song is in the inbox', () => {
  const list = queue(['kept', 'lost', 'waiting']);
  const kept = jobs.nextToRun(list, 0);
  jobs.finish(list, { id: kept.id, result: {} }, 1); // saving
  const lost = list[1];
  lost.status = 'running';
  jobs.interrupt(list, new Set([kept.id, lost.id]), 'Interrupted: the browser was closed while this job ran.', new Set(['key-kept']), 5);
  assert.deepEqual([kept.status, kept.retry], ['interrupted', true]);
  assert.deepEqual([lost.status, lost.retry], ['interrupted', false]);
  assert.equal(list[2].status, 'queued'); // not named: untouched

  jobs.retry(list, kept.id, new Set(['key-kept']), 9);
  assert.equal(list.at(-1), kept); // to the end of the queue
  assert.deepEqual([kept.status, kept.stage, kept.error, kept.done, kept.created], ['queued', 'waiting', '', 0, 9]);
  assert.throws(() => jobs.retry(list, lost.id, new Set(), 10), jobs.RetryError);
  assert.equal(lost.retry, false);
});

test('finished jobs can be cleared; the list keeps every active job and the last 30 finished', () => {
  const list = queue(Array.from({ length: 40 }, (_, i) => `s${i}`));
  for (const j of list.slice(0, 35)) Object.assign(j, { status: 'done' });
  const kept = jobs.trim(list);
  assert.equal(kept.length, 35);
  assert.equal(kept[0].name, 's5'); // the oldest finished ones go first
  assert.ok(kept.slice(-5).every((j) => j.status === 'queued'));
  jobs.clearFinished(list);
  assert.deepEqual(list.map((j) => j.status), Array(5).fill('queued'));
});

test('the ETA follows the job\'s own pace, else the last jobs\' pace', () => {
  const stats = {};
  const list = queue(['song']);
  const job = jobs.nextToRun(list, 0);
  jobs.stage(list, { id: job.id, stage: 'separating', done: 0, total: 10 }, stats, 1000);
  assert.equal(job.eta, null); // no pace known yet
  jobs.progress(list, { id: job.id, done: 2, total: 10, seconds: 4 }, stats, 9000);
  assert.equal(job.eta, 32); // 8 s for 2 segments, 8 to go
  assert.equal(stats.secondsPerSegment, 4);
  jobs.progress(list, { id: job.id, done: 3, total: 10, seconds: 6 }, stats, 13000);
  assert.equal(Math.round(stats.secondsPerSegment * 100) / 100, 4.6); // smoothed: 0.7 old + 0.3 new

  const next = queue(['next']);
  const second = jobs.nextToRun(next, 20000);
  jobs.stage(next, { id: second.id, stage: 'separating', done: 0, total: 5 }, stats, 20000);
  assert.equal(Math.round(second.eta * 100) / 100, 23); // 5 segments at the last jobs' 4.6 s
  assert.equal(jobs.eta({ done: 5, total: 5, separatingSince: 0 }, stats, 1000), 0);
});

test('messages about a job that is not running are ignored', () => {
  const list = queue(['song']);
  const job = list[0];
  jobs.progress(list, { id: job.id, done: 3, total: 4 }, {}, 5);
  jobs.stage(list, { id: job.id, stage: 'separating' }, {}, 5);
  jobs.progress(list, { id: 'nobody', done: 3, total: 4 }, {}, 5);
  assert.deepEqual([job.status, job.stage, job.done], ['queued', 'waiting', 0]);
  assert.equal(jobs.finish(list, { id: 'nobody' }, 5), 'release');
});

test('jobs whose engine has been silent past the grace time are stuck', () => {
  const list = queue(['a', 'b']);
  const a = jobs.nextToRun(list, 0);
  assert.deepEqual(jobs.stuck(list, 10000), []);
  assert.deepEqual(jobs.stuck(list, 16000), [a]);
});
