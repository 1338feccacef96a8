"""The admin HTTP endpoint: Prometheus ``/metrics`` and the identity-assertion JWKS, nothing else.

``/.well-known/jwks.json`` publishes the public key of the current policy's assertion key, so
upstreams can verify the ``x-extproc-assertion`` JWT; it follows policy reloads. Every other path
is 404.

One thread serves every connection (an asyncio loop of its own, off the ext_proc loop): idle
connections cost a socket each, not a thread. At most MAX_CONNECTIONS are open at once: a new one
closes the oldest, so that a scraper still gets in while someone holds idle connections. A request
head must arrive within HEAD_TIMEOUT and fit in MAX_HEAD_BYTES; one request per connection.
"""
from __future__ import annotations

import asyncio
import json
import logging
import ssl
import threading
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from extproc.wire.listen import TlsFiles, parse_address

log = logging.getLogger(__name__)

JWKS_PATH = "/.well-known/jwks.json"
METRICS_PATH = "/metrics"
MAX_CONNECTIONS = 256
HEAD_TIMEOUT = 5.0
WRITE_TIMEOUT = 10.0
MAX_HEAD_BYTES = 8192
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes
    cache_seconds: int | None = None


def _text(status: int, message: str) -> Reply:
    return Reply(status, "text/plain; charset=utf-8", message.encode() + b"\n")


def admin_reply(method: str, path: str, metrics, store) -> Reply:
    """The answer to one request: the known paths, else 404; GET and HEAD only."""
    path = path.partition("?")[0]
    if path not in (METRICS_PATH, JWKS_PATH):
        return _text(404, "not found")
    if method not in ("GET", "HEAD"):
        return _text(405, "method not allowed")
    if path == METRICS_PATH:
        return Reply(200, CONTENT_TYPE_LATEST, generate_latest(metrics.registry))
    directory = store.current.access
    signer = directory.signer if directory is not None else None
    if signer is None:
        return _text(404, "no assertion key configured")
    return Reply(200, "application/json", json.dumps(signer.jwks()).encode(), cache_seconds=60)


class AdminServer:
    def __init__(self, metrics, store) -> None:
        self.metrics = metrics
        self.store = store
        self.open: dict[asyncio.StreamWriter, None] = {}  # oldest first

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.open) >= MAX_CONNECTIONS:
            oldest = next(iter(self.open))
            del self.open[oldest]
            oldest.close()  # its read ends at once (IncompleteReadError)
        self.open[writer] = None
        try:
            await self._answer(reader, writer)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError,
                ssl.SSLError):
            pass  # slow, silent, oversized or gone: the connection just closes
        finally:
            self.open.pop(writer, None)
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
        if len(request_line) != 3:
            reply = _text(400, "bad request")
        else:
            reply = admin_reply(request_line[0], request_line[1], self.metrics, self.store)
        writer.write(_encode(reply, head_only=request_line[0] == "HEAD"))
        await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)


def _encode(reply: Reply, head_only: bool) -> bytes:
    headers = [f"HTTP/1.1 {reply.status} {_REASONS[reply.status]}", f"Content-Type: {reply.content_type}",
               f"Content-Length: {len(reply.body)}", "Connection: close"]
    if reply.cache_seconds is not None:
        headers.append(f"Cache-Control: max-age={reply.cache_seconds}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + (b"" if head_only else reply.body)


async def _listen(address: str, worker_index: int, server: AdminServer, tls: TlsFiles | None):
    """Worker i listens on port + i (a Unix socket: path.i for i > 0)."""
    parsed = parse_address(address)
    context = tls.server_context() if tls is not None else None
    timeouts = {"ssl_handshake_timeout": HEAD_TIMEOUT} if context is not None else {}
    if parsed.unix_path is not None:  # is_unix
        path = parsed.unix_path + (f".{worker_index}" if worker_index else "")
        return await asyncio.start_unix_server(server.handle, path, limit=MAX_HEAD_BYTES, ssl=context, **timeouts)
    return await asyncio.start_server(server.handle, parsed.host or None, parsed.port + worker_index,
                                      limit=MAX_HEAD_BYTES, ssl=context, reuse_address=True, **timeouts)


def start_admin(address: str, worker_index: int, metrics, store, tls: TlsFiles | None = None) -> None:
    """Serve in a daemon thread; raises OSError here when the address cannot be bound."""
    ready = threading.Event()
    failure: list[BaseException] = []

    async def run() -> None:
        asyncio.get_running_loop().set_exception_handler(_quiet)
        try:
            listener = await _listen(address, worker_index, AdminServer(metrics, store), tls)
        except BaseException as exc:  # reported to the caller, which decides
            failure.append(exc)
            ready.set()
            return
        ready.set()
        async with listener:
            await listener.serve_forever()

    threading.Thread(target=asyncio.run, args=(run(),), name="admin-http", daemon=True).start()
    ready.wait()
    if failure:
        raise OSError(f"admin address {address}: {failure[0]}") from failure[0]


def _quiet(loop, context) -> None:
    # Failed TLS handshakes and resets from scanners would otherwise log a traceback each.
    log.debug("admin connection: %s", context.get("message"))
