"""Peak memory of the command line's input and output path, without the model, on very long inputs.

    python bench/input_memory.py [--hours 3] [--rate 48000] [--keep-wav]

A full 3-hour separation takes hours; everything in it that could grow with the
song's length is outside the model, so this runs exactly that part in a child
process and prints its peak RSS (the child's getrusage ru_maxrss), beside a 1-minute input
for comparison: open and decode (pycore.native_decode, at a rate that needs the
resampler), the statistics pass, every model window read in the separator's
order, and the stems written through StemFiles with rescaling (float scratch,
then the in-place transcode to 16-bit). The model's own memory is onnxruntime's
and does not depend on the length (bench/memory.py measures the whole CLI).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import sys, time
from pathlib import Path
import numpy as np
from pycore.native_decode import open_audio
from pycore.separate import Options, _Pass, _read_window, _triangle, mix_statistics, pass_starts
from pycore.model_contract import SEGMENT
from pycore.stem_files import StemFiles

path, out = Path(sys.argv[1]), Path(sys.argv[2])
t = time.perf_counter()
source = open_audio(path)
mean, std = mix_statistics(source)
t_stats = time.perf_counter() - t
stride = int(0.75 * SEGMENT)
p = _Pass(0, source.frames, stride, _triangle())
sink = StemFiles(out / "song", "wav16")
sink.begin(("vocals", "instrumental"), source.frames)
for i, offset in enumerate(p.offsets):
    start, chunk = p.window(offset)
    window = _read_window(source, start, mean, std)  # what the model would get
    n = (p.offsets[i + 1] if i + 1 < len(p.offsets) else source.frames) - offset
    keep = window[:, offset - start : offset - start + n] * std + mean
    sink.write(np.stack([keep * 0.5, keep * 2.0]))  # a stem beyond full scale, so the rescale path runs
sink.finish()
import resource
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
print(f"frames {source.frames}, windows {len(p.offsets)}, stats pass {t_stats:.0f} s, "
      f"total {time.perf_counter() - t:.0f} s; {'; '.join(sink.messages())}")
"""


def write_wav(path: Path, seconds: float, rate: int) -> None:
    """A long 16-bit stereo WAV of tones and noise, written in blocks (this script stays small too)."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    frames = int(seconds * rate)
    block = rate * 60
    with sf.SoundFile(path, "w", rate, 2, "PCM_16") as f:
        for start in range(0, frames, block):
            n = min(block, frames - start)
            t = (start + np.arange(n)) / rate
            tone = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * rng.standard_normal(n)
            f.write(np.stack([tone, 0.8 * tone], axis=1).astype(np.float32))


def measure(seconds: float, rate: int, work: Path, keep: bool) -> tuple[float, str, float]:
    song = work / f"{seconds / 60:g}min.wav"
    write_wav(song, seconds, rate)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(song), str(work / "out")], cwd=REPO,
                          capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - start
    peak_kb, detail = proc.stdout.strip().split("\n", 1)  # the child's own peak: exact for each run
    if not keep:
        song.unlink()
    for stem in (work / "out" / "song").glob("*"):
        stem.unlink()
    return int(peak_kb) / 1024, detail, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=3.0)
    parser.add_argument("--rate", type=int, default=48_000, help="input sample rate (48000: through the resampler)")
    parser.add_argument("--keep-wav", action="store_true")
    args = parser.parse_args()
    print(f"command line input/output path without the model, {args.rate} Hz 16-bit stereo input, two stems wav16")
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in (60.0, args.hours * 3600):
            peak, detail, elapsed = measure(seconds, args.rate, Path(tmp), args.keep_wav)
            print(f"{seconds / 60:6g} min input: peak RSS {peak:6.0f} MB, {elapsed:5.0f} s  ({detail})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
