"""Chromium with the built extension loaded, and the popup driven as a user would."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from support.network import NetworkRecorder

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
EXTENSION_ID = "ghiicoecpocnlgfaibibhnoeeiaiepdo"  # fixed by manifest.json's "key"


class ExtensionBrowser:
    """Chromium with the extension loaded, downloads going to `self.downloads`,
    and every network request recorded by `self.network`."""

    def __init__(self, playwright, bundle: Path, root: Path, extra_args: tuple = (), ignore_default_args: tuple = ()):
        if not Path(CHROMIUM).exists():
            pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium", pytrace=False)
        self.root = root
        self.profile = root / "profile"
        self.downloads = root / "downloads"
        self.netlog = root / "netlog.json"
        (self.profile / "Default").mkdir(parents=True)
        self.downloads.mkdir()
        (self.profile / "Default" / "Preferences").write_text(
            json.dumps({"download": {"default_directory": str(self.downloads), "prompt_for_download": False}})
        )
        self._playwright, self._bundle = playwright, bundle
        self._extra_args, self._ignore_default_args = tuple(extra_args), tuple(ignore_default_args)
        self.console: list[str] = []
        self._launch()

    def _launch(self) -> None:
        bundle = self._bundle
        self.context = self._playwright.chromium.launch_persistent_context(
            str(self.profile),
            executable_path=CHROMIUM,
            headless=not os.environ.get("DEMIXER_E2E_HEADED"),
            args=[
                f"--disable-extensions-except={bundle}",
                f"--load-extension={bundle}",
                "--no-sandbox",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
                "--remote-debugging-port=0",  # the network recorder's own connection
                f"--log-net-log={self.netlog}",
                *self._extra_args,
            ],
            ignore_default_args=list(self._ignore_default_args) or None,
            accept_downloads=True,
            downloads_path=str(self.downloads),
        )
        self.network = NetworkRecorder(self.profile, self.netlog, EXTENSION_ID)
        cdp = self.context.browser.new_browser_cdp_session()
        cdp.send("Browser.setDownloadBehavior", {"behavior": "default"})
        cdp.detach()

    def restart(self) -> None:
        """Closes the browser and starts it again on the same profile, as a user
        quitting and relaunching would (the extension's storage and OPFS stay)."""
        self.close()
        (self.profile / "DevToolsActivePort").unlink(missing_ok=True)  # the recorder must find the new port
        self.netlog = self.netlog.with_name(self.netlog.stem + "-restarted.json")
        self._launch()

    def open_popup(self):
        page = self.context.new_page()
        page.on("console", lambda m: self.console.append(f"popup {m.type}: {m.text}"))
        page.goto(f"chrome-extension://{EXTENSION_ID}/popup/popup.html")
        page.locator("body[data-ready]").wait_for(state="attached")  # menus drawn from the settings' schema
        return page

    def close(self) -> None:
        try:
            self.context.close()
        finally:
            self.network.close()


# ---------------------------------------------------------------- driving the popup


def start_job(page, files, stems: str = "four", fmt: str = "wav16", preset: str = "balanced") -> None:
    page.set_input_files("#files", [str(f) for f in files])
    page.check(f"input[name=stems][value={stems}]")
    page.select_option("#format", fmt)
    page.select_option("#preset", preset)
    page.click("#start")


def job_rows(page) -> list[dict]:
    """The popup's job list, as the user reads it (polled: no page-side waiting,
    since the extension's CSP blocks Playwright's wait_for_function)."""
    # One read of the whole list: rows come and go as jobs finish (the popup keeps the last 30
    # finished ones), so reading them one by one could ask for a row that just went.
    rows = page.evaluate(
        """() => [...document.querySelectorAll('#jobs li.job')].map((li) => ({
             id: li.dataset.id, name: li.dataset.name, status: li.dataset.status, text: li.innerText }))"""
    )
    for row in rows:
        row["element"] = page.locator('#jobs li.job[data-id="%s"]' % row["id"])
    return rows


def wait_for_row(rows, name: str, statuses: set[str], timeout: float, log: list | None = None,
                 poll: float = 0.25) -> dict:
    """Polls `rows()` (the popup's job list, in any browser) until job `name` reaches one of `statuses`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        row = next((r for r in rows() if r["name"] == name), None)
        if row is not None:
            if log is not None and row["text"] != last:
                log.append((round(time.monotonic(), 1), row["text"].replace("\n", " | ")))
            last = row["text"]
            if row["status"] in statuses:
                return row
        time.sleep(poll)
    raise AssertionError(f"job {name!r} did not reach {sorted(statuses)} in {timeout:.0f} s; last seen: {last!r}")


def wait_for_job(page, name: str, statuses: set[str], timeout: float, log: list | None = None) -> dict:
    return wait_for_row(lambda: job_rows(page), name, statuses, timeout, log)


def wait_for_files(folder: Path, names: list[str], timeout: float) -> list[Path]:
    deadline = time.monotonic() + timeout
    paths = [folder / n for n in names]
    while time.monotonic() < deadline:
        if all(p.exists() for p in paths) and not list(folder.glob("*.crdownload")):
            return paths
        time.sleep(0.25)
    present = sorted(p.name for p in folder.glob("*")) if folder.exists() else "no folder"
    raise AssertionError(f"{folder}: expected {names}, found {present}")


def inbox_entries(page) -> list[str]:
    """Songs waiting in the extension's OPFS inbox (see extension/inbox.js), scratch left in work/, and
    library entries left unfinished (no entry.json): whatever a finished, failed or cancelled job must
    not leave behind. Complete library entries are kept on purpose (lib/library.js) and not listed."""
    return page.evaluate(
        """async () => {
            const root = await navigator.storage.getDirectory();
            const names = [];
            for await (const [name, handle] of root.entries()) {
              if (handle.kind !== 'directory') names.push(name);
              else if (name === 'library') {
                for await (const [id, entry] of handle.entries()) {
                  const done = await entry.getFileHandle('entry.json').then(() => true, () => false);
                  if (!done) names.push('library/' + id);
                }
              } else for await (const n of handle.keys()) names.push(name + '/' + n);
            }
            return names;
        }"""
    )
