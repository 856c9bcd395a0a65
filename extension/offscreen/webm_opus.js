// Opus in WebM/Matroska, decoded by decodeAudioData, starts a few samples late in Chromium.
//
// Chromium (seen in 156) trims, after decoding, every sample whose timestamp falls before
// zero on the container's timeline (media/filters/audio_file_reader.cc, "Trim buffers that
// start before the zero start time"). For Matroska Opus that timeline is the block
// timestamps (in TimestampScale units: 1 ms from ffmpeg and libwebm) minus the CodecDelay
// rounded to that unit, so 6.5 ms of codec delay becomes -7 ms and 0.5 ms more than the
// OpusHead pre-skip is dropped. ffmpeg, Firefox and the Opus spec drop exactly the pre-skip.
// Those samples are gone, so as many zeros are put back in front: everything after lines up
// with the input again (the first half millisecond becomes silence). A tiny probe decoded
// once tells whether this browser trims so at all; elsewhere nothing is changed.
//
// correction(bytes, rate, trimsByTimestamp) -> {pad, exactPad, extra48, info}
//   bytes: the start of the file, through its first audio block (256 KB is plenty, a video
//   track included); rate: the decoding context's rate. pad: zeros to prepend at `rate`.

export const HEAD_BYTES = 256 * 1024;
export const isMatroska = (head) => head.length >= 4 && head[0] === 0x1a && head[1] === 0x45 && head[2] === 0xdf && head[3] === 0xa3;

const ID = {
  EBML: 0x1a45dfa3, DocType: 0x4282, Segment: 0x18538067, Info: 0x1549a966, TimestampScale: 0x2ad7b1,
  Tracks: 0x1654ae6b, TrackEntry: 0xae, TrackNumber: 0xd7, TrackType: 0x83, CodecID: 0x86,
  CodecPrivate: 0x63a2, CodecDelay: 0x56aa, SeekPreRoll: 0x56bb,
  Cluster: 0x1f43b675, Timestamp: 0xe7, SimpleBlock: 0xa3, BlockGroup: 0xa0, Block: 0xa1,
};

function vint(b, p, keepMarker) {
  const first = b[p];
  if (first === undefined || first === 0) return null;
  let len = 1;
  while (!(first & (0x80 >> (len - 1)))) len++;
  if (p + len > b.length) return null;
  let v = keepMarker ? first : first & (0xff >> len);
  let allOnes = v === (0xff >> len);
  for (let i = 1; i < len; i++) {
    v = v * 256 + b[p + i];
    if (b[p + i] !== 0xff) allOnes = false;
  }
  return { value: !keepMarker && allOnes ? -1 : v, len };
}

function* elements(b, start, end) {
  let p = start;
  while (p < end) {
    const id = vint(b, p, true);
    if (!id) return;
    const size = vint(b, p + id.len, false);
    if (!size) return;
    const data = p + id.len + size.len;
    const unknown = size.value < 0;
    const stop = unknown ? end : Math.min(end, data + size.value);
    yield { id: id.value, data, end: stop, unknown, size: size.value };
    if (unknown) return; // only masters (Segment, Cluster) have unknown sizes; the caller descends
    p = data + size.value;
  }
}

const uint = (b, s, e) => { let v = 0; for (let i = s; i < e; i++) v = v * 256 + b[i]; return v; };
const text = (b, s, e) => String.fromCharCode(...b.subarray(s, e)).replace(/\0+$/, '');
// av_rescale_q rounding (AV_ROUND_NEAR_INF): halves away from zero.
const roundHalfAway = (x) => Math.sign(x) * Math.round(Math.abs(x));

// Header facts of a WebM/Matroska file, or null if it is not one.
export function parseMatroska(b) {
  let docType = null;
  const out = { docType, timestampScale: 1e6, tracks: [], firstBlock: {} };
  let segment = null;
  for (const el of elements(b, 0, b.length)) {
    if (el.id === ID.EBML) {
      for (const c of elements(b, el.data, el.end)) if (c.id === ID.DocType) out.docType = text(b, c.data, c.end);
    } else if (el.id === ID.Segment) { segment = el; break; }
  }
  if (!out.docType || !segment) return null;
  let clusterTs = null;
  const stack = [[segment.data, segment.end]];
  // Depth-first over Segment > Cluster > BlockGroup; Info and Tracks parsed in place.
  const walk = (start, end) => {
    for (const el of elements(b, start, end)) {
      switch (el.id) {
        case ID.Info:
          for (const c of elements(b, el.data, el.end)) if (c.id === ID.TimestampScale) out.timestampScale = uint(b, c.data, c.end);
          break;
        case ID.Tracks:
          for (const t of elements(b, el.data, el.end)) {
            if (t.id !== ID.TrackEntry) continue;
            const tr = { codecDelay: 0, seekPreRoll: 0 };
            for (const c of elements(b, t.data, t.end)) {
              if (c.id === ID.TrackNumber) tr.number = uint(b, c.data, c.end);
              else if (c.id === ID.TrackType) tr.type = uint(b, c.data, c.end);
              else if (c.id === ID.CodecID) tr.codec = text(b, c.data, c.end);
              else if (c.id === ID.CodecDelay) tr.codecDelay = uint(b, c.data, c.end);
              else if (c.id === ID.SeekPreRoll) tr.seekPreRoll = uint(b, c.data, c.end);
              else if (c.id === ID.CodecPrivate) tr.codecPrivate = b.subarray(c.data, c.end);
            }
            out.tracks.push(tr);
          }
          break;
        case ID.Cluster:
          if (walk(el.data, el.end)) return true;
          break;
        case ID.Timestamp:
          clusterTs = uint(b, el.data, el.end);
          break;
        case ID.BlockGroup:
          if (walk(el.data, el.end)) return true;
          break;
        case ID.SimpleBlock:
        case ID.Block: {
          const tn = vint(b, el.data, false);
          const rel = new DataView(b.buffer, b.byteOffset + el.data + tn.len, 2).getInt16(0);
          if (!(tn.value in out.firstBlock) && clusterTs !== null) out.firstBlock[tn.value] = clusterTs + rel;
          const audio = out.tracks.find((t) => t.type === 2);
          if (audio && audio.number in out.firstBlock) return true; // enough
          break;
        }
      }
    }
    return false;
  };
  walk(segment.data, segment.end);
  return out;
}

