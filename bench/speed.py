"""Browser against native speed, in one run, on the same 60 s of music.

    python bench/speed.py [--seconds 60] [--browser chromium|firefox]

Builds a 60 s excerpt from ../shared/testdata/cc0-excerpts (the three songs
back to back), then:
  - native: pycore + onnxruntime separates it (before and after the browser, to
    even out a noisy machine), timing every model segment;
  - browser: the built extension in Debian's Chromium separates it through its
    popup, from a cold engine; the engine reports its cold start (Pyodide +
    numpy + model ready) and the time of every segment.
Prints seconds per 7.8 s segment for each, their ratio, the cold start, and the
bundle size. --browser firefox runs dist/firefox in Debian's firefox-esr instead
(no cross-origin isolation there, so one thread), and says whether its extension
pages are cross-origin isolated.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "e2e")]

from e2e_popup import ExtensionBrowser, start_job, wait_for_job  # noqa: E402
from models.fetch import fetch_model  # noqa: E402
from pycore.native_decode import open_audio  # noqa: E402
from pycore.onnx_runner import OnnxRunner  # noqa: E402
from pycore.separate import run_sync, separate  # noqa: E402
from pycore.stem_files import StemFiles  # noqa: E402
from tracks import TESTDATA, load_track  # noqa: E402


def excerpt(path: Path, seconds: float) -> Path:
    songs = [load_track(d)[0] for d in sorted((TESTDATA / "cc0-excerpts").iterdir()) if d.is_dir()]
    audio = np.concatenate(songs, axis=1)[:, : int(seconds * 44_100)]
    sf.write(path, audio.T, 44_100, subtype="PCM_16")
    return path


def native(song: Path, out: Path, runner: OnnxRunner) -> list[float]:
    """Seconds of each segment (model + Python), decoding to saved stems."""
    stamps = []
    run_sync(separate(open_audio(song), runner, StemFiles(out, "wav16"),
                      on_progress=lambda done, total: stamps.append(time.perf_counter())))
    return list(np.diff(stamps))


def browser(song: Path, work: Path) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = ExtensionBrowser(p, REPO / "dist" / "chrome", work)
        try:
            popup = chromium.open_popup()
            start_job(popup, [song])
            row = wait_for_job(popup, song.name, {"done", "failed", "cancelled"}, 3600)
            if row["status"] != "done":
                raise SystemExit(f"the browser job ended {row['status']}: {row['text']}")
            jobs = popup.evaluate("() => chrome.storage.local.get('jobs')")["jobs"]
            return next(j for j in jobs if j["name"] == song.name)["timings"]
        finally:
            chromium.close()


def firefox(song: Path, work: Path) -> dict:
    from e2e_firefox import FirefoxWithAddon
    from e2e_firefox import start_job as ff_start_job
    from e2e_firefox import wait_for_job as ff_wait_for_job

    ff = FirefoxWithAddon(REPO / "dist" / "firefox", work)
    try:
        ff.open_popup()
        isolated = ff.evaluate("String(self.crossOriginIsolated)", await_promise=False)
        ff_start_job(ff, [song])
        row = ff_wait_for_job(ff, song.name, {"done", "failed", "cancelled"}, 3600)
        if row["status"] != "done":
            raise SystemExit(f"the Firefox job ended {row['status']}: {row['text']}")
        jobs = json.loads(ff.evaluate("browser.storage.local.get('jobs').then((got) => JSON.stringify(got.jobs))"))
        timings = next(j for j in jobs if j["name"] == song.name)["timings"]
        return {**timings, "crossOriginIsolated": isolated}
    finally:
        ff.close()


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--browser", choices=["chromium", "firefox"], default="chromium")
    args = parser.parse_args()
    if not (REPO / "dist" / args.browser.replace("chromium", "chrome") / "manifest.json").exists():
        raise SystemExit("build the extension first: python build.py")
    runner = OnnxRunner(fetch_model())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        song = excerpt(work / "speed excerpt.wav", args.seconds)
        native_segments = native(song, work / "n1", runner)
        timings = firefox(song, work / "firefox") if args.browser == "firefox" else browser(song, work / "chromium")
        native_segments += native(song, work / "n2", runner)
    web = float(np.mean(timings["segments"]))
    nat = float(np.mean(native_segments))
    print(f"input: {args.seconds:g} s excerpt of cc0-excerpts, four stems, wav16, overlap 0.25")
    print(f"native  (onnxruntime, {os.cpu_count()} threads): {nat:6.2f} s per 7.8 s segment "
          f"({len(native_segments)} segments over two runs)")
    print(f"browser ({args.browser}, {timings['backend']}):  {web:6.2f} s per 7.8 s segment "
          f"({len(timings['segments'])} segments)")
    print(f"ratio browser / native: {web / nat:.2f}")
    if "crossOriginIsolated" in timings:
        print(f"extension pages cross-origin isolated: {timings['crossOriginIsolated']} (WASM threads need it)")
    print(f"engine cold start (Pyodide + numpy + pycore + model ready): {timings['engine']:.2f} s")
    print(f"bundle: dist/chrome {size(REPO / 'dist' / 'chrome') / 1e6:.1f} MB, "
          + ", ".join(f"{z.name} {z.stat().st_size / 1e6:.1f} MB" for z in sorted((REPO / "dist").glob("*.zip"))))
    print("timings reported by the engine: " + json.dumps(timings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
