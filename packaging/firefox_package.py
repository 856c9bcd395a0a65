"""The Firefox variant of the extension, made from the assembled Chromium bundle.

Same pages, engine, Python core, runtime and model: only the manifest differs,
and the WebGPU build of onnxruntime-web stays out (see DROPPED). No file may
exceed addons.mozilla.org's linter's 100 MiB; the model's stages (models/prepare.py)
are each well under it (check_limits says so if one grows over). Whatever
build.py puts in dist/chrome/ (models/, vendor/) is taken as it is, so a change
there (a smaller model, say) reaches Firefox by itself.

    assemble(dist/chrome, dist/firefox)   manifest for Gecko, files hard-linked, store limits checked
    package(dist/firefox, dist)           web-ext build -> dist/demixer-firefox-<version>.zip
    web_ext()                             the pinned web-ext (packaging/web-ext/package-lock.json), installed once into .cache/
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = Path(__file__).resolve().parent / "web-ext"  # package.json + package-lock.json: web-ext and its whole tree, pinned with integrity hashes
WEB_EXT_VERSION = "10.7.0"
WEB_EXT_DIR = ROOT / ".cache" / f"web-ext-{WEB_EXT_VERSION}"

# Gecko's add-on id (stable across builds: storage and updates hang on it) and
# the oldest Firefox we support: 140 is the oldest ESR still maintained, and the
# first with data_collection_permissions. Everything else used needs less (MV3
# 109, module background scripts, OPFS writables, module workers).
GECKO = {
    "id": "demixer@demixer.invalid",
    "strict_min_version": "140.0",
    # Nothing leaves the computer (addons.mozilla.org asks every new add-on to say so).
    "data_collection_permissions": {"required": ["none"]},
}

# addons.mozilla.org refuses packages that unpack to more than 200 MiB
# (addons-server's MAX_ZIP_UNCOMPRESSED_SIZE); its linter (the one web-ext lint
# runs) gives up on JavaScript files over 5 MB (MAX_FILE_SIZE_TO_PARSE_MB) and
# aborts on any file over 100 MiB (addons-scanner-utils' MAX_FILE_SIZE_MB).
MAX_UNPACKED_BYTES = 200 * 1024 * 1024
MAX_JS_BYTES = 5 * 1024 * 1024
MAX_FILE_BYTES = 100 * 1024 * 1024
JS_SUFFIXES = {".js", ".mjs"}

# onnxruntime-web's WebGPU build: Firefox exposes WebGPU to few of its
# users yet, and without it the package stays under the store's size limit.
# The engine looks for WebGPU first and falls back to WASM when this is absent.
DROPPED = {"vendor/ort/ort.webgpu.min.mjs", "vendor/ort/ort-wasm-simd-threaded.asyncify.mjs", "vendor/ort/ort-wasm-simd-threaded.asyncify.wasm"}

# Keys Firefox does not know (it warns about each) or that mean nothing there.
CHROME_ONLY_KEYS = ["key", "minimum_chrome_version", "cross_origin_embedder_policy", "cross_origin_opener_policy"]
CHROME_ONLY_PERMISSIONS = {"offscreen", "tabCapture"}


class FirefoxBuildError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(msg, flush=True)


def firefox_manifest(chrome: dict) -> dict:
    """The Chromium manifest, rewritten for Firefox's MV3."""
    m = json.loads(json.dumps(chrome))
    for key in CHROME_ONLY_KEYS:
        m.pop(key, None)
    m["permissions"] = [p for p in m.get("permissions", []) if p not in CHROME_ONLY_PERMISSIONS]
    # Firefox's MV3 background is an event page: the same module, as its script.
    background = m.get("background", {})
    script = background.get("service_worker")
    if not script:
        raise FirefoxBuildError("manifest.json has no background.service_worker to host in Firefox's event page")
    m["background"] = {"scripts": [script], "type": background.get("type", "module")}
    m["browser_specific_settings"] = {"gecko": dict(GECKO)}
    return m


def _files(folder: Path) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}


