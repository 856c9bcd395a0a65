"""Peak memory on long inputs: the extension in Chromium, and the native command line.

    python bench/memory.py                                   # the full run (hours on 2 cores)
    python bench/memory.py --extension-minutes 2 --native-minutes 2   # a quick check
    python bench/memory.py --extension-minutes 10 --native-minutes    # the extension only
    python bench/memory.py --extension-minutes 20 --native-minutes --formats wav16 flac16   # FLAC against WAV

Each input is a WAV (16-bit, 44.1 kHz stereo) of the requested length, made by
repeating the CC0 excerpts (written in blocks, so this script stays small too).

The extension (dist/chrome; built with build.py when missing): a fresh headless
Debian Chromium per input, with the extension loaded, driven through its popup
as in the end-to-end tests (four stems, wav16). Memory is the sum over the
whole Chromium process tree (the browser process and every child: renderers of
the popup and the offscreen document with its engine worker, GPU, utilities),
sampled every 0.5 s from /proc by psutil. "Idle" is the mean over 3 s with the
popup open before the job starts (engine not loaded); "peak" is the highest
sample while the job runs, from Start until its stems are saved; the number
that counts is peak minus idle. RSS counts pages shared between processes once
per process, so the RSS sum overstates; PSS (each shared page divided among
its users) is printed beside it and is the fairer total.

The native command line: `python -m pycore separate` in a child process, whose
peak resident memory (ru_maxrss) is read by a small wrapper process of its own,
so no earlier or larger run (Chromium's included) can hide it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
CC0 = REPO.parent / "shared" / "testdata" / "cc0-excerpts"
STEMS = ("drums", "bass", "other", "vocals")
MB = 1024 * 1024


def long_wav(path: Path, minutes: float) -> None:
    songs = [sum(sf.read(d / f"{s}.flac", dtype="float32")[0] for s in STEMS) for d in sorted(CC0.iterdir()) if d.is_dir()]
    loop = np.concatenate(songs)
    frames = int(minutes * 60 * 44_100)
    with sf.SoundFile(path, "w", 44_100, 2, "PCM_16") as f:
        for start in range(0, frames, len(loop)):
            f.write(loop[: min(len(loop), frames - start)])


# ---------------------------------------------------------------- native


_PEAK_OF_CHILD = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.run(sys.argv[1:], stderr=subprocess.DEVNULL).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(rc)\n"
)


def measure_native(minutes: float, work: Path) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of one CLI run on a `minutes`-long WAV."""
    song = work / f"{minutes:g}min.wav"
    long_wav(song, minutes)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_OF_CHILD, sys.executable, "-m", "pycore", "separate", str(song), "-o", str(work / "out"), "--force"],
        cwd=REPO, check=True, capture_output=True, text=True,
    )
    elapsed = time.perf_counter() - start
    song.unlink()
    return int(done.stdout.split()[-1]) / 1024, elapsed


# ---------------------------------------------------------------- extension


