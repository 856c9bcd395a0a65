// The player's audio engine: every stem through ONE Signalsmith Stretch node, so the
// stems stay sample-locked whatever the speed, the transposition, the seeks and loops.
//
//   Stretch node (2n channels: stem i on 2i, 2i+1) ─► ChannelSplitter(2n)
//     ─► per stem: ChannelMerger(2) ─► GainNode (fader × mute × solo) ─┐
//                                                     master GainNode ◄┘ ─► destination
//
// The node plays from sample buffers we hand it (addBuffers), streamed from the stems'
// WAV files a few seconds ahead of the playhead and dropped behind it (dropBuffers), so
// memory stays a few MB for a song of any length. Its input timeline only grows: we keep
// the map from it to song frames as segments {inStart, songStart, length}.
//   - a seek (or a play after a pause): the new song position is appended after what was
//     fed (with a short pre-roll of the audio before it, so the stretch's analysis window
//     holds music, not silence), the node is scheduled to jump there, and everything
//     before is dropped (dropBuffers(t) to the new start: dropBuffers() without an argument
//     would reset the node's timeline to 0, making its time reports ambiguous);
//   - a loop is unrolled: after the loop's end we feed its start again (crossfaded over a
//     few ms against what follows the end, so the wrap does not click), so the wrap has no
//     gap, and a position mapped back through the segments never leaves the loop.
//   - the position: the node reports its input time (setUpdateInterval); that is the far
//     end of its analysis window, ahead of what is heard by the input latency plus the
//     output latency (× rate): stretch_fix.js's reports carry the input heard and the audio
//     clock's time then. Mapped back through the segments, it is the song position heard
//     (extrapolated with the audio clock between two reports).
// Speed: schedule({rate}), pitch kept; transposition: schedule({semitones}).

import createStretch from '../vendor/stretch/SignalsmithStretch.mjs';

// The extension's CSP forbids blob: URLs, which the library would make the worklet's module
// from: a bundled file is the module. stretch_worklet.js imports the library (in the worklet's
// scope the very same file registers the processor) with stretch_fix.js's fix of its streaming.
createStretch.moduleUrl = new URL('./stretch_worklet.js', import.meta.url).href;

