"""Records every network request the browser makes, to prove nothing leaves it.

Two independent witnesses:

* DevTools (CDP): a second debugging connection (Chromium's --remote-debugging-port,
  beside Playwright's pipe) auto-attaches to every target, the extension's service
  worker, its offscreen document and their dedicated workers included (Playwright
  itself reports none of these: it sees the popup page only), and records
  Network.requestWillBeSent from each. New targets wait for the debugger until
  Network is enabled in them, so their first request is seen too. This sees the
  requests the extension *attempts*, including those its CSP then blocks.
* NetLog (--log-net-log): Chromium's own log of every request its network stack
  handles, whatever process or target asked for it. chrome-extension:, blob: and
  data: URLs never reach the network stack, so for Demixer it should hold nothing
  but the browser's own background traffic (tagged "initiator: not an origin").

`NetworkRecorder.violations()` lists what breaks the rule "every request of the
extension goes to chrome-extension://<our id>/ (or blob:/data: of it)".
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

# Hosts Chromium itself contacts in the background even with
# --disable-background-networking (account cookies, component/extension update
# checks). Only requests that no web page or extension initiated may go there.
BROWSER_SERVICE_HOSTS = {
    "accounts.google.com",
    "update.googleapis.com",
    "clients2.google.com",
    "clients2.googleusercontent.com",
    "edgedl.me.gvt1.com",
    "redirector.gvt1.com",
    "optimizationguide-pa.googleapis.com",
    "content-autofill.googleapis.com",
    "safebrowsingohttpgateway.googleapis.com",
}

# Targets that belong to the browser, not to any page or extension.
BROWSER_UI_TYPES = {"browser", "browser_ui", "tab"}


# ---------------------------------------------------------------- a tiny WebSocket client


class _WebSocket:
    """Just enough RFC 6455 for a local DevTools connection (text frames, no extensions)."""

    def __init__(self, host: str, port: int, path: str):
        self.sock = socket.create_connection((host, port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("DevTools closed the connection during the handshake")
            head += chunk
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status:
            raise ConnectionError(f"DevTools refused the WebSocket: {status!r}")
        self._buffer = head.split(b"\r\n\r\n", 1)[1]
        self.sock.settimeout(None)
        self._send_lock = threading.Lock()

    def _read(self, n: int) -> bytes:
        while len(self._buffer) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed")
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def send(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 1 << 16:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        with self._send_lock:
            self.sock.sendall(header + mask + masked)

    def receive(self) -> str:
        parts = []
        while True:
            b0, b1 = self._read(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", self._read(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", self._read(8))
            mask = self._read(4) if b1 & 0x80 else None
            data = self._read(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            if opcode == 0x8:
                raise ConnectionError("closed")
            if opcode == 0x9:  # ping
                with self._send_lock:
                    self.sock.sendall(struct.pack("!BB", 0x8A, 0x80) + os.urandom(4))
                continue
            if opcode in (0x1, 0x2, 0x0):
                parts.append(data)
                if b0 & 0x80:
                    return b"".join(parts).decode()

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


# ---------------------------------------------------------------- the recorder


@dataclass
class Request:
    url: str
    source: str  # 'cdp' or 'netlog'
    target: str  # the target's type and URL (cdp), or the request's initiator (netlog)
    blocked: str = ""  # why it failed, when it did (e.g. 'csp')

    def __str__(self) -> str:
        extra = f" (blocked: {self.blocked})" if self.blocked else ""
        return f"[{self.source}] {self.url}  from {self.target}{extra}"


class NetworkRecorder:
    def __init__(self, user_data_dir: Path, netlog: Path, extension_id: str):
        self.extension_id = extension_id
        self.origin = f"chrome-extension://{extension_id}"
        self.netlog = netlog
        self.requests: list[Request] = []
        self.targets: dict[str, str] = {}  # sessionId -> "type url"
        self._sessions_of: dict[str, str] = {}  # targetId -> sessionId
        self.errors: list[str] = []
        self._next_id = 0
        self._lock = threading.Lock()
        port_file = Path(user_data_dir) / "DevToolsActivePort"
        deadline = time.monotonic() + 15
        while not port_file.exists() or len(port_file.read_text().split()) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError("Chromium wrote no DevToolsActivePort: was --remote-debugging-port=0 passed?")
            time.sleep(0.05)
        port, path = port_file.read_text().split()[:2]
        self._ws = _WebSocket("127.0.0.1", int(port), path)
        self._thread = threading.Thread(target=self._loop, name="cdp-recorder", daemon=True)
        self._thread.start()
        params = {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True}
        self._send("Target.setAutoAttach", params)
        self._send("Target.setDiscoverTargets", {"discover": True})

    # -- protocol

    def _send(self, method: str, params: dict | None = None, session: str | None = None) -> None:
        with self._lock:
            self._next_id += 1
            message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        try:
            self._ws.send(json.dumps(message))
        except OSError as e:
            self.errors.append(f"send {method}: {e}")

    def _loop(self) -> None:
        while True:
            try:
                message = json.loads(self._ws.receive())
            except (ConnectionError, OSError, ValueError):
                return
            try:
                self._on(message)
            except Exception as e:  # never let one odd message stop the recording
                self.errors.append(f"{type(e).__name__}: {e}")

    def _on(self, message: dict) -> None:
        method = message.get("method")
        params = message.get("params", {})
        session = message.get("sessionId")
        if method == "Target.attachedToTarget":
            child = params["sessionId"]
            info = params["targetInfo"]
            self.targets[child] = f"{info['type']} {info['url']}"
            self._sessions_of[info["targetId"]] = child
            if info["type"] not in BROWSER_UI_TYPES:
                self._send("Network.enable", {}, child)
                self._send("Audits.enable", {}, child)  # CSP-blocked attempts surface as issues
                self._send("Log.enable", {}, child)
                self._send("Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True}, child)
            self._send("Runtime.runIfWaitingForDebugger", {}, child)
        elif method == "Target.targetInfoChanged":
            info = params["targetInfo"]
            child = self._sessions_of.get(info["targetId"])
            if child:
                self.targets[child] = f"{info['type']} {info['url']}"
        elif method == "Audits.issueAdded":
            details = params["issue"].get("details", {}).get("contentSecurityPolicyIssueDetails")
            if details and details.get("blockedURL"):
                self._blocked(details["blockedURL"], "csp", session)
        elif method == "Log.entryAdded":
            entry = params["entry"]
            match = re.match(r"Refused to (?:connect to|load) '([^']+)'", entry.get("text", ""))
            if match:
                self._blocked(match.group(1), "csp", session)
        elif method == "Network.requestWillBeSent":
            self.requests.append(Request(params["request"]["url"], "cdp", self.targets.get(session, "?")))
        elif method == "Network.webSocketCreated":
            self.requests.append(Request(params["url"], "cdp", self.targets.get(session, "?")))
        elif method == "Network.loadingFailed" and params.get("blockedReason"):
            for r in reversed(self.requests):
                if r.source == "cdp" and r.target == self.targets.get(session, "?"):
                    r.blocked = r.blocked or params["blockedReason"]
                    break

    def _blocked(self, url: str, reason: str, session: str | None) -> None:
        target = self.targets.get(session, "?")
        for r in self.requests:
            if r.url == url and r.target == target and r.blocked == reason:
                return  # seen already (as an audit issue and as a log entry)
        self.requests.append(Request(url, "cdp", target, reason))

    def close(self) -> None:
        self._ws.close()

    # -- netlog

    def netlog_requests(self) -> list[Request]:
        """URL requests in the NetLog so far (it is written as it goes, finished at exit)."""
        if not self.netlog.exists():
            return []
        text = self.netlog.read_text(errors="replace")
        head, _, events = text.partition('"events": [')
        try:
            constants = json.loads(head.rstrip().rstrip(",") + "}")["constants"]
        except ValueError:
            return []
        start_job = constants["logEventTypes"]["URL_REQUEST_START_JOB"]
        found = []
        for line in events.splitlines():
            line = line.strip().rstrip(",")
            if not line.startswith("{"):
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue  # the last line may still be being written
            if event.get("type") == start_job and "url" in event.get("params", {}):
                p = event["params"]
                found.append(Request(p["url"], "netlog", f"initiator {p.get('initiator', '?')}"))
        return found

    # -- the rule

    def _ours(self, url: str) -> bool:
        if url.startswith(self.origin + "/") or url == self.origin:
            return True
        if url.startswith("blob:" + self.origin + "/"):
            return True
        return url.startswith("data:")

    def violations(self) -> list[Request]:
        bad = []
        for r in list(self.requests):
            kind = r.target.split(" ", 1)[0]
            url = r.target.split(" ", 1)[1] if " " in r.target else ""
            if kind in BROWSER_UI_TYPES or url.startswith(("chrome://", "devtools://")):
                continue  # the browser's own pages
            if not self._ours(r.url):
                bad.append(r)
        for r in self.netlog_requests():
            initiator = r.target.removeprefix("initiator ")
            host = urlsplit(r.url).hostname or ""
            if initiator != "not an origin" or host not in BROWSER_SERVICE_HOSTS:
                bad.append(r)
        return bad

    def assert_only_extension(self) -> None:
        bad = self.violations()
        if bad:
            raise AssertionError(
                "requests that did not go to the extension itself:\n  " + "\n  ".join(map(str, bad))
            )
        if not any(r.url.startswith(self.origin) for r in self.requests):
            raise AssertionError("the recorder saw none of the extension's own requests: it is not recording")

    def summary(self) -> str:
        kinds = sorted({t.split(" ", 1)[0] for t in self.targets.values()})
        return f"{len(self.requests)} requests seen over CDP from {len(self.targets)} targets ({', '.join(kinds)})"