export function correction(bytes, rate, trimsByTimestamp = true) {
  const none = (info) => ({ pad: 0, exactPad: 0, extra48: 0, info });
  if (!trimsByTimestamp) return none('browser keeps pre-skip only');
  const m = parseMatroska(bytes);
  if (!m) return none('not Matroska');
  const a = m.tracks.find((t) => t.type === 2);
  if (!a || a.codec !== 'A_OPUS') return none(`Matroska, audio codec ${a && a.codec}: no correction`);
  const head = a.codecPrivate;
  const isHead = head && head.length >= 19 && text(head, 0, 8) === 'OpusHead';
  const preSkip = isHead ? head[10] | (head[11] << 8) : 0;
  const first = m.firstBlock[a.number];
  if (first === undefined) return none('first audio block not in the bytes given');
  const scale = m.timestampScale; // ns per tick
  const delayTicks = roundHalfAway(a.codecDelay / scale); // ffmpeg matroskadec: codec_delay_in_track_tb
  const pts0Ticks = first - delayTicks; // first packet's pts as ffmpeg reports it
  const pts0Us = roundHalfAway((pts0Ticks * scale) / 1000); // Chromium's TimeDelta (microseconds)
  // Chromium drops max(preSkip, -pts0) samples at 48 kHz; ffmpeg drops preSkip.
  const extra48 = Math.max(0, Math.round((-pts0Us * 48000) / 1e6) - preSkip);
  const exactPad = (extra48 * rate) / 48000;
  return {
    pad: Math.round(exactPad), exactPad, extra48,
    info: `${m.docType} Opus: TimestampScale ${scale} ns, CodecDelay ${a.codecDelay} ns (${delayTicks} ticks), ` +
      `SeekPreRoll ${a.seekPreRoll} ns, pre-skip ${preSkip}, first block ${first} ticks -> pts ${pts0Us} us`,
  };
}

// 60 ms of Opus in WebM (ffmpeg: CodecDelay 6.5 ms, first block pts -7 ms): 2880 frames at 48 kHz
// when pre-skip alone is dropped, 2856 when the browser trims by timestamp.
export const PROBE = 'GkXfo59ChoEBQveBAULygQRC84EIQoKEd2VibUKHgQRChYECGFOAZwEAAAAAAAKfEU2bdLpNu4tTq4QVSalmU6yBoU27i1OrhBZUrmtTrIHGTbuMU6uEElTDZ1OsggEwTbuMU6uEHFO7a1OsggKJ7AEAAAAAAABZAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAVSalmoCrXsYMPQkBNgIRMYXZmV0GETGF2ZkSJiEBRAAAAAAAAFlSua+WuAQAAAAAAAFzXgQFzxYgAAAAAAAAAAZyBACK1nIN1bmSIgQCGhkFfT1BVU1aqg2MuoFa7hATEtACDgQLhkZ+BArWIQOdwAAAAAABiZIEQY6KTT3B1c0hlYWQBAjgBgLsAAAAAABJUw2fSc3PPY8CLY8WIAAAAAAAAAAFnyJlFo4dFTkNPREVSRIeMTGF2YyBsaWJvcHVzZ8iiRaOIRFVSQVRJT05Eh5QwMDowMDowMC4wNjgwMDAwMDAAAB9DtnVA/OeBAKPOgQAAgHiBp11sfkDmAAAKP2RM/ee0WTMmT1bxXb3Io+5XpWXLdWOufb7yfZ58bHIyQg0fvNU3GaiXpxgw8gW9dX0ktMgeOSbVoap1HtADo7iBABWAeJ9nAef/g17yqJ0oc5JPTlXgKMfBHILU7eeQq44ipcF9zx4uRLBCX8fjlHf/nVCmoOYemKO6gQApgHiaspJTqkhKBEK8GJnCYfN93c/C9DZY6N0R6jvHVoZmX1lPdzGxpoYqcq6AGcJUF5KcpWgmEqCxoaiBAD0AeINr3wbtFqFD4VkLB9vOcjKv94BkEHg/Lgozr0byVNq30GIVdaKEAM3+YBxTu2uRu4+zgQC3iveBAfGCAYfwgQM=';
let probeResult = null;
export function browserTrimsByTimestamp() {
  probeResult ??= (async () => {
    const bytes = Uint8Array.from(atob(PROBE), (c) => c.charCodeAt(0));
    const ctx = new OfflineAudioContext({ numberOfChannels: 1, length: 1, sampleRate: 48000 });
    const n = (await ctx.decodeAudioData(bytes.buffer)).length;
    return n < 2880 - 12; // 2856 on Chromium 156; 2880 on Firefox 153 / ffmpeg
  })().catch(() => false);
  return probeResult;
}
