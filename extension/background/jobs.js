// The job state machine, as plain functions over the job list (no browser APIs, so
// node's tests run it as it is). The service worker calls them inside its update(),
// which loads the list from storage, lets one of these change it, and saves it.
//
//   queued ──► running ──► saving ──► done
//     │           │  └──► cancelling ──► cancelled
//     │           └──► failed             (a failure while saving fails the job too)
//     └──► cancelled                       running/saving/cancelling ──► interrupted ──(retry)──► queued
//
// A job: {id, key (its song in the inbox), name, size, settings, status, stage, detail,
// created, started, finished, done, total, eta, etaAt, error, warnings, folder, downloads, retry}.
// A job's stems go into the library under the job's id (lib/library.js); folder is null for
// a job done without saving to Downloads (settings.save 'off').

export const ACTIVE = new Set(['queued', 'running', 'cancelling', 'saving']);
export const FINISHED = new Set(['done', 'failed', 'cancelled', 'interrupted']);
const KEEP_FINISHED = 30; // finished jobs shown in the popup; older ones are forgotten

export const byId = (jobs, id) => jobs.find((j) => j.id === id);

// The list as it is kept: every active job and the last KEEP_FINISHED finished ones, in order.
export function trim(jobs) {
  const finished = jobs.filter((j) => !ACTIVE.has(j.status)).slice(-KEEP_FINISHED);
  return jobs.filter((j) => ACTIVE.has(j.status) || finished.includes(j));
}

// One queued job per song, with the (already validated) settings.
export function enqueue(jobs, files, settings, now, newId = () => crypto.randomUUID()) {
  for (const f of files) {
    jobs.push({
      id: newId(),
      key: f.key,
      name: String(f.name),
      size: f.size,
      source: f.source === 'tab' ? 'tab' : 'file',
      settings: { ...settings },
      status: 'queued',
      stage: 'waiting',
      created: now,
      done: 0,
      total: 0,
    });
  }
}

// The next queued job, now running, when none runs; else null. The caller starts it.
export function nextToRun(jobs, now) {
  if (jobs.some((j) => j.status === 'running' || j.status === 'cancelling')) return null;
  const job = jobs.find((j) => j.status === 'queued');
  if (!job) return null;
  Object.assign(job, { status: 'running', stage: 'starting', detail: '', started: now, done: 0, total: 0 });
  return job;
}

// What the caller must do for a cancel: 'forget-song' (it was queued), 'stop-engine'
// (it runs), 'discard-downloads' (it was saving), or null (nothing to cancel).
export function cancel(jobs, id, now) {
  const job = byId(jobs, id);
  if (!job) return null;
  if (job.status === 'queued') {
    Object.assign(job, { status: 'cancelled', finished: now });
    return 'forget-song';
  }
  if (job.status === 'running') {
    job.status = 'cancelling';
    return 'stop-engine';
  }
  if (job.status === 'saving') {
    Object.assign(job, { status: 'cancelled', finished: now });
    return 'discard-downloads';
  }
  return null;
}

// A job that was being cancelled ends cancelled, not failed.
export function fail(jobs, id, error, now) {
  const job = byId(jobs, id);
  if (!job) return;
  const wasCancelling = job.status === 'cancelling';
  Object.assign(job, { status: wasCancelling ? 'cancelled' : 'failed', error: wasCancelling ? '' : error, finished: now });
}

const working = (job) => job && (job.status === 'running' || job.status === 'cancelling');

// Seconds left: the measured pace of this job, else the pace of the last jobs (stats).
export function eta(job, stats, now) {
  const left = Math.max(0, job.total - job.done);
  if (job.done > 0 && job.separatingSince) return ((now - job.separatingSince) / 1000 / job.done) * left;
  if (stats.secondsPerSegment && job.total) return stats.secondsPerSegment * left;
  return null;
}

export function stage(jobs, msg, stats, now) {
  const job = byId(jobs, msg.id);
  if (!working(job)) return;
  job.stage = msg.stage;
  job.detail = msg.detail || '';
  if (msg.stage === 'separating') {
    Object.assign(job, { separatingSince: now, done: msg.done || 0, total: msg.total || 0, backend: msg.backend, device: msg.device });
    Object.assign(job, { eta: eta(job, stats, now), etaAt: now });
  }
}

