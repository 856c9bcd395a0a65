"""The player page's renderer process, found from /proc, and its memory and CPU (Linux only): for
tests/e2e/test_e2e_player.py's memory check and bench/player.py's figures.

A page's memory is its renderer process's. All of the extension's pages may share one renderer,
and the service worker lives in another, so the player's renderer is found as the extension
renderer (--extension-process) of this browser's profile that runs the "Realtime AudioWorklet"
thread."""

from __future__ import annotations

import os
import re
from pathlib import Path

def _extension_renderers() -> list[int]:
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"--type=renderer" in cmd and b"--extension-process" in cmd:
            pids.append(int(pid))
    return pids


def _threads(pid: int) -> dict[int, str]:
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            out[int(tid)] = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
        except OSError:
            pass
    return out


def player_process(profile: Path) -> int:
    """The renderer of the player page: the one of this browser's extension renderers that
    runs an AudioWorklet thread ("Realtime AudioW...", 15 characters of it in comm)."""
    mine = [p for p in _extension_renderers() if str(profile).encode() in Path(f"/proc/{p}/cmdline").read_bytes()]
    with_worklet = [p for p in mine if any(name.startswith("Realtime AudioW") for name in _threads(p).values())]
    assert len(with_worklet) == 1, (mine, {p: sorted(set(_threads(p).values())) for p in mine})
    return with_worklet[0]


def memory_mb(pid: int) -> dict[str, float]:
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    kb = {k: int(v) for k, v in re.findall(r"^(\w+):\s+(\d+) kB", rollup, re.MULTILINE)}
    return {"pss": kb["Pss"] / 1024, "rss": kb["Rss"] / 1024, "private": (kb["Private_Clean"] + kb["Private_Dirty"]) / 1024}


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(the whole process, its AudioWorklet thread): user + system CPU seconds so far."""
    tick = os.sysconf("SC_CLK_TCK")

    def of(stat: str) -> float:
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    total = of(Path(f"/proc/{pid}/stat").read_text())
    worklet = sum(
        of(Path(f"/proc/{pid}/task/{tid}/stat").read_text()) for tid, name in _threads(pid).items() if name.startswith("Realtime AudioW")
    )
    return total, worklet
