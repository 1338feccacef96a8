"""Helpers for the end-to-end tier: real Envoy + real sidecar process + echo upstream.

Clients are stdlib only (http.client and raw sockets). Every process a fixture starts is
registered here so that a failing test gets the sidecar and Envoy logs in its report.
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import pytest

from extproc.local.envoy import envoy_binary, free_port

LOOPBACK = "127.0.0.1"

# A policy that denies a path and a body marker: enough to tell a live sidecar from a dead one.
BLOCKING_POLICY = """
version: 1
defaults:
  layers:
    rules:
      rules:
        - id: deny-blocked
          match: {path: {regex: '/blocked(/|$)'}}
          action: deny
        - id: body-probe
          match: {any_arg: {contains: EVIL-PAYLOAD}}
          action: deny
"""
LOG_TAIL = 8000

# -- Envoy availability ---------------------------------------------------------------------


def envoy_missing() -> str | None:
    try:
        envoy_binary()
    except RuntimeError as exc:
        return str(exc)
    return None


def require_envoy() -> None:
    missing = envoy_missing()
    if missing is not None:
        pytest.skip(f"no Envoy binary: {missing}")


# -- logs of the processes under test, shown on failure -------------------------------------

_LOG_SOURCES: dict[int, tuple[str, Callable[[], str]]] = {}


def register_stack(label: str, stack) -> None:
    """Show this stack's sidecar and Envoy logs in the report of a failing test."""

    def sidecar_log() -> str:
        return stack.sidecar.log_text() if stack.sidecar is not None else "(no sidecar)"

    def envoy_log() -> str:
        return stack.envoy.log_text() if stack.envoy is not None else "(no envoy)"

    _LOG_SOURCES[id(stack)] = (label, lambda: f"--- sidecar ---\n{sidecar_log()[-LOG_TAIL:]}\n"
                                               f"--- envoy ---\n{envoy_log()[-LOG_TAIL:]}")


def register_log(label: str, owner: object, read: Callable[[], str]) -> None:
    _LOG_SOURCES[id(owner)] = (label, lambda: read()[-LOG_TAIL:])


def unregister(owner: object) -> None:
    _LOG_SOURCES.pop(id(owner), None)


def log_sections() -> list[tuple[str, str]]:
    sections = []
    for label, read in list(_LOG_SOURCES.values()):
        try:
            sections.append((f"{label} logs (tail)", read()))
        except Exception as exc:  # never hide the real failure behind a log problem
            sections.append((f"{label} logs", f"cannot read: {exc!r}"))
    return sections


# -- policies --------------------------------------------------------------------------------


@contextmanager
def started_stack(label: str, policy_text: str, workdir: Path, **stack_options) -> Iterator:
    """A Stack on this policy: started, its logs shown if a test fails, always stopped."""
    from extproc.local.stack import Stack

    require_envoy()
    stack = Stack(write_policy(workdir / "policy.yaml", policy_text), workdir=workdir, **stack_options)
    register_stack(label, stack)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        unregister(stack)


def write_policy(path: Path, text: str) -> Path:
    """Replace the file atomically (write a sibling, rename over), as a config push would."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


# -- HTTP through Envoy ----------------------------------------------------------------------


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    elapsed: float = 0.0

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def header(self, name: str) -> str | None:
        values = self.values(name)
        return values[0] if values else None

    def json(self):
        return json.loads(self.body)

    def everything(self) -> str:
        """Status line, headers and body as one lower-case text, to look for leaks."""
        head = "\n".join(f"{k}: {v}" for k, v in self.headers)
        return f"{self.status} {self.reason}\n{head}\n\n{self.body.decode('utf-8', 'replace')}".lower()

    def __repr__(self) -> str:
        return f"Response({self.status} {self.reason}, headers={self.headers!r}, body={self.body[:300]!r})"


def request(port: int, method: str, path: str, *, headers: Iterable[tuple[str, str | bytes]] = (),
            body: bytes | None = None, chunked: bool = False, chunk_size: int = 16384,
            timeout: float = 15.0, source: str = LOOPBACK) -> Response:
    """One request on a fresh connection from ``source`` (another loopback address is another client
    to the sidecar). ``headers`` may repeat a name; values may be bytes."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout, source_address=(source, 0))
    start = time.monotonic()
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        if body is not None and chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        elif body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        if body is not None and chunked:
            for offset in range(0, len(body), chunk_size):
                piece = body[offset:offset + chunk_size]
                conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            conn.send(b"0\r\n\r\n")
        elif body:
            conn.send(body)
        resp = conn.getresponse()
        data = resp.read()
        return Response(resp.status, resp.reason, resp.getheaders(), data, time.monotonic() - start)
    finally:
        conn.close()


def get(port: int, path: str, **kwargs) -> Response:
    return request(port, "GET", path, **kwargs)


