"""A tiny echo HTTP server that stands in for the protected app in demos/tests.

Every request gets 200 with a JSON description of what arrived, so a test can
see exactly which headers and how many body bytes made it past Envoy.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_HISTORY = 100


class _EchoHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 so Envoy can keep pooled upstream connections alive.
    protocol_version = "HTTP/1.1"
    server: "_EchoServer"

    def __getattr__(self, name: str) -> Any:
        # The base class dispatches to do_<METHOD>; answer every method,
        # including non-standard ones, with the same echo.
        if name.startswith("do_"):
            return self._echo
        raise AttributeError(name)

    def _echo(self) -> None:
        body = self._read_body()
        record = {
            "method": self.command,
            "path": self.path,
            "headers": [[k.lower(), v] for k, v in self.headers.items()],
            "body_bytes": len(body),
        }
        self.server.record(dict(record, body=body))
        self._send_json(record)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size_line = self.rfile.readline()
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                break
            chunks.append(self.rfile.read(size))
            self.rfile.readline()  # CRLF after each chunk
        # Trailer section ends with an empty line.
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        return b"".join(chunks)

    def _send_json(self, payload: dict) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("echo upstream: " + format, *args)


class _EchoServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], history: int):
        self.received: collections.deque = collections.deque(maxlen=history)
        self.lock = threading.Lock()
        super().__init__(address, _EchoHandler)

    def record(self, entry: dict) -> None:
        with self.lock:
            self.received.append(entry)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Peers (Envoy) closing pooled connections is routine, not an error.
        log.debug("echo upstream: error serving %s", client_address, exc_info=True)


class EchoUpstream:
    """Echo server on 127.0.0.1, served on a daemon thread.

    `received` keeps the last `history` requests as dicts with method, path,
    headers, body_bytes and the raw body; use requests() for a safe snapshot.
    """

    def __init__(self, port: int = 0, *, host: str = "127.0.0.1", history: int = DEFAULT_HISTORY):
        self._server = _EchoServer((host, port), history)
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def received(self) -> collections.deque:
        return self._server.received

    def requests(self) -> list[dict]:
        with self._server.lock:
            return list(self._server.received)

    def start(self) -> "EchoUpstream":
        if self._stopped:
            raise RuntimeError("EchoUpstream was stopped")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"echo-upstream-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        # shutdown() blocks until serve_forever returns, so only when serving.
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> "EchoUpstream":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
