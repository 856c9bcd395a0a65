"""Peak memory of the native command line on long inputs.

    python bench/memory.py [--minutes 30 ...]

Builds a WAV of the requested length by repeating the CC0 excerpts (written in
blocks, so this script stays small too), separates it with `python -m pycore
separate`, and prints the child's peak resident memory (getrusage ru_maxrss)
and its run time. Streaming keeps the peak bounded by a few segments: it should
not grow with the length of the song.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
CC0 = REPO.parent / "shared" / "testdata" / "cc0-excerpts"
STEMS = ("drums", "bass", "other", "vocals")


def long_wav(path: Path, minutes: float) -> None:
    songs = [sum(sf.read(d / f"{s}.flac", dtype="float32")[0] for s in STEMS) for d in sorted(CC0.iterdir()) if d.is_dir()]
    loop = np.concatenate(songs)
    frames = int(minutes * 60 * 44_100)
    with sf.SoundFile(path, "w", 44_100, 2, "PCM_16") as f:
        for start in range(0, frames, len(loop)):
            f.write(loop[: min(len(loop), frames - start)])


def measure(minutes: float, work: Path) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of one CLI run on a `minutes`-long WAV."""
    song = work / f"{minutes:g}min.wav"
    long_wav(song, minutes)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pycore", "separate", str(song), "-o", str(work / "out"), "--force"],
                   cwd=REPO, check=True, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak <= before:
        print(f"  note: the peak of an earlier, larger run hides this one's ({before / 1024:.0f} MB)")
    song.unlink()
    return peak / 1024, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[30.0])
    args = parser.parse_args()
    print("native command line, default settings (four stems, wav16, overlap 0.25)")
    # Shortest first: ru_maxrss of children is a running maximum, so each longer run must exceed it to show.
    for minutes in sorted(args.minutes):
        with tempfile.TemporaryDirectory() as tmp:
            peak_mb, seconds = measure(minutes, Path(tmp))
        print(f"{minutes:6g} min input: peak RSS {peak_mb:7.0f} MB, {seconds:6.0f} s "
              f"({seconds / minutes:.1f} s per minute of audio)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