def tls_context(server_ca: Path, client_cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    """Verifies Envoy's certificate; presents client_cert (cert, key) when Envoy asks for one."""
    context = ssl.create_default_context(cafile=str(server_ca))
    context.set_alpn_protocols(["http/1.1"])  # http.client speaks HTTP/1.1 only
    if client_cert is not None:
        context.load_cert_chain(*client_cert)
    return context


def https_get(port: int, path: str, context: ssl.SSLContext, *, headers: Iterable[tuple[str, str]] = (),
              timeout: float = 15.0, server_hostname: str | None = None) -> Response:
    """GET over Envoy's TLS listener on a fresh connection to loopback; with server_hostname the
    hello carries SNI (JA4 marks a hello without one `i` instead of `d`)."""
    conn = http.client.HTTPConnection(server_hostname or LOOPBACK, port, timeout=timeout)
    try:
        raw = socket.create_connection((LOOPBACK, port), timeout=timeout)
        # An IP literal is checked against the certificate but sent as no SNI, as HTTPSConnection does.
        conn.sock = context.wrap_socket(raw, server_hostname=server_hostname or LOOPBACK)  # closes raw if it fails
        conn.putrequest("GET", path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        return Response(resp.status, resp.reason, resp.getheaders(), resp.read())
    finally:
        conn.close()


@dataclass
class RawResponse:
    status: int | None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    error: str = ""  # what went wrong reading, if the answer was not a full HTTP response

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


def raw_exchange(port: int, head: bytes, body: bytes = b"", *, timeout: float = 15.0) -> RawResponse:
    """Send arbitrary bytes and read one HTTP response.

    The bytes are written from a second thread so a server that answers early (413 before the
    body is all sent) is read instead of deadlocking on a full send buffer.
    """
    sock = socket.create_connection((LOOPBACK, port), timeout=timeout)

    def pump() -> None:
        try:
            sock.sendall(head)
            view = memoryview(body)
            for offset in range(0, len(view), 65536):
                sock.sendall(view[offset:offset + 65536])
        except OSError:
            pass  # the server answered and closed before taking the whole body

    sender = threading.Thread(target=pump, name="raw-sender", daemon=True)
    sender.start()
    try:
        resp = http.client.HTTPResponse(sock)
        try:
            resp.begin()
            data = resp.read()
        except (http.client.HTTPException, ConnectionError) as exc:
            return RawResponse(None, error=repr(exc))
        return RawResponse(resp.status, resp.getheaders(), data)
    finally:
        sender.join(timeout)
        sock.close()


# -- the echo upstream -----------------------------------------------------------------------


def marker() -> str:
    return uuid.uuid4().hex[:16]


def echo_values(echo: dict, name: str) -> list[str]:
    """Values of a header as the upstream received it (echo JSON)."""
    return [v for k, v in echo["headers"] if k == name.lower()]


def extproc_headers(echo: dict) -> list[tuple[str, str]]:
    return [(k, v) for k, v in echo["headers"] if k.startswith("x-extproc-")]


def upstream_saw(stack, text: str) -> list[dict]:
    """Requests recorded by the echo upstream whose path contains ``text``."""
    return [r for r in stack.upstream.requests() if text in r["path"]]


# -- health ------------------------------------------------------------------------------------


def grpc_serving(address: str, timeout: float = 2.0) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def assert_still_serving(stack, path: str = "/healthcheck") -> None:
    """The sidecar process is alive, says SERVING, and a plain request passes end to end."""
    assert stack.sidecar.process.poll() is None, f"sidecar exited with {stack.sidecar.process.returncode}"
    assert grpc_serving(stack.sidecar.address), "sidecar health check is not SERVING"
    probe = marker()
    resp = get(stack.listen_port, f"{path}?probe={probe}")
    assert resp.status == 200, resp
    assert upstream_saw(stack, probe), "the follow-up request did not reach the upstream"


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def free_port_pair() -> int:
    """A port p such that p and p+1 were both free a moment ago (per-worker metrics)."""
    for _ in range(50):
        port = free_port()
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind((LOOPBACK, port))
                b.bind((LOOPBACK, port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no two consecutive free ports")


# -- processes ---------------------------------------------------------------------------------


def pids_with_arg(text: str) -> list[int]:
    """Live (non-zombie) processes whose command line contains ``text`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state != "Z" and text.encode() in cmdline:
            found.append(int(entry.name))
    return sorted(found)


def parent_pid(pid: int) -> int | None:
    try:
        return int((Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()[1])
    except OSError:
        return None


def scrape(port: int) -> str:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        assert resp.status == 200
        return resp.read().decode()
    finally:
        conn.close()


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (0 when none)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        sample, _, value = line.rpartition(" ")
        metric, _, label_text = sample.partition("{")
        if metric != name:
            continue
        pairs = dict(
            part.split("=", 1) for part in label_text.rstrip("}").split(",") if "=" in part
        )
        pairs = {k: v.strip('"') for k, v in pairs.items()}
        if all(pairs.get(k) == v for k, v in labels.items()):
            total += float(value)
    return total
