"""A real HTTP server on 127.0.0.1 that replays scripted answers, faults included.

Each path gets a script: a list of ``Answer``s served in order, the last one
repeating. An answer can be slow (for client timeouts) or cut short after a
number of body bytes while promising the full length (a truncated body).
Every request is recorded with its query parameters and arrival time, so
tests can assert what was asked, how often, and how long retries waited.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def fixture(name: str) -> bytes:
    """A recorded answer under tests/fixtures/, e.g. ``open_meteo/error_400.json``."""
    return (FIXTURES / name).read_bytes()


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before answering."""
    truncate: int | None = None
    """Send only this many body bytes (Content-Length still promises all), then close."""

    @classmethod
    def file(cls, name: str, **kwargs) -> Answer:
        kind = "text/csv" if name.endswith(".csv") else "application/json; charset=utf-8"
        return cls(body=fixture(name), content_type=kwargs.pop("content_type", kind), **kwargs)


@dataclass(frozen=True)
class Seen:
    path: str
    params: dict[str, str]
    at: float


class ReplayServer:
    def __init__(self) -> None:
        self._scripts: list[tuple[str, dict[str, str], list[Answer]]] = []
        self._lock = threading.Lock()
        self.requests: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                parts = urlsplit(self.path)
                answer = server._next(parts.path, dict(parse_qsl(parts.query)))
                time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", answer.content_type)
                    self.send_header("Content-Length", str(len(answer.body)))
                    for key, value in answer.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(answer.body if answer.truncate is None else answer.body[: answer.truncate])
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test); nothing to tell it

            def log_message(self, *args) -> None:  # keep test output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, path: str, *answers: Answer, when: dict[str, str] | None = None) -> None:
        """Serve ``answers`` in order at ``path`` (for requests whose query has ``when``); the last repeats."""
        with self._lock:
            match = dict(when or {})
            self._scripts = [s for s in self._scripts if s[:2] != (path, match)]
            self._scripts.append((path, match, list(answers)))

    def seen(self, path: str | None = None) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    def _next(self, path: str, params: dict[str, str]) -> Answer:
        with self._lock:
            self.requests.append(Seen(path, params, time.monotonic()))
            for script_path, when, answers in self._scripts:
                if script_path == path and all(params.get(k) == v for k, v in when.items()):
                    return answers.pop(0) if len(answers) > 1 else answers[0]
            return Answer(404, f"no answer scripted for {path} {params}".encode(), "text/plain")

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
