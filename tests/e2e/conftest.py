"""End-to-end tests: the built extension (dist/chrome) in Debian's Chromium, headless,
driven through its popup with Playwright, on the real model and real music.

The extension's id is fixed by the public key in manifest.json ("key"):
    ghiicoecpocnlgfaibibhnoeeiaiepdo
= the first 32 hex digits of sha256(DER public key), each digit 0-f mapped to a-p.

Where chrome.downloads writes under Playwright: Playwright makes every download
land under a GUID name in its downloads_path ("allowAndName"), which would hide
Demixer's Downloads/Demixer/<song>/<stem>.wav layout. So the profile's
Preferences set download.default_directory to a folder of the test's own, and a
browser-wide Browser.setDownloadBehavior {behavior: 'default'} hands downloads
back to Chromium, which then honours the extension's relative file names.

Environment:
  DEMIXER_E2E_BUNDLE=/path   test this already built bundle instead of running build.py
  DEMIXER_E2E_HEADED=1       show the browser
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.chromium import EXTENSION_ID, REPO, ExtensionBrowser


def extension_id_of(manifest: dict) -> str:
    digest = hashlib.sha256(base64.b64decode(manifest["key"])).hexdigest()[:32]
    return "".join(chr(ord("a") + int(c, 16)) for c in digest)


# ---------------------------------------------------------------- the bundle and the data


@pytest.fixture(scope="session")
def bundle() -> Path:
    """dist/chrome, built once per test session by build.py."""
    given = os.environ.get("DEMIXER_E2E_BUNDLE")
    if given:
        path = Path(given)
    else:
        if not (REPO / "build.py").exists():
            pytest.fail("build.py is missing: cannot build dist/chrome", pytrace=False)
        subprocess.run([sys.executable, "build.py"], cwd=REPO, check=True)
        path = REPO / "dist" / "chrome"
    manifest = json.loads((path / "manifest.json").read_text())
    assert extension_id_of(manifest) == EXTENSION_ID, "manifest.json's key changed: update EXTENSION_ID"
    return path


@pytest.fixture(scope="session")
def lithium(testdata) -> Path:
    folder = testdata / "cc0-excerpts" / "2.Lithium"
    if not all((folder / f"{s}.flac").exists() for s in ("drums", "bass", "other", "vocals")):
        pytest.fail(f"{folder} lacks its four FLAC stems", pytrace=False)
    return folder


# ---------------------------------------------------------------- the browser


@pytest.fixture(scope="session")
def playwright_instance():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_instance, bundle, tmp_path_factory):
    """One browser for the session: the engine stays warm from test to test."""
    b = ExtensionBrowser(playwright_instance, bundle, tmp_path_factory.mktemp("chromium"))
    yield b
    b.close()


@pytest.fixture
def fresh_browser(playwright_instance, bundle, tmp_path):
    """A browser of the test's own, for tests that must not disturb the shared one."""
    b = ExtensionBrowser(playwright_instance, bundle, tmp_path)
    yield b
    b.close()


@pytest.fixture
def popup(browser):
    page = browser.open_popup()
    yield page
    if not page.is_closed():
        page.close()


@pytest.fixture(autouse=True)
def _nothing_leaves_the_browser(request):
    """After every test on the shared browser: no request went anywhere but the extension."""
    yield
    if "browser" in request.fixturenames:
        request.getfixturevalue("browser").network.assert_only_extension()