export function progress(jobs, msg, stats, now) {
  const job = byId(jobs, msg.id);
  if (!working(job)) return;
  Object.assign(job, { done: msg.done, total: msg.total });
  if (msg.device) Object.assign(job, { backend: msg.backend, device: msg.device }); // a GPU that failed is now the CPU
  Object.assign(job, { eta: eta(job, stats, now), etaAt: now });
  // The pace of segments, smoothed, for the next job's first estimate.
  if (msg.seconds) stats.secondsPerSegment = stats.secondsPerSegment ? 0.7 * stats.secondsPerSegment + 0.3 * msg.seconds : msg.seconds;
}

// The engine has the stems, in the library: 'save' them to Downloads, or 'release' them (the
// job was cancelled meanwhile, or is gone, or its settings say not to save: it is done then).
export function finish(jobs, msg, now) {
  const job = byId(jobs, msg.id);
  if (!job) return 'release';
  if (job.status === 'cancelling') {
    Object.assign(job, { status: 'cancelled', finished: now });
    return 'release';
  }
  Object.assign(job, {
    status: 'saving',
    stage: 'saving',
    done: job.total,
    eta: 0,
    warnings: msg.result?.warnings || [],
    frames: msg.result?.frames,
    timings: msg.timings,
    ...(msg.timings?.device ? { backend: msg.timings.backend, device: msg.timings.device, gpuRefused: msg.timings.gpu_refused, gpuFailed: Boolean(msg.timings.gpu_failed) } : {}),
  });
  if (job.settings?.save === 'off') {
    Object.assign(job, { status: 'done', stage: 'done', finished: now, folder: null });
    return 'release';
  }
  return 'save';
}

// The downloads of a saving job have started, into `folder`; false if it is no longer saving.
export function saving(jobs, id, folder, downloads) {
  const job = byId(jobs, id);
  if (!job || job.status !== 'saving') return false;
  Object.assign(job, { folder, downloads });
  return true;
}

// Each download's latest {state, error} (states: download id -> state): 'done' when all are
// complete, 'failed' when one broke, null while they run or when the job is no longer saving.
export function downloadsChanged(jobs, id, states, now) {
  const job = byId(jobs, id);
  if (!job || job.status !== 'saving') return null;
  for (const d of job.downloads) Object.assign(d, states.get(d.id) || {});
  const broken = job.downloads.find((d) => d.state === 'interrupted');
  if (broken) {
    Object.assign(job, { status: 'failed', error: `Saving ${broken.file ?? broken.stem} failed (${broken.error || 'interrupted'}).`, finished: now });
    return 'failed';
  }
  if (job.downloads.every((d) => d.state === 'complete')) {
    Object.assign(job, { status: 'done', stage: 'done', finished: now });
    return 'done';
  }
  return null;
}

// Jobs cut short (the browser closed, the engine died) are shown as interrupted, never
// dropped; those whose song is still in the inbox (`waiting`: its keys) can be retried.
export function interrupt(jobs, ids, why, waiting, now) {
  for (const j of jobs) {
    if (!ids.has(j.id) || !ACTIVE.has(j.status)) continue;
    if (j.status === 'cancelling') Object.assign(j, { status: 'cancelled', finished: now });
    else Object.assign(j, { status: 'interrupted', error: why, retry: waiting.has(j.key), finished: now });
  }
}

export class RetryError extends Error {}

// To the end of the queue, as a fresh job of the same song and settings.
export function retry(jobs, id, waiting, now) {
  const job = byId(jobs, id);
  if (!job || job.status !== 'interrupted') return;
  if (!waiting.has(job.key)) {
    job.retry = false;
    throw new RetryError('The song is no longer in the inbox: choose the file again.');
  }
  jobs.splice(jobs.indexOf(job), 1);
  jobs.push(Object.assign(job, { status: 'queued', stage: 'waiting', error: '', retry: false, done: 0, total: 0, created: now }));
}

export function clearFinished(jobs) {
  const keep = jobs.filter((j) => ACTIVE.has(j.status));
  jobs.splice(0, jobs.length, ...keep);
}

// Running jobs whose engine page has been gone for a while: they will never report.
export const stuck = (jobs, now, graceMs = 15000) =>
  jobs.filter((j) => (j.status === 'running' || j.status === 'cancelling') && now - j.started > graceMs);