class TreeSampler:
    """Samples the summed RSS and PSS of a process and all its descendants."""

    def __init__(self, root_pid: int, every: float = 0.5):
        import psutil

        self._root = psutil.Process(root_pid)
        self._every = every
        self.samples: list[tuple[float, int, int]] = []  # (time, rss, pss)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> tuple[int, int]:
        import psutil

        rss = pss = 0
        for p in [self._root, *self._root.children(recursive=True)]:
            try:
                full = p.memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            rss += full.rss
            pss += getattr(full, "pss", full.rss)
        self.samples.append((time.monotonic(), rss, pss))
        return rss, pss

    def start(self) -> None:
        def loop():
            while not self._stop.wait(self._every):
                self.sample()

        self._stop.clear()
        self._thread = threading.Thread(target=loop, name="memory-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def window(self, since: float) -> list[tuple[float, int, int]]:
        return [s for s in self.samples if s[0] >= since]


def chromium_pid(profile: Path) -> int:
    """The browser process of the Chromium using `profile` (one of our descendants)."""
    import psutil

    for p in psutil.Process().children(recursive=True):
        try:
            cmd = p.cmdline()
        except psutil.NoSuchProcess:
            continue
        if any(a == f"--user-data-dir={profile}" for a in cmd) and not any(a.startswith("--type=") for a in cmd):
            return p.pid
    raise RuntimeError(f"no Chromium process with the profile {profile}")


def bundle_path() -> Path:
    given = os.environ.get("DEMIXER_E2E_BUNDLE")
    if given:
        return Path(given)
    if not (REPO / "dist" / "chrome" / "manifest.json").exists():
        subprocess.run([sys.executable, "build.py"], cwd=REPO, check=True)
    return REPO / "dist" / "chrome"


def measure_extension(playwright, minutes: float, work: Path, fmt: str = "wav16") -> dict:
    sys.path.insert(0, str(REPO / "tests"))
    from support.chromium import ExtensionBrowser, start_job, wait_for_job

    song = work / f"Long {minutes:g} min.wav"
    long_wav(song, minutes)
    root = work / f"chromium-{minutes:g}"
    root.mkdir()
    browser = ExtensionBrowser(playwright, bundle_path(), root)
    try:
        popup = browser.open_popup()
        sampler = TreeSampler(chromium_pid(browser.profile))
        time.sleep(5)  # let the browser settle before measuring idle
        t_idle = time.monotonic()
        sampler.start()
        time.sleep(3)
        idle = sampler.window(t_idle)
        t_job = time.monotonic()
        start_job(popup, [song], stems="four", fmt=fmt)
        # Generous: about 1.5 s per second of audio on a busy 2-core machine, and the engine's start.
        row = wait_for_job(popup, song.name, {"done", "failed", "cancelled", "interrupted"}, 600 + minutes * 60 * 4)
        seconds = time.monotonic() - t_job
        sampler.stop()
        if row["status"] != "done":
            raise RuntimeError(f"the {minutes:g}-minute job ended {row['status']}: {row['text']}")
        job = sampler.window(t_job)
        idle_rss = sum(s[1] for s in idle) / len(idle)
        idle_pss = sum(s[2] for s in idle) / len(idle)
        peak_rss = max(s[1] for s in job)
        peak_pss = max(s[2] for s in job)
        return {
            "idle_rss": idle_rss / MB, "peak_rss": peak_rss / MB, "idle_pss": idle_pss / MB, "peak_pss": peak_pss / MB,
            "seconds": seconds, "samples": len(job), "input_mb": song.stat().st_size / MB,
        }
    finally:
        browser.close()
        song.unlink(missing_ok=True)


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--extension-minutes", type=float, nargs="*", default=[10.0, 30.0, 60.0],
                        help="input lengths for the extension (default: 10 30 60; none to skip)")
    parser.add_argument("--native-minutes", "--minutes", type=float, nargs="*", default=[60.0, 180.0],
                        help="input lengths for the command line (default: 60 180; none to skip)")
    parser.add_argument("--formats", nargs="*", default=["wav16"],
                        help="the extension's output formats, each measured on every length (default: wav16)")
    args = parser.parse_args()

    if args.extension_minutes:
        from playwright.sync_api import sync_playwright

        print("extension in Chromium (headless, WASM), four stems: memory of the whole Chromium process tree")
        print("  input   format    idle RSS   peak RSS   peak-idle RSS |  idle PSS   peak PSS   peak-idle PSS |  time")
        with sync_playwright() as p:
            for minutes in args.extension_minutes:
                for fmt in args.formats:
                    with tempfile.TemporaryDirectory() as tmp:
                        r = measure_extension(p, minutes, Path(tmp), fmt)
                    print(f"  {minutes:5g} min {fmt:8s} {r['idle_rss']:7.0f} MB {r['peak_rss']:7.0f} MB {r['peak_rss'] - r['idle_rss']:10.0f} MB   |"
                          f" {r['idle_pss']:6.0f} MB {r['peak_pss']:7.0f} MB {r['peak_pss'] - r['idle_pss']:10.0f} MB   |"
                          f" {r['seconds']:6.0f} s ({r['seconds'] / minutes:.0f} s per minute of audio; {r['input_mb']:.0f} MB WAV)",
                          flush=True)

    if args.native_minutes:
        print("native command line, default settings (four stems, wav16, overlap 0.25)")
        for minutes in args.native_minutes:
            with tempfile.TemporaryDirectory() as tmp:
                peak_mb, seconds = measure_native(minutes, Path(tmp))
            print(f"  {minutes:5g} min input: peak RSS {peak_mb:7.0f} MB, {seconds:6.0f} s "
                  f"({seconds / minutes:.1f} s per minute of audio)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
