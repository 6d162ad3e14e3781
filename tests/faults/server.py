"""A loopback HTTP server that misbehaves on purpose: the network faults the sources must survive.

The first path segment picks the fault, the rest is whatever the source asks for, so a source
pointed at ``f"{server.url}/trickle"`` sends its usual request and gets a trickle back:

- ``trickle``: 200 promising a body, then one byte every ``trickle_interval`` seconds
- ``silent``: accepts the connection and never answers
- ``reset``: 200, half the promised body, then a TCP reset
- ``truncate``: 200, half the promised body, then a clean close
- ``redirect``: 301 to itself, forever
- ``gzip``: 200 with ``Content-Encoding: gzip`` and a body that is not gzip
- ``html``: 200 with an HTML error page (a captive portal, a proxy)
- ``status-NNN``: that status, e.g. ``status-503``
- ``body-NAME``: 200 with the body registered under NAME (``server.bodies[NAME] = b"..."``), for wrong shapes
- ``ok-NAME``: the same, after which the server behaves

Every request is recorded (path, time), and the server runs in a daemon thread.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FAULTS = ("trickle", "silent", "reset", "truncate", "redirect", "gzip", "html")


@dataclass
class FaultServer:
    trickle_interval: float = 1.0
    silent_seconds: float = 120.0
    bodies: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = urlsplit(self.path).path
                outer.requests.append((path, time.monotonic()))
                mode = path.strip("/").split("/", 1)[0]
                try:
                    outer._answer(self, mode, path)
                except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError):
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def seen(self, mode: str) -> int:
        return sum(1 for path, _ in self.requests if path.strip("/").split("/", 1)[0] == mode)

    def _answer(self, h: BaseHTTPRequestHandler, mode: str, path: str) -> None:
        body = b'{"padding": "' + b"x" * 2000 + b'"}'
        if mode == "trickle":
            self._head(h, 200, len(body))
            for byte in body:
                h.wfile.write(bytes([byte]))
                h.wfile.flush()
                time.sleep(self.trickle_interval)
        elif mode == "silent":
            time.sleep(self.silent_seconds)
        elif mode in ("reset", "truncate"):
            self._head(h, 200, len(body))
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            if mode == "reset":  # SO_LINGER 0: close sends RST instead of FIN
                h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.close_connection = True
            h.connection.close()
        elif mode == "redirect":
            h.send_response(301)
            h.send_header("Location", path)
            h.send_header("Content-Length", "0")
            h.end_headers()
        elif mode == "gzip":
            junk = b"\x1f\x8b\x08\x00this is not a gzip stream at all" * 4
            self._head(h, 200, len(junk), extra={"Content-Encoding": "gzip"})
            h.wfile.write(junk)
        elif mode == "html":
            page = b"<!DOCTYPE html><html><body><h1>Service temporarily unavailable</h1></body></html>"
            self._head(h, 200, len(page), content_type="text/html; charset=utf-8")
            h.wfile.write(page)
        elif mode.startswith("status-"):
            text = b"fault server: status on request"
            self._head(h, int(mode.removeprefix("status-")), len(text), content_type="text/plain")
            h.wfile.write(text)
        elif mode.startswith(("body-", "ok-")):
            data = self.bodies[mode.split("-", 1)[1]]
            kind = "text/csv" if not data.lstrip().startswith((b"{", b"[")) else "application/json"
            self._head(h, 200, len(data), content_type=kind)
            h.wfile.write(data)
        else:
            self._head(h, 404, 0)

    @staticmethod
    def _head(h: BaseHTTPRequestHandler, status: int, length: int, *, content_type: str = "application/json",
              extra: dict[str, str] | None = None) -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(length))
        for key, value in (extra or {}).items():
            h.send_header(key, value)
        h.end_headers()
        h.wfile.flush()
