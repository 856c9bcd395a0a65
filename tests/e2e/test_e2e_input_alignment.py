"""Every input container, decoded by the extension's own decoder in the real browser, starts
where the song starts and lasts as long as the song.

Eight seconds of real music (the sum of Lithium's four stems, from 10 s) are encoded by ffmpeg
into each container Demixer takes; each file is decoded in the extension's popup page by
offscreen/audio_decode.js's decodeToWavFile (the function the offscreen document runs on a
song from the inbox: decodeAudioData, the WebCodecs MP3 path, and the WebM/Matroska Opus
correction of webm_opus.js), into an OPFS file, and the float WAV it writes is read back here.
It is compared with ffmpeg's decode of the same file and with the original signal: the offset
found by cross-correlation must be under one sample, and the length the input's, within one
(Vorbis in WebM and ffmpeg's AAC have known end padding: see END_PADDED and the AAC note).

Why: Chromium's decodeAudioData drops 24 samples (at 48 kHz) too many from the start of
WebM/Matroska Opus (it trims by the container's millisecond timestamps, not by the Opus
pre-skip), so stems of a .webm came out half a millisecond early; webm_opus.js puts them back.
Firefox decodes those files exactly, and there the correction must stay off.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from support.audio import RATE, load_clip, mixture, write_song

SECONDS, START = 8, 10
FRAMES = SECONDS * RATE
MAX_LAG = 2000  # samples either way searched by the cross-correlation
# A small, fast video track for the containers that carry one (the decoders must skip it).
VIDEO = ["-f", "lavfi", "-i", f"testsrc=size=160x120:rate=15:duration={SECONDS}"]
WITH_VIDEO = ["-map", "0:a", "-map", "1:v"]
OPUS = ["-c:a", "libopus", "-b:a", "96k"]
VORBIS = ["-c:a", "libvorbis", "-q:a", "3"]
AAC = ["-c:a", "aac", "-b:a", "128k"]

# name -> what ffmpeg is given after `-i wav.wav`
CONTAINERS = {
    "wav.wav": None,  # written by soundfile: the original, as 32-bit float
    "flac44.flac": ["-c:a", "flac"],
    "flac48.flac": ["-ar", "48000", "-c:a", "flac"],
    "mp3.mp3": ["-c:a", "libmp3lame", "-b:a", "160k"],  # the WebCodecs path (mp3_stream.js)
    "vorbis.ogg": VORBIS,
    "opus.ogg": OPUS,
    "opus_audio.webm": OPUS,
    "opus_vp9.webm": VIDEO + WITH_VIDEO + OPUS + ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "100k"],
    "opus.mkv": OPUS,
    "vorbis.webm": VORBIS,
    "aac.m4a": AAC,
    "aac_h264.mp4": VIDEO + WITH_VIDEO + AAC + ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p"],
}
MATROSKA_OPUS = {"opus_audio.webm", "opus_vp9.webm", "opus.mkv"}  # what webm_opus.js corrects in Chromium
# Vorbis in WebM/Matroska ends late in every decoder (ffmpeg, Chromium, Firefox alike): an
# encoder's last Vorbis block is padded past the song's end, and the container must say how much
# of it to drop. Ogg does (the last page's granule position: ffmpeg reports discard_padding=96
# on the .ogg's last packet here), but ffmpeg's WebM muxer writes no DiscardPadding for Vorbis
# (it does for Opus), so the padding is decoded as audio: +96 samples for these 8 s (+88 for
# 10 s at -q:a 5). Its length is checked against ffmpeg's instead, and must stay under half a
# long block (1024) above the input's.
END_PADDED = {"vorbis.webm"}
# AAC: the lengths are checked against the original signal, never against ffmpeg's decode.
# ffmpeg 5.1 drops the encoder's 1024 priming samples (the MP4 edit list's start) but keeps the
# padding that fills the last 1024-sample AAC frame past the edit list's end: 480 extra samples
# for these 8 s (344 for 10 s). The browsers apply the whole edit list and end on the song's end.


# ---------------------------------------------------------------- the files and ffmpeg's decode


@pytest.fixture(scope="module")
def songs(lithium, tmp_path_factory) -> dict:
    """{'original': float32 [FRAMES, 2], 'files': {name: path}} made once for both browsers."""
    if not shutil.which("ffmpeg") or not shutil.which("ffprobe"):
        pytest.fail("ffmpeg is missing: apt-get install -y ffmpeg (tests/run.sh does)", pytrace=False)
    folder = tmp_path_factory.mktemp("containers")
    original = mixture(load_clip(lithium, seconds=SECONDS, start=START)).astype(np.float32)
    wav = write_song(folder / "wav.wav", original, subtype="FLOAT")
    files = {"wav.wav": wav}
    t = time.monotonic()
    for name, args in CONTAINERS.items():
        if args is None:
            continue
        files[name] = folder / name
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-threads", "1", "-i", str(wav), *args, str(files[name])],
            check=True,
        )
    sizes = ", ".join(f"{n} {p.stat().st_size // 1024} KB" for n, p in files.items())
    print(f"\nencoded {len(files) - 1} files in {time.monotonic() - t:.1f} s: {sizes}")
    return {"original": original, "files": files}


def ffmpeg_decode(path: Path) -> tuple[int, np.ndarray, np.ndarray]:
    """(the codec's rate, ffmpeg's decode at that rate [n, 2], the same brought to 44.1 kHz [m, 2])."""
    rate = int(
        subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=sample_rate", "-of", "csv=p=0", str(path)],
            check=True, capture_output=True, text=True,
        ).stdout.split()[0]
    )
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-threads", "1", "-i", str(path), "-map", "0:a", "-f", "f32le", "-ac", "2", "-"],
        check=True, capture_output=True,
    ).stdout
    native = np.frombuffer(raw, "<f4").reshape(-1, 2)
    if rate == RATE:
        return rate, native, native
    # 48 kHz codecs (Opus, the 48 kHz FLAC): the browser decodes into a 44.1 kHz context; ffmpeg's
    # decode is brought there by pycore's zero-delay band-limited resampler, as the engine would.
    from pycore.resample import Resampler

    r = Resampler(rate, RATE)
    m = r.output_length(len(native))
    a, b = r.input_span(0, m)
    padded = np.zeros((2, b - a), np.float32)  # zeros beyond both ends
    padded[:, -a : -a + len(native)] = native.T
    return rate, native, r.process(padded, a, 0, m).T


# ---------------------------------------------------------------- alignment


def offset(x: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(lag of x against ref in samples, + = x late, to a hundredth of a sample; normalized
    correlation at the integer lag). Mono (mean of the channels); the fractional part is the
    maximum of the band-limited cross-correlation, sought by golden section within one sample."""
    x, ref = x.mean(axis=1).astype(np.float64), ref.mean(axis=1).astype(np.float64)
    n = 1 << int(np.ceil(np.log2(len(x) + len(ref) + 1)))
    cross = np.conj(np.fft.rfft(ref, n)) * np.fft.rfft(x, n)
    c = np.fft.irfft(cross, n)
    lags = np.r_[0:MAX_LAG, -MAX_LAG:0]
    best = int(lags[np.argmax(np.r_[c[:MAX_LAG], c[-MAX_LAG:]])])
    corr = float(c[best % n] / np.sqrt(np.dot(x, x) * np.dot(ref, ref)))
    w = 2j * np.pi * np.arange(len(cross)) / n
    weight = np.where((np.arange(len(cross)) == 0) | (np.arange(len(cross)) == n // 2), 1.0, 2.0)

    def at(d: float) -> float:
        return float(np.real(np.sum(weight * cross * np.exp(w * d))))

    lo, hi = best - 1.0, best + 1.0
    g = (np.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = at(a), at(b)
    while hi - lo > 0.002:
        if fa > fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = at(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = at(b)
    return (lo + hi) / 2, corr


def check_decodes(browser_name: str, decoded: dict, songs: dict, correction_allowed: bool) -> None:
    """Prints the table, then asserts every row. The WebM/Matroska Opus correction must be on
    exactly where webm_opus.js's probe found the browser trimming by timestamp (Chromium), and
    never where `correction_allowed` is False (Firefox decodes those files exactly)."""
    original = songs["original"]
    problems, rows = [], []
    header = (f"{'file':18} {'rate':>5} {'path':>8} {'pad':>4} | {'len-in':>6} {'ffmpeg len-in':>13} | "
              f"{'vs ffmpeg':>9} {'corr':>7} | {'vs input':>8} {'corr':>7}")
    for name in CONTAINERS:
        got = decoded[name]
        if "error" in got:
            rows.append(f"{name:18} not decoded: {got['error']}")
            problems.append(f"{name}: {browser_name} did not decode it: {got['error']}")
            continue
        codec_rate, _, ff44 = ffmpeg_decode(songs["files"][name])
        ext = got["audio"]
        off_ff, corr_ff = offset(ext, ff44)
        off_in, corr_in = offset(ext, original)
        path = "stream" if got["streamed"] else "whole"
        rows.append(
            f"{name:18} {codec_rate:5} {path:>8} {got['pad']:4} | {len(ext) - FRAMES:+6d} {len(ff44) - FRAMES:+13d} | "
            f"{off_ff:+9.2f} {corr_ff:7.4f} | {off_in:+8.2f} {corr_in:7.4f}"
        )
        if got["rate"] != RATE or got["channels"] != 2:
            problems.append(f"{name}: the WAV is {got['rate']} Hz, {got['channels']} channels (expected {RATE} Hz, 2)")
        if abs(off_ff) > 1:
            problems.append(f"{name}: {browser_name}'s decode is {abs(off_ff):.2f} samples "
                            f"{'late' if off_ff > 0 else 'early'} against ffmpeg's (more than 1)")
        if abs(off_in) > 1:
            problems.append(f"{name}: {browser_name}'s decode is {abs(off_in):.2f} samples "
                            f"{'late' if off_in > 0 else 'early'} against the input (more than 1)")
        if name in END_PADDED:
            if abs(len(ext) - len(ff44)) > 1 or not 0 <= len(ext) - FRAMES < 1024:
                problems.append(f"{name}: {browser_name}'s decode has {len(ext)} frames, ffmpeg's {len(ff44)}, "
                                f"the input {FRAMES} (the same end padding as ffmpeg's was expected)")
        elif abs(len(ext) - FRAMES) > 1:
            problems.append(f"{name}: {browser_name}'s decode has {len(ext)} frames, the input {FRAMES}")
        if corr_ff < 0.99:
            problems.append(f"{name}: {browser_name}'s decode does not match ffmpeg's (correlation {corr_ff:.4f})")
        if name in MATROSKA_OPUS:
            expected = got["trims"] and correction_allowed
            if (got["pad"] > 0) != expected:
                problems.append(f"{name}: the WebM/Matroska Opus correction is {'on' if got['pad'] else 'off'} in "
                                f"{browser_name} (pad {got['pad']}, probe says the browser trims by timestamp: "
                                f"{got['trims']}); it should be {'on' if expected else 'off'}")
        elif got["pad"]:
            problems.append(f"{name}: {got['pad']} zeros put in front of a file that is not WebM/Matroska Opus")
    trims = next(iter(decoded.values())).get("trims")
    print(f"\n{browser_name}: the extension's decodeToWavFile, at {RATE} Hz, against ffmpeg's decode and the input "
          f"({FRAMES} frames); offsets in samples (+ = late), pad = zeros put in front by webm_opus.js "
          f"(its probe: this browser trims Matroska Opus by timestamp: {trims})")
    print(header)
    print("\n".join(rows))
    assert not problems, f"{browser_name}:\n  " + "\n  ".join(problems)


# ---------------------------------------------------------------- the decoder, in the page

INPUT_ID = "e2e-alignment-input"
OPFS_DIR = "e2e-alignment"  # a folder of the test's own, beside the extension's inbox

ADD_INPUT = f"""(() => {{
  const input = Object.assign(document.createElement('input'), {{ type: 'file', id: '{INPUT_ID}', multiple: true, hidden: true }});
  document.body.append(input);
  return true;
}})()"""

# The song is streamed into OPFS as the popup does into the inbox, opened again as a File (as the
# offscreen document opens it), decoded by decodeToWavFile into another OPFS file, and that
# WAV comes back as base64. The probe and the pad are asked of webm_opus.js for the table only.
DECODE = f"""async ({{ index, name }}) => {{
  const at = (path) => new URL(path, location.href).href;
  const {{ decodeToWavFile }} = await import(at('/offscreen/audio_decode.js'));
  const {{ HEAD_BYTES, browserTrimsByTimestamp, correction, isMatroska }} = await import(at('/offscreen/webm_opus.js'));
  const picked = document.getElementById('{INPUT_ID}').files[index];
  if (!picked || picked.name !== name) throw new Error('file ' + index + ' is ' + (picked && picked.name) + ', not ' + name);
  const root = await navigator.storage.getDirectory();
  const dir = await root.getDirectoryHandle('{OPFS_DIR}', {{ create: true }});
  const song = await dir.getFileHandle(name, {{ create: true }});
  await picked.stream().pipeTo(await song.createWritable());
  const file = await song.getFile();
  const target = await dir.getFileHandle(name + '.decoded.wav', {{ create: true }});
  let result;
  try {{
    result = await decodeToWavFile(file, target);
  }} catch (e) {{
    return {{ error: String(e && e.message || e) }};
  }}
  const wav = await target.getFile();
  const wavBase64 = await new Promise((resolve, reject) => {{
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result.slice(reader.result.indexOf(',') + 1));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(wav);
  }});
  const head = new Uint8Array(await file.slice(0, HEAD_BYTES).arrayBuffer());
  const trims = await browserTrimsByTimestamp();
  const pad = isMatroska(head) ? correction(head, 44100, trims).pad : 0;
  await dir.removeEntry(name);
  await dir.removeEntry(name + '.decoded.wav');
  return {{ wav: wavBase64, frames: result.frames, streamed: result.streamed, trims, pad }};
}}"""

CLEAN_UP = f"""(async () => {{
  const root = await navigator.storage.getDirectory();
  await root.removeEntry('{OPFS_DIR}', {{ recursive: true }}).catch(() => {{}});
  return true;
}})()"""


def parse(answer: dict, name: str) -> dict:
    """The page's answer, with its float WAV parsed: {audio [n, 2], rate, channels, streamed, pad}."""
    if "error" in answer:
        return answer
    raw = base64.b64decode(answer["wav"])
    info = sf.info(io.BytesIO(raw))
    assert raw[:4] == b"RIFF" and info.subtype == "FLOAT", (name, raw[:4], info.subtype)
    audio, rate = sf.read(io.BytesIO(raw), dtype="float32", always_2d=True)
    assert len(audio) == answer["frames"], (name, len(audio), answer["frames"])  # header = what it returned
    return {"audio": audio, "rate": rate, "channels": audio.shape[1], "streamed": answer["streamed"],
            "pad": answer["pad"], "trims": answer["trims"]}


# ---------------------------------------------------------------- the tests


def test_every_container_decodes_aligned_in_chromium(popup, songs):
    names = list(CONTAINERS)
    popup.evaluate(ADD_INPUT)
    popup.set_input_files(f"#{INPUT_ID}", [str(songs["files"][n]) for n in names])
    t = time.monotonic()
    try:
        decoded = {n: parse(popup.evaluate(DECODE, {"index": i, "name": n}), n) for i, n in enumerate(names)}
    finally:
        popup.evaluate(CLEAN_UP)
    print(f"\nChromium decoded {len(names)} files in {time.monotonic() - t:.1f} s")
    # Chromium 156 trims by timestamp, so the WebM/MKV Opus rows carry the correction; a Chromium
    # that no longer does gets none, and the same offsets must hold without it.
    check_decodes("Chromium", decoded, songs, correction_allowed=True)


def test_every_container_decodes_aligned_in_firefox(firefox_bundle, songs, tmp_path):
    from support.firefox import FirefoxWithAddon

    names = list(CONTAINERS)
    ff = FirefoxWithAddon(firefox_bundle, tmp_path / "firefox")
    try:
        ff.open_popup()
        ff.evaluate(ADD_INPUT, await_promise=False)
        ff.set_files(f"#{INPUT_ID}", [songs["files"][n] for n in names])
        t = time.monotonic()
        decoded = {}
        for i, n in enumerate(names):
            args = json.dumps({"index": i, "name": n})
            decoded[n] = parse(json.loads(ff.evaluate(f"({DECODE})({args}).then(JSON.stringify)")), n)
        ff.evaluate(CLEAN_UP)
        print(f"\nFirefox decoded {len(names)} files in {time.monotonic() - t:.1f} s")
    except BaseException:
        print((ff.root / "firefox.log").read_text(errors="replace")[-4000:])
        raise
    finally:
        ff.close()
    check_decodes("Firefox", decoded, songs, correction_allowed=False)
