// A fix of Signalsmith Stretch 1.3.2's AudioWorklet processor (vendor/stretch/SignalsmithStretch.mjs),
// applied in the worklet's scope as the library registers it (see stretch_worklet.js).
//
// The bug: process() gathers the stretch's input window from the list of added buffers
// with `audioSamples += count` where it means to step to the next buffer's start, and
// never advances its read position. Unless the whole song is one buffer, any window that
// is not at the very start of a buffer either reads the wrong samples or throws
// "RangeError: offset is out of bounds" (once the node has thrown it is silent for good).
// Streaming, addBuffers() chunk by chunk as the library's README offers, cannot work.
//
// The replacement process() is the library's, line for line, but for that gathering (and
// for calling its own configure()). Its time reports are the library's ['time', inputTime]
// with two more fields, which the library's handler ignores and the player reads: the
// worklet's currentTime (when that input time held: no guessing from message arrival) and
// the input time heard then (inputTime is the far end of the stretch's window, ahead of
// what is heard by its input latency plus its output latency × rate).

const NAME = 'signalsmith-stretch';

function process(inputList, outputList) {
  if (!this.wasmReady) {
    for (const output of outputList) for (const channel of output) channel.fill(0);
    return true;
  }
  if (!outputList[0]?.length) return false;

  const outputTime = currentTime + this.outputLatencySeconds;
  while (this.timeMap.length > 1 && this.timeMap[1].output <= outputTime) this.timeMap.shift();
  const seg = this.timeMap[0];

  const wasm = this.wasmModule;
  wasm._setTransposeSemitones(seg.semitones, seg.tonalityHz / sampleRate);
  wasm._setFormantSemitones(seg.formantSemitones, seg.formantCompensation);
  wasm._setFormantBase(seg.formantBaseHz / sampleRate);

  if (outputList[0].length !== this.channels) {
    this.channels = outputList[0].length;
    this.configure();
  }
  const blockSize = outputList[0][0].length;
  let memory = wasm.exports ? wasm.exports.memory.buffer : wasm.HEAP8.buffer;
  const inputs = inputList[0];
  if (!seg.active) {
    for (let c = 0; c < this.channels; c++) new Float32Array(memory, this.buffersIn[c], blockSize).fill(0);
    wasm._process(blockSize, blockSize);
  } else if (inputs?.length) {
    // live input
    for (let c = 0; c < this.channels; c++) {
      const buffer = new Float32Array(memory, this.buffersIn[c], blockSize);
      const channel = inputs[c % inputs.length];
      if (channel) buffer.set(channel);
      else buffer.fill(0);
    }
    wasm._process(blockSize, blockSize);
  } else {
    let inputTime = seg.input + (outputTime - seg.output) * seg.rate;
    const loopLength = seg.loopEnd - seg.loopStart;
    if (loopLength > 0 && inputTime >= seg.loopEnd) {
      seg.input -= loopLength;
      inputTime -= loopLength;
    }
    inputTime += this.inputLatencySeconds;
    const end = Math.round(inputTime * sampleRate);
    const length = this.bufferLength;
    const from = end - length; // the timeline sample of the window's first
    const windows = [];
    for (let c = 0; c < this.channels; c++) windows.push(new Float32Array(memory, this.buffersIn[c], length));
    // Zeros where no buffer covers the window (before the first, after the last).
    const audioEnd = this.audioBuffersEnd; // = start + the buffers' lengths
    if (from < this.audioBuffersStart || end > audioEnd) for (const w of windows) w.fill(0);
    let start = this.audioBuffersStart; // the timeline sample of this buffer's first
    for (const audio of this.audioBuffers) {
      const n = audio[0].length;
      const a = Math.max(from, start);
      const b = Math.min(end, start + n);
      if (b > a) {
        for (let c = 0; c < windows.length; c++) windows[c].set(audio[c % audio.length].subarray(a - start, b - start), a - from);
      }
      start += n;
      if (start >= end) break;
    }
    // constantly seeking, so the input buffers need not have a rate-dependent size
    wasm._seek(length, seg.rate);
    wasm._process(0, blockSize);

    this.timeIntervalCounter -= blockSize;
    if (this.timeIntervalCounter <= 0) {
      this.timeIntervalCounter = this.timeIntervalSamples;
      // + when, and the input heard then: the far end of the window less both latencies
      const heard = inputTime - this.inputLatencySeconds - this.outputLatencySeconds * seg.rate;
      this.port.postMessage(['time', inputTime, currentTime, heard]);
    }
  }

  // re-fetched in case the memory grew
  memory = wasm.exports ? wasm.exports.memory.buffer : wasm.HEAP8.buffer;
  outputList[0].forEach((channel, c) => channel.set(new Float32Array(memory, this.buffersOut[c], blockSize)));
  return true;
}

const register = globalThis.registerProcessor;
globalThis.registerProcessor = function registerProcessor(name, processorClass) {
  if (name === NAME) {
    processorClass.prototype.process = process;
    processorClass.fixed = true;
  }
  return register.call(globalThis, name, processorClass);
};
