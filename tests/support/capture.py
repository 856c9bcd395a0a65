"""Tab capture under automation: a local page that plays music, and the extension's
real toolbar popup opened on that page's tab.

How automation invokes the extension on a tab: Chromium's DevTools command
Extensions.triggerAction {id, targetId: <tab target>} does what a click on the
toolbar button does (it opens the action popup and grants activeTab, which is what
lets chrome.tabCapture capture that tab). It is available on Playwright's own
(pipe) connection when Chromium runs with --enable-unsafe-extension-debugging.
Playwright does not report the action popup as a page, so it is driven over a
second DevTools connection (the --remote-debugging-port one ExtensionBrowser opens).

Headless Playwright mutes audio (--mute-audio), which silences tab capture too:
CAPTURE_BROWSER_OPTIONS turns that off and lets the page autoplay.
"""

from __future__ import annotations

import http.server
import io
import json
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from pycore.metrics import sdr
from support.chromium import EXTENSION_ID
from support.network import _WebSocket

CAPTURE_BROWSER_OPTIONS = {
    "extra_args": ("--enable-unsafe-extension-debugging", "--autoplay-policy=no-user-gesture-required"),
    "ignore_default_args": ("--mute-audio",),
}


class MusicServer:
    """http://127.0.0.1:<port>/<name> serves a page titled `title` that plays `audio`
    (float [n, 2] at `rate`, served as 16-bit WAV) in an <audio> element, or plays nothing."""

    def __init__(self):
        self.pages: dict[str, tuple[str, bytes | None]] = {}
        pages = self.pages

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                name = self.path.strip("/").removesuffix(".wav")
                if name not in pages:
                    self.send_error(404)
                    return
                title, wav = pages[name]
                if self.path.endswith(".wav"):
                    body, kind = wav, "audio/wav"
                else:
                    audio = f'<audio id="player" src="/{name}.wav" autoplay></audio>' if wav else "<p>Nothing plays here.</p>"
                    body, kind = f"<!doctype html><title>{title}</title><h1>{title}</h1>{audio}".encode(), "text/html"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, name: str, title: str, audio: np.ndarray | None = None, rate: int = 44100) -> str:
        wav = None
        if audio is not None:
            buf = io.BytesIO()
            sf.write(buf, audio, rate, format="WAV", subtype="PCM_16")
            wav = buf.getvalue()
        self.pages[name] = (title, wav)
        return f"{self.base}/{name}"

    def close(self) -> None:
        self.server.shutdown()


class Cdp:
    """A blocking DevTools client on the browser's --remote-debugging-port."""

    def __init__(self, profile: Path):
        port, path = (Path(profile) / "DevToolsActivePort").read_text().split()[:2]
        self.ws = _WebSocket("127.0.0.1", int(port), path)
        self.next_id = 0

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = json.loads(self.ws.receive())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
        raise TimeoutError(method)

    def close(self) -> None:
        self.ws.close()


class ActionPopup:
    """The extension's toolbar popup, opened on `page`'s tab as a click on the toolbar button would."""

    def __init__(self, browser, page):
        self.cdp = Cdp(browser.profile)
        before = {t["targetId"] for t in self.cdp.send("Target.getTargets")["targetInfos"]}
        title = page.title()
        tab = None
        for _ in range(50):
            tabs = self.cdp.send("Target.getTargets", {"filter": [{"type": "tab"}]})["targetInfos"]
            tab = next((t for t in tabs if t["title"] == title and t["url"] == page.url), None)
            if tab:
                break
            time.sleep(0.1)
        assert tab, f"no tab target for {page.url}"
        session = browser.context.browser.new_browser_cdp_session()
        session.send("Extensions.triggerAction", {"id": EXTENSION_ID, "targetId": tab["targetId"]})
        session.detach()
        popup_url = f"chrome-extension://{EXTENSION_ID}/popup/popup.html"
        deadline = time.monotonic() + 20
        target = None
        while target is None:
            assert time.monotonic() < deadline, "the action popup did not open"
            infos = self.cdp.send("Target.getTargets")["targetInfos"]
            target = next((t for t in infos if t["url"] == popup_url and t["targetId"] not in before), None)
            time.sleep(0.1)
        self.session = self.cdp.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})["sessionId"]
        # Wait until the popup's script has run (its menus drawn, the capture box shown or hidden).
        deadline = time.monotonic() + 20
        while not self.eval("'ready' in document.body.dataset && document.getElementById('capture-limit').textContent !== ''"):
            assert time.monotonic() < deadline, "the popup's script did not run"
            time.sleep(0.1)

    def eval(self, expression: str):
        result = self.cdp.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True, "userGesture": True},
            self.session,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def click(self, element_id: str) -> None:
        self.eval(f"document.getElementById({element_id!r}).click()")

    def text(self, element_id: str) -> str:
        return self.eval(f"document.getElementById({element_id!r}).textContent")

    def visible(self, element_id: str) -> bool:
        return self.eval(f"!document.getElementById({element_id!r}).closest('[hidden]')")

    def close(self) -> None:
        self.cdp.close()


def wait_until(predicate, timeout: float, what: str, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def inbox_files(page) -> dict[str, str]:
    """The extension's OPFS inbox as {key: base64 bytes} (read from an extension page)."""
    return page.evaluate(
        """async () => {
            const root = await navigator.storage.getDirectory();
            const dir = await root.getDirectoryHandle('inbox', { create: true });
            const out = {};
            for await (const [name, handle] of dir.entries()) {
              const bytes = new Uint8Array(await (await handle.getFile()).arrayBuffer());
              let s = '';
              for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
              out[name] = btoa(s);
            }
            return out;
        }"""
    )


def align(reference: np.ndarray, recorded: np.ndarray) -> int:
    """The offset of `recorded` inside `reference` (both mono), by FFT cross-correlation."""
    n = len(reference) + len(recorded)
    size = 1 << (n - 1).bit_length()
    spectrum = np.fft.rfft(reference, size) * np.conj(np.fft.rfft(recorded, size))
    correlation = np.fft.irfft(spectrum, size)[: len(reference) - len(recorded) + 1]
    return int(np.argmax(correlation))


def sdr_with_gain(reference: np.ndarray, estimate: np.ndarray) -> tuple[float, float]:
    """SDR (dB) of `estimate` against `reference` scaled by the best single gain; and that gain."""
    gain = float((reference * estimate).sum() / (reference * reference).sum())
    error = estimate - gain * reference
    return float(10 * np.log10(((gain * reference) ** 2).sum() / max((error**2).sum(), 1e-20))), gain


def windowed_sdr(
    source: np.ndarray, recorded: np.ndarray, offset: int, rate: int, seconds: float = 0.5, search: float = 0.25
) -> list[tuple[float, int, float]]:
    """[(start in s, shift in samples, SDR in dB)] of `recorded` against `source`, window by
    window, each window aligned on its own within `search` seconds of `offset` (where the
    whole recording lines up): where a recording departs from its source, for how long,
    and whether it slipped in time there (a real-time glitch) or was altered."""
    size, reach = int(rate * seconds), int(rate * search)
    mono_source, mono_recorded = source.mean(axis=1), recorded.mean(axis=1)
    out = []
    for start in range(0, len(recorded) - size + 1, size):
        low = max(offset + start - reach, 0)
        high = min(offset + start + size + reach, len(source))
        if high - low < size:
            out.append((start / rate, 0, float("-inf")))
            continue
        at = low + align(mono_source[low:high], mono_recorded[start : start + size])
        out.append((start / rate, at - offset - start, sdr(source[at : at + size], recorded[start : start + size])))
    return out
