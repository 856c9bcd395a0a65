"""What the player costs while it plays: CPU and memory of its renderer, per speed, in one run.

    python bench/player.py [--seconds 8] [--speeds 100,50,150]

Writes a library entry of 30 s of the CC0 excerpt "Lithium" (its four ground-truth stems, 16-bit)
straight into the extension's OPFS in headless Debian Chromium (dist/chrome; built when missing),
opens the player on it and plays it at each speed (the pitch kept, Signalsmith Stretch), then
paused. Prints, from /proc: the player's renderer process in % of one core, of which its
AudioWorklet thread (the stretch and the mixing), and its peak PSS/RSS. The renderer is the
extension renderer that runs the "Realtime AudioWorklet" thread (tests/support/processes.py).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from support.audio import load_clip  # noqa: E402
from support.chromium import EXTENSION_ID, ExtensionBrowser  # noqa: E402
from support.library import write_entry  # noqa: E402
from support.processes import cpu_seconds, memory_mb, player_process  # noqa: E402

LITHIUM = REPO.parent / "shared" / "testdata" / "cc0-excerpts" / "2.Lithium"
PLAYER = f"chrome-extension://{EXTENSION_ID}/player/player.html"


def measure(pid: int, seconds: float) -> tuple[float, float, float]:
    """(% of a core for the process, for its worklet, peak PSS MB) over `seconds`."""
    c0, w0, t0 = *cpu_seconds(pid), time.monotonic()
    peak = 0.0
    while time.monotonic() - t0 < seconds:
        peak = max(peak, memory_mb(pid)["pss"])
        time.sleep(0.25)
    c1, w1, t1 = *cpu_seconds(pid), time.monotonic()
    return 100 * (c1 - c0) / (t1 - t0), 100 * (w1 - w0) / (t1 - t0), peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8, help="how long each speed plays")
    parser.add_argument("--speeds", default="100,50,150", help="speeds in percent, comma-separated")
    args = parser.parse_args()
    if not LITHIUM.is_dir():
        sys.exit(f"{LITHIUM} is missing: the bench needs ../shared/testdata")
    bundle = REPO / "dist" / "chrome"
    if not (bundle / "manifest.json").exists():
        subprocess.run([sys.executable, "build.py"], cwd=REPO, check=True)

    from playwright.sync_api import sync_playwright

    with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
        browser = ExtensionBrowser(p, bundle, Path(tmp))
        try:
            page = browser.context.new_page()
            page.goto(f"{PLAYER}?id=none")
            write_entry(page, "bench", "Lithium (bench)", load_clip(LITHIUM, seconds=30))
            page.goto(f"{PLAYER}?id=bench")
            page.wait_for_function("() => document.body.dataset.ready === 'true'")
            page.keyboard.press("Space")
            time.sleep(1)
            pid = player_process(browser.profile)
            print(f"player renderer {pid}; four stems, 16-bit, {args.seconds:g} s per speed")
            print(f"{'speed':>8} {'renderer % core':>16} {'worklet % core':>15} {'peak PSS MB':>12}")
            for speed in (int(s) for s in args.speeds.split(",")):
                page.fill("#speed", str(speed))
                time.sleep(0.5)
                rate = page.evaluate("window.demixerPlayer.rate")
                if abs(rate * 100 - speed) > 0.5:
                    sys.exit(f"the player plays at {rate}, not {speed} %")
                whole, worklet, pss = measure(pid, args.seconds)
                print(f"{speed:>7}% {whole:>16.0f} {worklet:>15.0f} {pss:>12.0f}")
            page.keyboard.press("Space")
            time.sleep(2.5)  # the context is suspended 1.5 s after a pause
            whole, worklet, pss = measure(pid, 4)
            print(f"{'paused':>8} {whole:>16.0f} {worklet:>15.0f} {pss:>12.0f}")
            print(f"memory now: {memory_mb(pid)}")
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
