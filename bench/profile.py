"""Where one segment's time goes: the model by operator, natively and in the browser, and the Python side.

    python bench/profile.py

1. onnxruntime's profiler on one real segment (after a warm-up run), natively
   (the onnxruntime package, 2 threads) and in Chromium (onnxruntime-web's WASM
   backend in the extension's own model worker, which prints its profile to the
   console), summed by operator type.
2. The Python side of a segment inside Pyodide (STFT, iSTFT, blending, WAV
   encoding), timed in node, whose V8 and WebAssembly engine are Chromium's.
Run `python build.py` first.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # pycore, models; the tests' support/

from support.chromium import EXTENSION_ID, ExtensionBrowser  # noqa: E402
from models.prepare import prepared_model  # noqa: E402
from pycore.separate import model_inputs  # noqa: E402
from support.tracks import TESTDATA, load_track  # noqa: E402

BUNDLE = REPO / "dist" / "chrome"


def segment() -> tuple[np.ndarray, np.ndarray]:
    mix = load_track(TESTDATA / "cc0-excerpts" / "2.Lithium")[0][:, 5 * 44_100 : 5 * 44_100 + 343_980]
    mono = mix.mean(axis=0)
    return model_inputs(((mix - mono.mean()) / mono.std()).astype(np.float32))


def stage_count() -> int:
    return len(json.loads(prepared_model().read_text())["stages"])


def by_op(events: list[dict]) -> tuple[dict[str, float], float]:
    """Seconds per operator type in the last segment (its stages' model runs), and their wall time."""
    runs = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])[-stage_count():]
    ops: dict[str, float] = defaultdict(float)
    for e in events:
        ts = e.get("ts", -1)
        if e.get("cat") == "Node" and "op_name" in e.get("args", {}) and any(r["ts"] <= ts <= r["ts"] + r["dur"] for r in runs):
            ops[e["args"]["op_name"]] += e["dur"] / 1e6
    return dict(ops), sum(r["dur"] for r in runs) / 1e6


def native_profile(wave, spec) -> tuple[dict[str, float], float]:
    from pycore.onnx_runner import OnnxRunner

    with tempfile.TemporaryDirectory() as tmp:
        runner = OnnxRunner(prepared_model(), threads=2, profile_prefix=str(Path(tmp) / "native"))
        for _ in range(2):
            runner.run(wave, spec)
        events = [e for f in runner.end_profiling() for e in json.loads(Path(f).read_text())]
    return by_op(events)


def browser_profile(wave, spec) -> tuple[dict[str, float], float]:
    from playwright.sync_api import sync_playwright

    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        chromium = ExtensionBrowser(p, BUNDLE, Path(tmp))
        try:
            page = chromium.context.new_page()
            page.on("console", lambda m: lines.append(m.text))
            page.goto(f"chrome-extension://{EXTENSION_ID}/popup/popup.html")
            page.evaluate(
                """([wave, spec]) => {
                  const w = new Worker('../engine/model_worker.js', {type: 'module'});
                  self.profileState = [];
                  let runs = 0;
                  const floats = (b64) => new Float32Array(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer);
                  const run = () => w.postMessage({type: 'engine:run-model', seq: 2 + runs, wave: floats(wave), spec: floats(spec)});
                  w.onmessage = ({data}) => {
                    self.profileState.push(data.type === 'model:error' ? 'error: ' + data.message : data.type);
                    if (data.type === 'model:loaded') run();
                    else if (data.type === 'model:result' && ++runs < 2) run();
                    else if (data.type === 'model:result') w.postMessage({type: 'engine:end-profiling', seq: 99});
                  };
                  w.postMessage({type: 'engine:load-model', seq: 1, threads: navigator.hardwareConcurrency, gpu: false, profile: true});
                }""",
                [base64.b64encode(wave.tobytes()).decode(), base64.b64encode(spec.tobytes()).decode()],
            )
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                state = page.evaluate("() => self.profileState")
                if "model:profiled" in state or any(s.startswith("error") for s in state):
                    break
                time.sleep(1)
            time.sleep(2)  # the last console lines
            if "model:profiled" not in state:
                raise SystemExit(f"the browser profile did not finish: {state}")
        finally:
            chromium.close()
    events = []
    for line in lines:
        line = line.strip().rstrip(",")
        if line.startswith("{") and line.endswith("}"):
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return by_op(events)


def python_side() -> dict[str, float]:
    sys.path.insert(0, str(REPO))
    import build

    out = subprocess.run(
        ["node", str(REPO / "bench" / "pyodide_side.mjs"), str(build.pyodide_dir()), str(build.numpy_wheel()), str(REPO)],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    if not (BUNDLE / "manifest.json").exists():
        raise SystemExit("build the extension first: python build.py")
    wave, spec = segment()
    native, native_total = native_profile(wave, spec)
    web, web_total = browser_profile(wave, spec)
    print(f"one 7.8 s segment, the shipped model; native onnxruntime 2 threads: {native_total:.2f} s, "
          f"onnxruntime-web WASM in Chromium ({web_total:.2f} s)")
    print(f"{'operator':24s} {'native s':>9s} {'browser s':>10s} {'ratio':>6s} {'share of browser':>17s}")
    for op in sorted(web, key=web.get, reverse=True)[:15]:
        n = native.get(op, float("nan"))
        print(f"{op:24s} {n:9.3f} {web[op]:10.3f} {web[op] / n:6.2f} {web[op] / web_total:16.1%}")
    rest = web_total - sum(web.values())
    print(f"{'(between operators)':24s} {native_total - sum(native.values()):9.3f} {rest:10.3f}")
    print("Python side of one segment in Pyodide (s):")
    py = python_side()
    for what, seconds in py.items():
        print(f"  {what:34s} {seconds:.3f}")
    print(f"  {'total':34s} {sum(py.values()):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
