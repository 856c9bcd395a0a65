// The tab capture's tap (an AudioWorklet, on the audio thread): copies what the
// tab plays, untouched, in blocks of BLOCK frames to the offscreen document.
// Raw float PCM rather than MediaRecorder: no lossy codec between the tab and
// the model. The context runs at the stream's own rate, so nothing is resampled here.

const BLOCK = 8192;

class CaptureTap extends AudioWorkletProcessor {
  constructor() {
    super();
    this.fresh();
    this.port.onmessage = ({ data }) => {
      if (data === 'flush') {
        this.send();
        this.port.postMessage({ flushed: true });
      }
    };
  }

  fresh() {
    this.left = new Float32Array(BLOCK);
    this.right = new Float32Array(BLOCK);
    this.used = 0;
    this.peak = 0;
  }

  send() {
    if (this.used === 0) return;
    const left = this.left.slice(0, this.used);
    const right = this.right.slice(0, this.used);
    this.port.postMessage({ left, right, peak: this.peak }, [left.buffer, right.buffer]);
    this.fresh();
  }

  process(inputs) {
    const input = inputs[0];
    // No channels means the source is silent for now: that is time passing too.
    const n = input.length ? input[0].length : 128;
    const l = input[0];
    const r = input[1] ?? input[0]; // (the node up-mixes to two channels; guard anyway)
    for (let i = 0; i < n; i++) {
      const a = l ? l[i] : 0;
      const b = r ? r[i] : 0;
      this.left[this.used] = a;
      this.right[this.used] = b;
      this.used++;
      const m = Math.max(Math.abs(a), Math.abs(b));
      if (m > this.peak) this.peak = m;
      if (this.used === BLOCK) this.send();
    }
    return true;
  }
}

registerProcessor('demixer-capture-tap', CaptureTap);
