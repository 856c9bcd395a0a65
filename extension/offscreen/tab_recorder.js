// Records the audio of a captured tab in the offscreen document (Chromium's
// tabCapture): getUserMedia with the stream id the service worker obtained,
// played back so the user keeps hearing the tab, and tapped as raw float PCM
// at the stream's own sample rate (capture_worklet.js). Stopping writes the
// recording as a 32-bit float WAV into the inbox, where it becomes a job like
// any file: decoding it resamples once, to 44,100 Hz.

import * as inbox from '../lib/inbox.js';

const LEVEL_EVERY_MS = 150;

let current = null; // one recording at a time

export const isRecording = () => current !== null;

// Starts recording. onLevel({level, seconds}) reports the peak since the last
// report; onEnd(result) is called once, whatever stops the recording (stop(),
// the length limit, or the tab's track ending because the tab was closed).
export async function startRecording(streamId, { maxSeconds, onLevel, onEnd }) {
  if (current) throw new Error('a capture is already running');
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { mandatory: { chromeMediaSource: 'tab', chromeMediaSourceId: streamId } },
    video: false,
  });
  const [track] = stream.getAudioTracks();
  const rate = track.getSettings().sampleRate;
  const context = new AudioContext(rate ? { sampleRate: rate } : {});
  try {
    await context.audioWorklet.addModule(new URL('capture_worklet.js', import.meta.url));
  } catch (e) {
    track.stop();
    await context.close();
    throw e;
  }
  const source = context.createMediaStreamSource(stream);
  // Two channels, 'speakers' up-mixing: a mono tab lands on both sides, stereo is left as it is.
  const tap = new AudioWorkletNode(context, 'demixer-capture-tap', {
    numberOfInputs: 1,
    numberOfOutputs: 1,
    channelCount: 2,
    channelCountMode: 'explicit',
    channelInterpretation: 'speakers',
  });
  source.connect(tap);
  tap.connect(context.destination); // silent; keeps the tap pulled
  source.connect(context.destination); // capturing mutes the tab: play it back

  const rec = {
    rate: context.sampleRate,
    chunks: [], // [{left, right}]
    frames: 0, // recorded
    seen: 0, // recorded, plus the digital silence before the tab's first sound
    peak: 0,
    levelPeak: 0,
    lastLevel: 0,
    limit: Math.round(maxSeconds * context.sampleRate),
    ending: null,
  };
  current = rec;

  const finish = (reason) => {
    if (!rec.ending) rec.ending = end(reason);
    return rec.ending;
  };

  const end = async (reason) => {
    const flushed = new Promise((resolve) => {
      tap.port.addEventListener('message', ({ data }) => data.flushed && resolve());
      setTimeout(resolve, 1000); // a closed context flushes nothing: do not wait for it
    });
    tap.port.postMessage('flush');
    await flushed;
    tap.port.onmessage = null;
    for (const t of stream.getTracks()) t.stop();
    source.disconnect();
    tap.disconnect();
    await context.close().catch(() => {});
    current = null;
    try {
      const blob = wavFloat32(rec.chunks, rec.frames, rec.rate);
      rec.chunks = [];
      const key = rec.frames > 0 ? await inbox.put(blob) : null;
      const result = {
        reason,
        key,
        frames: rec.frames,
        rate: rec.rate,
        seconds: rec.frames / rec.rate,
        captured: rec.seen / rec.rate,
        peak: rec.peak,
        bytes: blob.size,
      };
      onEnd(result);
      return result;
    } catch (e) {
      const result = { reason, error: `The recording could not be kept: ${e?.message ?? e}` };
      onEnd(result);
      return result;
    }
  };

  tap.port.onmessage = ({ data }) => {
    if (!data.left) return;
    let { left, right } = data;
    rec.seen += left.length;
    if (rec.frames === 0) {
      // Until the tab's sound arrives the stream carries exact zeros (the
      // capture starting up, or the music not started yet): not worth keeping.
      let first = 0;
      while (first < left.length && left[first] === 0 && right[first] === 0) first++;
      left = left.subarray(first);
      right = right.subarray(first);
    }
    if (rec.frames + left.length > rec.limit) {
      const keep = Math.max(0, rec.limit - rec.frames);
      left = left.subarray(0, keep);
      right = right.subarray(0, keep);
    }
    if (left.length) {
      rec.chunks.push({ left, right });
      rec.frames += left.length;
      rec.peak = Math.max(rec.peak, data.peak);
      rec.levelPeak = Math.max(rec.levelPeak, data.peak);
    }
    const now = performance.now();
    if (now - rec.lastLevel >= LEVEL_EVERY_MS) {
      onLevel({ level: rec.levelPeak, seconds: rec.seen / rec.rate });
      rec.levelPeak = 0;
      rec.lastLevel = now;
    }
    if (rec.frames >= rec.limit) finish('limit');
  };
  tap.port.start();
  // The track ends when the tab goes away (closed, or its renderer gone).
  track.addEventListener('ended', () => finish('closed'));
  rec.stop = finish;
  return { rate: rec.rate };
}

// Stops the recording; resolves with its result (see startRecording's onEnd).
export function stopRecording(reason = 'stopped') {
  if (!current) return Promise.resolve(null);
  return current.stop(reason);
}

// 32-bit float stereo WAV (WAVE_FORMAT_IEEE_FLOAT) as a Blob, interleaved chunk
// by chunk so that no single buffer holds the whole recording twice.
function wavFloat32(chunks, frames, rate) {
  const dataBytes = frames * 2 * 4;
  const head = new DataView(new ArrayBuffer(44));
  const ascii = (at, s) => [...s].forEach((c, i) => head.setUint8(at + i, c.charCodeAt(0)));
  ascii(0, 'RIFF');
  head.setUint32(4, 36 + dataBytes, true);
  ascii(8, 'WAVE');
  ascii(12, 'fmt ');
  head.setUint32(16, 16, true);
  head.setUint16(20, 3, true); // IEEE float
  head.setUint16(22, 2, true);
  head.setUint32(24, rate, true);
  head.setUint32(28, rate * 8, true);
  head.setUint16(32, 8, true);
  head.setUint16(34, 32, true);
  ascii(36, 'data');
  head.setUint32(40, dataBytes, true);
  const parts = [head.buffer];
  for (const { left, right } of chunks) {
    const inter = new Float32Array(left.length * 2);
    for (let i = 0; i < left.length; i++) {
      inter[2 * i] = left[i];
      inter[2 * i + 1] = right[i];
    }
    parts.push(inter);
  }
  return new Blob(parts, { type: 'audio/wav' });
}
