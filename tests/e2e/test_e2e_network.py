"""Nothing leaves the browser: every request goes to the extension's own files."""

from __future__ import annotations

import http.server
import threading
import time

import pytest
from support.audio import load_clip, mixture, write_song
from support.chromium import EXTENSION_ID, start_job, wait_for_job


def test_a_whole_job_requests_only_the_extensions_files(browser, popup, lithium, tmp_path):
    song = write_song(tmp_path / "Network.wav", mixture(load_clip(lithium, seconds=4)))
    start_job(popup, [song], stems="four")
    row = wait_for_job(popup, song.name, {"done", "failed", "cancelled"}, 600)
    assert row["status"] == "done", row["text"]

    net = browser.network
    print(net.summary())
    net.assert_only_extension()
    # The recorder really watched every part of the extension: the popup page, the
    # offscreen document (a 'background_page' target) and the engine's worker,
    # which fetched the runtime, the core and the model. (The service worker's own
    # files load before the recorder attaches; the next test shows that a request
    # from the service worker is caught.)
    origin = f"chrome-extension://{EXTENSION_ID}/"
    seen = {(r.target.split(" ", 1)[0], r.url.removeprefix(origin)) for r in net.requests}
    for expected in [
        ("page", "popup/popup.js"),
        ("background_page", "offscreen/offscreen.js"),
        ("background_page", "engine/engine_worker.js"),
        ("worker", "vendor/pyodide/pyodide.asm.wasm"),
        ("worker", "python/python_stdlib.zip"),
        ("worker", "python/numpy-bytecode.zip"),
        ("worker", "engine/pycore_importer.py"),
        ("worker", "pycore/browser.py"),
        ("page", "lib/job_settings.json"),
        ("worker", "vendor/ort/ort-wasm-simd-threaded.wasm"),
        ("worker", "models/htdemucs/stages.json"),
        ("worker", "models/htdemucs/contract.json"),
        ("worker", "models/htdemucs/stage0.onnx"),
    ]:
        assert expected in seen, (expected, sorted(seen))
    assert any(t.startswith("service_worker ") for t in net.targets.values()), net.targets


class _Counter(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802
        _Counter.hits.append(self.path)
        self.send_response(200)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Cross-Origin-Resource-Policy", "cross-origin")
        self.end_headers()
        self.wfile.write(b"leaked")

    def log_message(self, *args):
        pass


@pytest.fixture
def local_server():
    _Counter.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_check_catches_a_request_to_a_local_server(fresh_browser, local_server):
    net = fresh_browser.network
    page = fresh_browser.open_popup()
    net.assert_only_extension()  # clean so far

    # 1. The extension's CSP (connect-src 'self') stops the attempt; the check still flags it.
    page.evaluate("url => fetch(url).then(() => 'sent', e => String(e))", f"{local_server}/blocked")
    time.sleep(0.5)
    assert _Counter.hits == []
    bad = net.violations()
    assert any(r.url == f"{local_server}/blocked" for r in bad), [str(r) for r in net.requests]

    # 2. With the CSP out of the way the request really goes out: the server sees it,
    #    and so do both witnesses (DevTools and Chromium's NetLog).
    cdp = fresh_browser.context.new_cdp_session(page)
    cdp.send("Page.setBypassCSP", {"enabled": True})
    page.reload()
    page.evaluate("url => fetch(url).then(r => r.text())", f"{local_server}/leak")
    deadline = time.monotonic() + 10
    while not any(r.source == "netlog" and r.url.endswith("/leak") for r in net.violations()):
        assert time.monotonic() < deadline, "the NetLog did not show the request"
        time.sleep(0.2)
    assert _Counter.hits == ["/leak"]
    assert any(r.source == "cdp" and r.url == f"{local_server}/leak" for r in net.violations())
    with pytest.raises(AssertionError, match="/leak"):
        net.assert_only_extension()

    # 3. The service worker is watched too (its CSP blocks the request; the check flags it).
    sw = next(w for w in fresh_browser.context.service_workers if EXTENSION_ID in w.url)
    sw.evaluate("url => fetch(url).then(() => 'sent', e => String(e))", f"{local_server}/from-sw")
    deadline = time.monotonic() + 10
    while not any(r.url.endswith("/from-sw") for r in net.violations()):
        assert time.monotonic() < deadline, [str(r) for r in net.requests if "127.0.0.1" in r.url]
        time.sleep(0.2)
