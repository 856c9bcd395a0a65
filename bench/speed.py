"""Browser against native speed, in one run, on the same music, per quality preset.

    python bench/speed.py [--seconds 60] [--presets fast,balanced,best] [--browser chromium|firefox]

Builds an excerpt from ../shared/testdata/cc0-excerpts (the three songs back to
back), then for each preset separates it natively (pycore + onnxruntime, the
command line's path: decoding to saved stems) and in the built extension in
Debian's Chromium (through its popup: decoding to stems saved in Downloads).
One browser serves all presets, so only its first job has a cold engine; that
cold start is printed on its own and left out of the first job's time.
Prints, per preset, seconds per minute of audio for each and their ratio, then
the cold start, the per-segment model times, the bundle size, and the most that
WebAssembly SIMD can compute per second here (bench/wasm_simd_peak.mjs).
--browser firefox runs dist/firefox in Debian's firefox-esr instead (one Firefox
per preset; no cross-origin isolation there, so one thread) and says whether its
extension pages are cross-origin isolated.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # pycore, models; the tests' support/

from support.chromium import ExtensionBrowser, start_job, wait_for_job  # noqa: E402
from models.prepare import prepared_model  # noqa: E402
from pycore.native_decode import open_audio  # noqa: E402
from pycore.onnx_runner import OnnxRunner  # noqa: E402
from pycore.separate import Options, run_sync, separate  # noqa: E402
from pycore.stem_files import StemFiles  # noqa: E402
from support.tracks import TESTDATA, load_track  # noqa: E402


def excerpt(path: Path, seconds: float) -> Path:
    songs = [load_track(d)[0] for d in sorted((TESTDATA / "cc0-excerpts").iterdir()) if d.is_dir()]
    audio = np.concatenate(songs, axis=1)[:, : int(seconds * 44_100)]
    sf.write(path, audio.T, 44_100, subtype="PCM_16")
    return path


def native(song: Path, out: Path, runner: OnnxRunner, preset: str) -> float:
    """Seconds from the file to its saved stems, as `python -m pycore separate` does it."""
    t = time.perf_counter()
    run_sync(separate(open_audio(song), runner, StemFiles(out, "wav16"), Options.preset(preset)))
    return time.perf_counter() - t


def browser_job(popup, song: Path, preset: str) -> dict:
    """One job through the popup: its wall time (queued to saved) and the engine's timings."""
    start_job(popup, [song], preset=preset)
    row = wait_for_job(popup, song.name, {"done", "failed", "cancelled"}, 3 * 3600)
    if row["status"] != "done":
        raise SystemExit(f"the browser job ended {row['status']}: {row['text']}")
    jobs = popup.evaluate("() => chrome.storage.local.get('jobs')")["jobs"]
    job = [j for j in jobs if j["name"] == song.name and j["status"] == "done"][-1]
    popup.click("#clear")  # the next job of the same song must be the only done one
    return {"wall": (job["finished"] - job["created"]) / 1000, **job["timings"]}


def firefox_job(song: Path, work: Path, preset: str) -> dict:
    """One job in a fresh Firefox: its wall time (queued to saved) and the engine's timings."""
    from support.firefox import FirefoxWithAddon
    from support.firefox import start_job as ff_start_job
    from support.firefox import wait_for_job as ff_wait_for_job

    ff = FirefoxWithAddon(REPO / "dist" / "firefox", work)
    try:
        ff.open_popup()
        isolated = ff.evaluate("String(self.crossOriginIsolated)", await_promise=False)
        ff_start_job(ff, [song], preset=preset)
        row = ff_wait_for_job(ff, song.name, {"done", "failed", "cancelled"}, 3600)
        if row["status"] != "done":
            raise SystemExit(f"the Firefox job ended {row['status']}: {row['text']}")
        jobs = json.loads(ff.evaluate("browser.storage.local.get('jobs').then((got) => JSON.stringify(got.jobs))"))
        job = next(j for j in jobs if j["name"] == song.name)
        return {"wall": (job["finished"] - job["created"]) / 1000, **job["timings"], "crossOriginIsolated": isolated}
    finally:
        ff.close()


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--presets", default="fast,balanced,best")
    parser.add_argument("--browser", choices=["chromium", "firefox"], default="chromium")
    args = parser.parse_args()
    presets = args.presets.split(",")
    bundle = REPO / "dist" / args.browser.replace("chromium", "chrome")
    if not (bundle / "manifest.json").exists():
        raise SystemExit("build the extension first: python build.py")
    runner = OnnxRunner(prepared_model())  # the model the extension ships
    minutes = args.seconds / 60
    rows, first = [], None
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        work = Path(tmp)
        song = excerpt(work / "speed excerpt.wav", args.seconds)
        popup = chromium = None
        if args.browser == "chromium":
            chromium = ExtensionBrowser(p, bundle, work / "chromium")
            popup = chromium.open_popup()
        try:
            for preset in presets:  # native and browser back to back, so both see the same machine
                nat = native(song, work / f"native-{preset}", runner, preset)
                if popup is not None:
                    job = browser_job(popup, song, preset)
                else:
                    job = firefox_job(song, work / f"firefox-{preset}", preset)
                first = first or job
                web = job["wall"] - job.get("engine", 0)
                rows.append((preset, nat / minutes, web / minutes, job))
        finally:
            if chromium is not None:
                chromium.close()
    print(f"input: {args.seconds:g} s excerpt of cc0-excerpts, four stems, wav16, end to end (file -> saved stems)")
    print(f"native: onnxruntime, {os.cpu_count()} threads; browser: {args.browser}")
    print(f"{'preset':10s} {'native s/min':>13s} {'browser s/min':>14s} {'ratio':>6s}  browser backend, model s/segment")
    for preset, nat, web, job in rows:
        model = np.mean(job.get("model_segments") or [np.nan])
        ran = job.get("device") or job.get("backend")  # "GPU: <adapter>" or "CPU: N threads"
        why = f" (GPU: {job['gpu_refused']})" if job.get("gpu_refused") else ""
        print(f"{preset:10s} {nat:13.1f} {web:14.1f} {web / nat:6.2f}  {ran}{why}, {model:.2f}")
    if "crossOriginIsolated" in first:
        print(f"extension pages cross-origin isolated: {first['crossOriginIsolated']} (WASM threads need it)")
    parts = first.get("engine_parts") or {}
    print(f"engine cold start (Pyodide + numpy + pycore + model ready, first job): {first['engine']:.2f} s"
          + (" (Python side: " + ", ".join(f"{k} {parts[k]:.2f} s" for k in ("pyodide", "numpy", "pycore") if k in parts)
             + f"; model side by side: {parts['model']:.2f} s)" if "model" in parts else ""))
    print(f"bundle: {bundle.relative_to(REPO)} {size(bundle) / 1e6:.1f} MB unpacked, "
          + ", ".join(f"{z.name} {z.stat().st_size / 1e6:.1f} MB" for z in sorted((REPO / "dist").glob("*.zip"))))
    for preset, _, _, job in rows:
        print(f"timings reported by the engine ({preset}): " + json.dumps(job))
    # The ceiling for the browser's matrix kernels here (see README, Speed).
    subprocess.run(["node", str(REPO / "bench" / "wasm_simd_peak.mjs"), "2"], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
