"""The shipped Envoy bootstrap runs: Envoy validates it, and the harness starts Envoy with it in front
of an echo upstream and no sidecar (tests/unit/test_envoy_config.py reads the same config as data)."""

from __future__ import annotations

import http.client
import json
import ssl

import pytest

from extproc.local import envoy as eh
from extproc.local.upstream import EchoUpstream


def _envoy_missing() -> str | None:
    try:
        eh.envoy_binary()
    except RuntimeError as exc:
        return str(exc)
    return None


_MISSING = _envoy_missing()
needs_envoy = pytest.mark.skipif(_MISSING is not None, reason=f"no Envoy binary: {_MISSING}")


def _render(**overrides) -> dict:
    ports = dict(
        listen_port=eh.free_port(),
        admin_port=eh.free_port(),
        extproc_port=eh.free_port(),
        upstream_port=eh.free_port(),
    )
    ports.update(overrides)
    return eh.render_envoy_config(**ports)


def _tls_inspector(config: dict) -> dict:
    (listener_filter,) = eh.find_listener(config, eh.TLS_LISTENER)["listener_filters"]
    return listener_filter["typed_config"]


@needs_envoy
def test_shipped_bootstrap_validates():
    result = eh.validate_config(eh.DEFAULT_TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_envoy
def test_rendered_config_validates():
    result = eh.validate_config(_render(message_timeout=0.5))
    assert result.returncode == 0, result.stdout + result.stderr


# -- end-to-end smoke: Envoy + echo upstream, no sidecar ---------------------

@pytest.fixture
def upstream():
    server = EchoUpstream().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def envoy_without_sidecar(upstream, tmp_path):
    # The extproc port is free and nothing listens on it: the sidecar is "down".
    config = _render(upstream_port=upstream.port)
    proc = eh.EnvoyProcess(config, workdir=tmp_path)
    try:
        proc.start()
        yield proc
    finally:
        proc.stop()


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@needs_envoy
def test_static_route_bypasses_sidecar(envoy_without_sidecar, upstream):
    status, body = _get(envoy_without_sidecar.listen_port, "/static/x.css")
    assert status == 200, envoy_without_sidecar.log_text()
    echoed = json.loads(body)
    assert echoed["method"] == "GET" and echoed["path"] == "/static/x.css"
    assert [r["path"] for r in upstream.requests()] == ["/static/x.css"]


@needs_envoy
def test_sidecar_down_fails_closed(envoy_without_sidecar, upstream):
    status, _ = _get(envoy_without_sidecar.listen_port, "/")
    assert 500 <= status < 600
    assert upstream.requests() == []
    stats = envoy_without_sidecar.stats("http.ingress.ext_proc.")
    assert stats.get("http.ingress.ext_proc.streams_started", 0) >= 1


@needs_envoy
def test_stop_is_idempotent(envoy_without_sidecar):
    envoy_without_sidecar.stop()
    envoy_without_sidecar.stop()
    assert not envoy_without_sidecar.running()

def _https_get(envoy: eh.EnvoyProcess, path: str, headers: list[tuple[str, str]]) -> tuple[int, bytes]:
    context = ssl.create_default_context(cafile=str(envoy.cert_path))
    conn = http.client.HTTPSConnection("127.0.0.1", envoy.tls_port, timeout=10, context=context)
    try:
        conn.request("GET", path, headers=dict(headers))
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@needs_envoy
def test_tls_without_fingerprints_forwards_no_client_copies(upstream, tmp_path):
    # With fingerprinting off the operators yield nothing: the client's values must not stand in.
    config = _render(upstream_port=upstream.port)
    _tls_inspector(config).update(enable_ja3_fingerprinting=False, enable_ja4_fingerprinting=False)
    with eh.EnvoyProcess(config, workdir=tmp_path) as envoy:
        status, body = _https_get(envoy, "/static/x.css", [("x-ja3", "forged"), ("x-ja4", "forged")])
    assert status == 200
    names = [name for name, _ in json.loads(body)["headers"]]
    assert "x-ja3" not in names and "x-ja4" not in names