def check_limits(folder: Path) -> dict:
    """Unpacked size and the largest JavaScript file, against the store's limits."""
    files = _files(folder)
    total = sum(p.stat().st_size for p in files.values())
    js = {rel: p.stat().st_size for rel, p in files.items() if Path(rel).suffix in JS_SUFFIXES}
    largest = max(js.items(), key=lambda kv: kv[1]) if js else ("", 0)
    problems = []
    if total > MAX_UNPACKED_BYTES:
        problems.append(f"it unpacks to {total:,d} bytes, over the store's {MAX_UNPACKED_BYTES:,d}")
    for rel, size in js.items():
        if size > MAX_JS_BYTES:
            problems.append(f"{rel} is {size:,d} bytes, over the linter's {MAX_JS_BYTES:,d} for one JavaScript file")
    for rel, p in files.items():
        if p.stat().st_size > MAX_FILE_BYTES:
            problems.append(f"{rel} is {p.stat().st_size:,d} bytes, over the linter's {MAX_FILE_BYTES:,d} for any file")
    if problems:
        raise FirefoxBuildError("the Firefox package would be refused: " + "; ".join(problems))
    return {"unpacked": total, "largest_js": largest[0], "largest_js_bytes": largest[1], "files": len(files)}


def assemble(chrome_dir: Path, out: Path) -> Path:
    """Wipe and fill `out` (dist/firefox) from the assembled Chromium bundle."""
    manifest_path = chrome_dir / "manifest.json"
    if not manifest_path.exists():
        raise FirefoxBuildError(f"{chrome_dir} has no manifest.json: build the Chromium bundle first")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for rel, src in _files(chrome_dir).items():
        if rel == "manifest.json" or rel in DROPPED:
            continue
        dst = out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)  # a hard link: the model is not copied again
        except OSError:
            shutil.copy2(src, dst)
    manifest = firefox_manifest(json.loads(manifest_path.read_text()))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    limits = check_limits(out)
    log(f"  {'firefox total':16s} {limits['unpacked']:>12,d} bytes  (store limit {MAX_UNPACKED_BYTES:,d})")
    log(f"  {'largest JS':16s} {limits['largest_js_bytes']:>12,d} bytes  ({limits['largest_js']}; limit {MAX_JS_BYTES:,d})")
    return out


# ------------------------------------------------------------------ web-ext


def web_ext() -> Path:
    """The pinned web-ext executable, installed with `npm ci` from packaging/web-ext/ on first use."""
    lock = TOOLS / "package-lock.json"
    stamp = WEB_EXT_DIR / ".stamp"
    want = hashlib.sha256(lock.read_bytes() + (TOOLS / "package.json").read_bytes()).hexdigest()
    exe = WEB_EXT_DIR / "node_modules" / ".bin" / "web-ext"
    if exe.exists() and stamp.exists() and stamp.read_text() == want:
        return exe
    npm = shutil.which("npm")
    if not npm:
        raise FirefoxBuildError("npm is needed to install web-ext (apt-get install -y nodejs npm)")
    log(f"installing web-ext {WEB_EXT_VERSION} into {WEB_EXT_DIR} (npm ci, pinned by packaging/web-ext/package-lock.json)")
    WEB_EXT_DIR.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(TOOLS / name, WEB_EXT_DIR / name)
    # npm ci installs exactly the lock file's tree and checks every package's integrity hash.
    cmd = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
    if subprocess.call(cmd, cwd=WEB_EXT_DIR) != 0 or not exe.exists():
        raise FirefoxBuildError(f"could not install web-ext ({' '.join(cmd)} failed in {WEB_EXT_DIR})")
    stamp.write_text(want)
    return exe


def package(src: Path, dist: Path) -> Path:
    """`web-ext build`: the zip to upload to addons.mozilla.org for signing."""
    version = json.loads((src / "manifest.json").read_text())["version"]
    name = f"demixer-firefox-{version}.zip"
    cmd = [
        str(web_ext()), "build", "--source-dir", str(src), "--artifacts-dir", str(dist), "--filename", name,
        "--overwrite-dest", "--no-config-discovery",
        # web-ext leaves out every *.zip by default; Python's standard library and numpy's bytecode are two.
        "--ignore-files", "!python/python_stdlib.zip", "!python/numpy-bytecode.zip",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise FirefoxBuildError(f"web-ext build failed:\n{done.stdout}\n{done.stderr}")
    dest = dist / name
    with zipfile.ZipFile(dest) as z:
        packed = {i.filename for i in z.infolist() if not i.is_dir()}
    missing = sorted(set(_files(src)) - packed)
    if missing:
        raise FirefoxBuildError(f"web-ext build left out {', '.join(missing)}")
    log(f"  {'firefox zip':16s} {dest.stat().st_size:>12,d} bytes  ({dest.name})")
    return dest
