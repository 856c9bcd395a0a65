"""Every stem format: the size of a song's four stems, and what encoding costs, natively and in the browser.

    python bench/formats.py                       # a 4-minute song natively, and 60 s of it in Chromium
    python bench/formats.py --minutes 4 --browser-seconds 0     # natively only

Natively the song is separated once and its stems go to every format at the same time (one sink
per format); each sink's own time (quantising, resampling for Opus, libsndfile's encoders) is
measured apart from the separation's. In Chromium one job per format runs on the same input
(the extension as shipped, dist/chrome), and the engine reports the time spent in the encoders.
The input repeats the CC0 excerpts of ../shared/testdata (as bench/memory.py does).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "bench")]

from memory import bundle_path, long_wav  # noqa: E402

from models.prepare import prepared_model  # noqa: E402
from pycore import formats  # noqa: E402
from pycore.native_decode import open_audio  # noqa: E402
from pycore.onnx_runner import OnnxRunner  # noqa: E402
from pycore.separate import run_sync, separate  # noqa: E402
from pycore.stem_files import StemFiles  # noqa: E402

MB = 1_000_000


class TimedTee:
    """The same stems into one StemFiles per format, timing each."""

    def __init__(self, sinks: dict[str, StemFiles]):
        self.sinks, self.seconds = sinks, {name: 0.0 for name in sinks}

    def _each(self, method: str, *args) -> None:
        for name, sink in self.sinks.items():
            t = time.perf_counter()
            getattr(sink, method)(*args)
            self.seconds[name] += time.perf_counter() - t

    def begin(self, stems, frames):
        self._each("begin", stems, frames)

    def write(self, block):
        self._each("write", block)

    def finish(self):
        self._each("finish")

    def abort(self):
        self._each("abort")


def native(song: Path, work: Path, minutes: float) -> None:
    sinks = {name: StemFiles(work / name, name, "rescale", song=song.stem) for name in formats.FORMATS}
    tee = TimedTee(sinks)
    t = time.perf_counter()
    run_sync(separate(open_audio(song), OnnxRunner(prepared_model()), tee))
    total = time.perf_counter() - t
    separation = total - sum(tee.seconds.values())
    print(f"natively, {minutes:g} minutes of music, four stems, balanced: separation {separation:.1f} s "
          "(the model and the core, without any encoding)")
    print(f"  {'format':10s} {'four stems':>11s} {'vs WAV 16':>9s} {'encoding':>9s} {'share of a job':>15s}")
    wav16 = sum(p.stat().st_size for p in sinks["wav16"].paths)
    for name, sink in sinks.items():
        size = sum(p.stat().st_size for p in sink.paths)
        share = tee.seconds[name] / (separation + tee.seconds[name])
        print(f"  {name:10s} {size / MB:8.1f} MB {size / wav16:8.0%} {tee.seconds[name]:8.1f} s {share:14.1%}", flush=True)


def browser(song: Path, work: Path, names: list[str]) -> None:
    from playwright.sync_api import sync_playwright
    from support.chromium import ExtensionBrowser, start_job, wait_for_job

    print(f"in Chromium (the extension, WASM), {song.stem}: one job per format, warm engine after the first")
    # The model's time drifts from job to job on a shared machine by more than encoding costs, so
    # besides the encoders' own time the job's time outside the model is compared with WAV's.
    print(f"  {'format':10s} {'job':>8s} {'model':>8s} {'encoding':>9s} {'share':>7s} {'not model':>10s} {'vs WAV 16':>10s}")
    baseline = None
    with sync_playwright() as p:
        chromium = ExtensionBrowser(p, bundle_path(), work / "chromium")
        try:
            popup = chromium.open_popup()
            for i, name in enumerate(["wav16", *names]):  # the first job warms the engine and is not counted
                copy = work / f"{song.stem} {i} {name}.wav"
                copy.write_bytes(song.read_bytes())
                start_job(popup, [copy], stems="four", fmt=name)
                row = wait_for_job(popup, copy.name, {"done", "failed", "cancelled"}, 3600)
                if row["status"] != "done":
                    raise SystemExit(f"{name}: {row['text']}")
                job = next(j for j in popup.evaluate("() => chrome.storage.local.get('jobs')")["jobs"] if j["name"] == copy.name)
                if i == 0:
                    continue
                wall = (job["finished"] - job["created"]) / 1000
                timings = job["timings"]
                encode = timings.get("encode", 0.0)
                model = sum(timings.get("model_segments", []))
                rest = wall - model
                baseline = baseline if baseline is not None else (rest if name == "wav16" else None)
                versus = f"{(rest - baseline) / wall:+9.1%}" if baseline is not None else ""
                print(f"  {name:10s} {wall:6.1f} s {model:6.1f} s {encode:7.2f} s {encode / wall:6.1%} {rest:8.1f} s {versus}", flush=True)
        finally:
            chromium.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=4.0, help="length of the native run's song (default 4)")
    parser.add_argument("--browser-seconds", type=float, default=60.0, help="length of the browser's input (0: skip)")
    parser.add_argument("--formats", nargs="*", default=["wav16", "flac16", "mp3-320", "mp3-v0", "opus"],
                        help="formats for the browser run, the first the baseline (default: wav16 flac16 mp3-320 mp3-v0 opus)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.minutes:
            song = work / "Four minutes.wav"
            long_wav(song, args.minutes)
            native(song, work / "native", args.minutes)
        if args.browser_seconds:
            clip = work / "A minute.wav"
            long_wav(clip, args.browser_seconds / 60)
            browser(clip, work, args.formats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
