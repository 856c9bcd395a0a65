"""Debian's firefox-esr with the built add-on (dist/firefox) installed temporarily,
driven over WebDriver BiDi, Firefox's own remote protocol: no geckodriver, no
Selenium, no browser build of a test framework.

Firefox starts headless with --remote-debugging-port; the test opens a BiDi
session on ws://127.0.0.1:<port>/session, installs the add-on with
webExtension.install (a temporary install, as about:debugging does), opens
moz-extension://<uuid>/popup/popup.html in a tab and drives the popup's own elements:
input.setFiles on the file input, a click on Start, and the job list read back
until the job is done. The add-on's internal UUID is fixed through the
extensions.webextensions.uuids pref, so the popup's URL is known in advance.
Downloads go straight to `downloads` (no dialog), as Demixer's relative file
names ask: Demixer/<song>/<stem>.wav.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from support.chromium import wait_for_row
from support.network import _WebSocket

FIREFOX = "firefox-esr"
ADDON_UUID = "6f1d3c52-8a7e-4d0b-9c1e-2b5a7d9e4f10"  # any fixed UUID: the popup's origin
IDLE_TIMEOUT_MS = 15_000


class BiDiError(RuntimeError):
    pass


class BiDi:
    """Commands over one WebSocket; events are kept for whoever wants them."""

    def __init__(self, port: int):
        self.ws = _WebSocket("127.0.0.1", port, "/session")
        self._ids = itertools.count(1)
        self._answers: dict[int, dict] = {}
        self._cond = threading.Condition()
        self.events: list[dict] = []
        self._closed = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            while True:
                msg = json.loads(self.ws.receive())
                with self._cond:
                    if "id" in msg and msg.get("type") != "event":
                        self._answers[msg["id"]] = msg
                    else:
                        self.events.append(msg)
                    self._cond.notify_all()
        except (ConnectionError, OSError, ValueError):
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    def send(self, method: str, params: dict | None = None, timeout: float = 120) -> dict:
        n = next(self._ids)
        self.ws.send(json.dumps({"id": n, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        with self._cond:
            while n not in self._answers:
                if self._closed:
                    raise BiDiError(f"{method}: the browser closed the connection")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BiDiError(f"{method}: no answer in {timeout:.0f} s")
                self._cond.wait(left)
            msg = self._answers.pop(n)
        if msg.get("type") == "error":
            raise BiDiError(f"{method}: {msg.get('error')}: {msg.get('message')}")
        return msg["result"]

    def close(self) -> None:
        self.ws.close()


def _value(remote: dict):
    """A BiDi RemoteValue of a primitive, as Python."""
    kind = remote.get("type")
    if kind in ("undefined", "null"):
        return None
    if kind in ("string", "boolean"):
        return remote["value"]
    if kind == "number":
        return remote["value"]
    raise BiDiError(f"unexpected remote value {remote}")


class FirefoxWithAddon:
    """firefox-esr, headless, with the add-on in `bundle` installed temporarily."""

    def __init__(self, bundle: Path, root: Path):
        exe = shutil.which(FIREFOX)
        if not exe:
            pytest.fail(f"{FIREFOX} is missing: apt-get install -y firefox-esr (tests/run.sh does)", pytrace=False)
        manifest = json.loads((bundle / "manifest.json").read_text())
        self.addon_id = manifest["browser_specific_settings"]["gecko"]["id"]
        self.origin = f"moz-extension://{ADDON_UUID}/"
        self.root = root
        self.profile = root / "profile"
        self.downloads = root / "downloads"
        self.profile.mkdir(parents=True)
        self.downloads.mkdir()
        prefs = {
            # Downloads land in our folder, under the extension's relative names, with no dialog.
            "browser.download.dir": str(self.downloads),
            "browser.download.folderList": 2,
            "browser.download.useDownloadDir": True,
            "browser.download.always_ask_before_handling_new_types": False,
            "browser.download.start_downloads_in_tmp_dir": False,
            "browser.download.alwaysOpenPanel": False,
            "extensions.webextensions.uuids": json.dumps({self.addon_id: ADDON_UUID}),
            # Firefox unloads an idle event page after 30 s. Half that, and still shorter
            # than one segment here: a job survives only if the engine keeps it awake.
            "extensions.background.idle.timeout": IDLE_TIMEOUT_MS,
            # A quiet, offline-friendly profile.
            "browser.shell.checkDefaultBrowser": False,
            "browser.startup.homepage_override.mstone": "ignore",
            "browser.aboutwelcome.enabled": False,
            "datareporting.policy.dataSubmissionEnabled": False,
            "toolkit.telemetry.enabled": False,
            "app.update.disabledForTesting": True,
            "extensions.update.enabled": False,
            "browser.safebrowsing.update.enabled": False,
            "network.captive-portal-service.enabled": False,
            "network.connectivity-service.enabled": False,
            # The extension's console output, on Firefox's stdout (kept in firefox.log).
            "devtools.console.stdout.content": True,
            "devtools.console.stdout.chrome": True,
        }
        (self.profile / "user.js").write_text(
            "".join(f'user_pref("{k}", {json.dumps(v)});\n' for k, v in prefs.items())
        )
        self.log_path = root / "firefox.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            # --remote-allow-system-access: since Firefox 153 WebDriver may open moz-extension:// pages only with it.
            [exe, "--headless", "--no-remote", "--profile", str(self.profile), "--remote-debugging-port", "0", "--remote-allow-system-access"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            port = self._wait_for_port(90)
            self.bidi = BiDi(port)
            self.bidi.send("session.new", {"capabilities": {}})
            self.bidi.send("webExtension.install", {"extensionData": {"type": "path", "path": str(bundle.resolve())}})
            tree = self.bidi.send("browsingContext.getTree", {})
            self.context = tree["contexts"][0]["context"]
        except BaseException:
            self.close()
            raise

    def _wait_for_port(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"WebDriver BiDi listening on ws://[^:]+:(\d+)", self.log_path.read_text(errors="replace"))
            if found:
                return int(found.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        pytest.fail(f"Firefox did not open its remote port:\n{self.log_path.read_text(errors='replace')[-3000:]}", pytrace=False)

    # ------------------------------------------------------------ pages

    def open_popup(self) -> None:
        self.bidi.send("browsingContext.navigate", {"context": self.context, "url": self.origin + "popup/popup.html", "wait": "complete"})
        deadline = time.monotonic() + 20  # until its menus are drawn from the settings' schema
        while not self.evaluate("'ready' in document.body.dataset", await_promise=False):
            if time.monotonic() > deadline:
                pytest.fail("the popup did not draw its menus in 20 s", pytrace=False)
            time.sleep(0.1)

    def evaluate(self, expression: str, await_promise: bool = True, user_activation: bool = False):
        """Evaluate in the popup page; returns a primitive (JSON.stringify anything else)."""
        result = self.bidi.send(
            "script.evaluate",
            {
                "expression": expression,
                "target": {"context": self.context},
                "awaitPromise": await_promise,
                "userActivation": user_activation,
            },
        )
        if result["type"] == "exception":
            raise BiDiError(f"{expression[:80]}: {result['exceptionDetails'].get('text')}")
        return _value(result["result"])

    def set_files(self, selector: str, files: list[Path]) -> None:
        node = self.bidi.send(
            "script.evaluate",
            {"expression": f"document.querySelector({json.dumps(selector)})", "target": {"context": self.context}, "awaitPromise": False},
        )["result"]
        self.bidi.send(
            "input.setFiles",
            {"context": self.context, "element": {"sharedId": node["sharedId"]}, "files": [str(f) for f in files]},
        )

    def close(self) -> None:
        try:
            if getattr(self, "bidi", None):
                try:
                    self.bidi.send("browser.close", {}, timeout=20)
                except BiDiError:
                    pass
                self.bidi.close()
        finally:
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # our own child, by its handle
                self.proc.wait()
            self._log.close()


# ---------------------------------------------------------------- the popup, as a user drives it


def start_job(ff: FirefoxWithAddon, files: list[Path], stems: str = "four", fmt: str = "wav16",
              preset: str = "balanced") -> None:
    ff.set_files("#files", files)
    ff.evaluate(
        f"""(() => {{
          document.querySelector('input[name=stems][value={stems}]').click();
          for (const [id, value] of [['format', {json.dumps(fmt)}], ['preset', {json.dumps(preset)}]]) {{
            const select = document.querySelector('#' + id);
            select.value = value;
            select.dispatchEvent(new Event('change'));
          }}
          const start = document.querySelector('#start');
          if (start.disabled) throw new Error('Start is disabled: no file was taken');
          start.click();
        }})()""",
        user_activation=True,
    )


def job_rows(ff: FirefoxWithAddon) -> list[dict]:
    text = ff.evaluate(
        """JSON.stringify([...document.querySelectorAll('#jobs li.job')].map((li) => ({
             name: li.dataset.name, status: li.dataset.status, text: li.innerText })))""",
        await_promise=False,
    )
    return json.loads(text)


def wait_for_job(ff: FirefoxWithAddon, name: str, statuses: set[str], timeout: float, log: list | None = None) -> dict:
    return wait_for_row(lambda: job_rows(ff), name, statuses, timeout, log, poll=0.5)


def wait_for_downloads(folder: Path, names: list[str], timeout: float) -> list[Path]:
    """The files, complete: Firefox writes <name>.part beside an empty placeholder until it is done."""
    deadline = time.monotonic() + timeout
    paths = [folder / n for n in names]
    while time.monotonic() < deadline:
        if all(p.exists() and p.stat().st_size > 44 for p in paths) and not list(folder.glob("*.part")):
            return paths
        time.sleep(0.25)
    present = sorted(p.name for p in folder.glob("*")) if folder.exists() else "no folder"
    raise AssertionError(f"{folder}: expected {names}, found {present}")
