// Compressed audio (any format the browser decodes: MP3, AAC, FLAC, Ogg,
// Opus, WAV...) -> stereo float PCM at the model's rate, 44,100 Hz.
//
// decodeAudioData resamples to its context's rate, so a 44.1 kHz
// OfflineAudioContext gives 44.1 kHz whatever the file's rate. The channel
// policy mirrors pycore/channels.py: mono is used for both sides; more than two
// channels are downmixed (front left/right plus the others at -3 dB, the LFE
// dropped, scaled so that nothing can clip).

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