const AHEAD_S = 4; // input seconds fed ahead of the playhead
const BEHIND_S = 1.5; // kept behind it, then dropped
const CHUNK_S = 1; // one read of every stem
const FIRST_S = 0.5; // the first read after a seek: small, so that a seek sounds at once
const PREROLL_S = 0.25; // fed before a seek's position: more than the stretch's window (120 ms)
const XFADE = 256; // frames crossfaded at a loop's wrap (5.8 ms)
const MIN_LOOP_S = 0.05;
const UPDATE_S = 0.02; // how often the node reports its input time
const RAMP_S = 0.01; // pause/play fades, no clicks
const SUSPEND_AFTER_MS = 1500; // a paused context is suspended: the stretch costs CPU even on silence

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class Engine {
  // stems: [{name, reader}] (reader: wav.js WavReader); frames: the song's length.
  static async create({ sampleRate, frames, stems }) {
    const ctx = new AudioContext({ sampleRate, latencyHint: 'playback' });
    if (ctx.sampleRate !== sampleRate) throw new Error(`the audio device runs at ${ctx.sampleRate} Hz, not ${sampleRate} Hz`);
    const n = stems.length;
    const node = await createStretch(ctx, { numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [2 * n] });
    return new Engine(ctx, node, frames, stems);
  }

  constructor(ctx, node, frames, stems) {
    this.ctx = ctx;
    this.node = node;
    this.frames = frames;
    this.stems = stems;
    this.sr = ctx.sampleRate;
    this.n = stems.length;

    this.master = new GainNode(ctx, { gain: 0 });
    this.master.connect(ctx.destination);
    const split = new ChannelSplitterNode(ctx, { numberOfOutputs: 2 * this.n });
    node.connect(split);
    this.gains = stems.map((_, i) => {
      const merge = new ChannelMergerNode(ctx, { numberOfInputs: 2 });
      split.connect(merge, 2 * i, 0);
      split.connect(merge, 2 * i + 1, 1);
      const gain = new GainNode(ctx, { gain: 1 });
      merge.connect(gain).connect(this.master);
      return gain;
    });

    // Where the reports lack the input heard (the library unmended): the default preset's
    // latencies, 2646 frames in and 2646 out at 44.1 kHz (node.latency() is their sum).
    this.inLat = 0;
    this.outLat = 0;
    this.ready = node.latency().then((s) => {
      this.inLat = this.outLat = (s * this.sr) / 2;
    });

    this.gen = 0; // bumped by every seek, pause, loop change: stale reads and reports are dropped
    this.segments = []; // {inStart, songStart, length}, frames, contiguous on the input timeline
    this.fed = 0; // the end of the node's input timeline (frames)
    this.nextSong = 0; // the next song frame to feed
    this.playing = false; // asked to play (play() until pause())
    this.running = false; // and the node plays from our buffers (false while a play() reads its first chunk)
    this.pausedAt = 0; // song frame: the position while not running
    this.anchorIn = 0; // input frame of the current play's start
    this.anchorSong = 0;
    this.lastIn = null; // heard input frame at the last report, and the audio clock then
    this.lastCtx = 0;
    this.pendingSchedules = 0;
    this.rate = 1;
    this.semitones = 0;
    this.loop = { start: 0, end: 0, on: false }; // frames
    this.onEnded = null;
    this.feeding = false;
    this.suspendTimer = null;
    this.reads = 0; // stats for the tests
    this.reports = 0;
    this.processorError = null;
    node.onprocessorerror = (e) => {
      this.processorError = String(e?.message ?? e?.type ?? e);
      console.error('the stretch processor failed', e);
    };
    this.peakFedAhead = 0;

    // The reports: ['time', inputTime, the worklet's currentTime then, the input heard then]
    // (stretch_fix.js adds the last two); the library's own handler keeps node.inputTime,
    // this one the player's clock.
    node.setUpdateInterval(UPDATE_S);
    node.port.addEventListener('message', (e) => {
      if (Array.isArray(e.data) && e.data[0] === 'time') this._onTime(e.data[1], e.data[2], e.data[3]);
    });
  }

  // ------------------------------------------------------------ the clock

  _onTime(inputTime, at, heardTime) {
    this.reports++;
    // A schedule() answers at once with the input time it computed (without the latencies):
    // reports are ignored until the node has taken our last schedule, then they are exact.
    if (!this.running || this.pendingSchedules > 0) return;
    const heard = typeof heardTime === 'number' ? heardTime * this.sr : inputTime * this.sr - this.inLat - this.outLat * this.rate;
    this.lastIn = Math.max(heard, this.anchorIn);
    this.lastCtx = typeof at === 'number' ? at : this.ctx.currentTime;
    if (!this.feeding) this._feed(this.gen); // timers are throttled in a background tab; the audio thread is not
  }

  _heardIn() {
    if (this.lastIn === null) return this.anchorIn;
    const dt = Math.min(Math.max(this.ctx.currentTime - this.lastCtx, -0.25), 0.25);
    return this.lastIn + dt * this.rate * this.sr;
  }

  // The song frame that input frame `x` carries.
  _songAt(x) {
    const segs = this.segments;
    if (!segs.length || x < this.anchorIn) return this.anchorSong;
    let lo = 0;
    let hi = segs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (segs[mid].inStart <= x) lo = mid;
      else hi = mid - 1;
    }
    const s = segs[lo];
    return s.songStart + Math.min(Math.max(x - s.inStart, 0), s.length);
  }

  // The song position heard now, in frames.
  positionFrames() {
    if (!this.running) return this.pausedAt;
    return this._songAt(this._heardIn());
  }

  get position() {
    return this.positionFrames() / this.sr;
  }

  get contextTime() {
    return this.ctx.currentTime;
  }

  // ------------------------------------------------------------ transport

  async play(fromSeconds) {
    const gen = ++this.gen;
    clearTimeout(this.suspendTimer);
    let song = fromSeconds === undefined ? this.positionFrames() : Math.round(fromSeconds * this.sr);
    song = Math.max(0, Math.min(song, this.frames));
    if (song >= this.frames) song = 0; // play at the end: from the start
    const loop = this.loop;
    if (loop.on && song >= loop.end) song = loop.start; // before the loop: it plays into it
    const wasRunning = this.running;
    // Until the node plays from the new position, the position is that one.
    this.playing = true;
    this.running = false;
    this.pausedAt = song;
    if (this.ctx.state !== 'running') await this.ctx.resume();
    await this.ready;
    if (gen !== this.gen) return;

    const from = Math.max(0, song - Math.round(PREROLL_S * this.sr));
    this.nextSong = from;
    const inStart = this.fed;
    // The pre-roll and a little more, before the node is told to play it.
    while (this.nextSong < song + FIRST_S * this.sr && this.nextSong < this.frames) {
      if (!(await this._readNext(gen, FIRST_S))) break;
    }
    if (gen !== this.gen) return;
    this.anchorIn = inStart + (song - from);
    this.anchorSong = song;
    this.lastIn = null;
    this.running = true;
    const now = this.ctx.currentTime;
    if (!wasRunning) {
      this.master.gain.cancelScheduledValues(now);
      this.master.gain.setValueAtTime(0, now);
      this.master.gain.linearRampToValueAtTime(1, now + RAMP_S);
    }
    this._schedule({ active: true, input: this.anchorIn / this.sr, output: now, rate: this.rate, semitones: this.semitones });
    this.node.dropBuffers(inStart / this.sr); // everything of the previous position
    this.segments = this.segments.filter((s) => s.inStart >= inStart);
    this._feed(gen);
  }

  pause() {
    this.gen++; // a play() still reading its first chunk does not start
    this.playing = false;
    if (!this.running) return;
    this.pausedAt = this.positionFrames();
    this.running = false;
    const now = this.ctx.currentTime;
    this.master.gain.cancelScheduledValues(now);
    this.master.gain.setValueAtTime(this.master.gain.value, now);
    this.master.gain.linearRampToValueAtTime(0, now + RAMP_S);
    this._schedule({ active: false, output: now + RAMP_S });
    this.suspendTimer = setTimeout(() => {
      if (this.playing) return;
      this.node.dropBuffers(this.fed / this.sr);
      this.segments = [];
      this.ctx.suspend();
    }, SUSPEND_AFTER_MS);
  }

  seek(seconds) {
    const song = Math.max(0, Math.min(Math.round(seconds * this.sr), this.frames));
    if (this.playing) return this.play(song / this.sr);
    this.gen++;
    this.pausedAt = song;
    return Promise.resolve();
  }

  setRate(rate) {
    this.rate = rate;
    if (this.running) this._schedule({ rate, output: this.ctx.currentTime });
  }

  setSemitones(semitones) {
    this.semitones = semitones;
    if (this.running) this._schedule({ semitones, output: this.ctx.currentTime });
  }

  // Linear gain of stem i (fader × mute × solo), with a 5 ms glide: instant, no zipper noise.
  setGain(i, value) {
    this.gains[i].gain.setTargetAtTime(value, this.ctx.currentTime, 0.005);
  }

  // seconds; a loop shorter than 50 ms is off.
  setLoop(startS, endS, on) {
    let start = Math.round(Math.max(0, Math.min(startS, endS)) * this.sr);
    let end = Math.round(Math.min(Math.max(startS, endS), this.frames / this.sr) * this.sr);
    start = Math.min(start, this.frames);
    end = Math.min(end, this.frames);
    const valid = end - start >= MIN_LOOP_S * this.sr;
    this.loop = { start, end, on: Boolean(on && valid) };
    if (!this.running) {
      if (this.loop.on && (this.pausedAt < start || this.pausedAt >= end)) this.pausedAt = start;
      if (this.playing) this.play(this.pausedAt / this.sr); // starting: again, with this loop
      return;
    }
    const pos = this.positionFrames();
    if (this.loop.on && (pos < start || pos >= end)) {
      this.play(start / this.sr);
    } else if (this._fedFollowsLoop()) {
      const gen = ++this.gen; // what was fed still holds: only what comes next changes
      this._feed(gen);
    } else {
      this.play(pos / this.sr); // re-fed from here (seamless but for the stretch's new analysis)
    }
  }

  get loopSeconds() {
    return { start: this.loop.start / this.sr, end: this.loop.end / this.sr, on: this.loop.on };
  }

  // Whether what is already fed ahead of the playhead is what the current loop asks for;
  // sets nextSong to where feeding goes on.
  _fedFollowsLoop() {
    const heard = this._heardIn();
    const { start, end, on } = this.loop;
    let expect = null;
    for (const s of this.segments) {
      if (s.inStart + s.length <= heard) continue;
      if (expect !== null && s.songStart !== expect) return false;
      const sEnd = s.songStart + s.length;
      if (on && s.songStart < end && sEnd > end) return false; // runs past the loop's end
      if (on && expect !== null && (s.songStart < start || s.songStart >= end)) return false;
      if (s.wrap && (!on || s.songStart !== start)) return false; // a crossfaded wrap of another loop
      expect = on && sEnd === end ? start : sEnd;
    }
    if (expect !== null) this.nextSong = expect;
    return true;
  }

  _schedule(obj) {
    this.pendingSchedules++;
    return this.node.schedule(obj).finally(() => {
      this.pendingSchedules--;
    });
  }

  // ------------------------------------------------------------ feeding

  async _feed(gen) {
    if (this.feeding) return;
    this.feeding = true;
    try {
      while (gen === this.gen && this.running) {
        const heard = this._heardIn();
        // The end of the song (no loop): stop once it is heard.
        if (!this.loop.on && this.nextSong >= this.frames && this._songAt(heard) >= this.frames) {
          this.pause();
          this.pausedAt = this.frames;
          this.onEnded?.();
          return;
        }
        const behind = heard - BEHIND_S * this.sr * Math.max(1, this.rate);
        if (this.segments.length > 1 && this.segments[1].inStart + this.segments[1].length < behind) {
          const keepFrom = this.segments.findIndex((s) => s.inStart + s.length >= behind);
          this.node.dropBuffers(this.segments[keepFrom].inStart / this.sr);
          this.segments.splice(0, keepFrom);
        }
        const ahead = this.fed - heard;
        if (ahead >= AHEAD_S * this.sr || this.nextSong >= this.frames) {
          await sleep(100);
          continue;
        }
        if (!(await this._readNext(gen, CHUNK_S))) return;
      }
    } finally {
      this.feeding = false;
      if (gen !== this.gen && this.running) this._feed(this.gen);
    }
  }

  // Reads the next chunk of every stem and hands it to the node; false when superseded.
  async _readNext(gen, seconds) {
    const { start: ls, end: le, on } = this.loop;
    let a = this.nextSong;
    const prev = this.segments[this.segments.length - 1];
    const contiguous = prev && prev.inStart + prev.length === this.fed;
    let wrap = false;
    if (on && a >= le && a > ls) {
      a = ls; // the loop's end reached: its start again
      wrap = contiguous && prev.songStart + prev.length === le;
    }
    const limit = on && a < le ? le : this.frames;
    const b = Math.min(a + Math.round(seconds * this.sr), limit);
    if (b <= a) return true;
    const reads = this.stems.map((s) => s.reader.read(a, b));
    const tails = wrap && le + XFADE <= this.frames && b - a >= XFADE ? this.stems.map((s) => s.reader.read(le, le + XFADE)) : null;
    const chunks = await Promise.all(reads);
    const after = tails && (await Promise.all(tails));
    if (gen !== this.gen) return false;
    if (after) {
      // What would have followed the loop's end fades into its start.
      for (let i = 0; i < chunks.length; i++) {
        for (let c = 0; c < 2; c++) {
          const x = chunks[i][c];
          const y = after[i][c];
          for (let k = 0; k < XFADE; k++) {
            const w = (k + 0.5) / XFADE;
            x[k] = x[k] * w + y[k] * (1 - w);
          }
        }
      }
    }
    const channels = chunks.flat();
    this.segments.push({ inStart: this.fed, songStart: a, length: b - a, wrap: Boolean(after) });
    this.fed += b - a;
    this.nextSong = b;
    this.reads++;
    this.node.addBuffers(channels, channels.map((c) => c.buffer)); // transferred, not copied
    this.peakFedAhead = Math.max(this.peakFedAhead, (this.fed - this._heardIn()) / this.sr);
    return true;
  }

  close() {
    this.gen++;
    this.playing = this.running = false;
    clearTimeout(this.suspendTimer);
    return this.ctx.close();
  }
}
