"""Only the sidecar's own Envoy may call ext_proc: whoever can call it is believed about the client's
certificate, and gets back an identity assertion that upstreams trust.

The attack: a direct gRPC call claiming ``connection.mtls=true`` and the billing workload's SAN.
Through a real Envoy the same identity works over a Unix socket and over mutual TLS; straight to the
sidecar it is refused: no TCP port to reach (loopback only, or a Unix socket), or no TLS handshake
without a client certificate from the sidecar's CA. The admin port stays one thread under 500 idle
connections.
"""
from __future__ import annotations

import json
import os
import socket
from contextlib import ExitStack

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from extproc.wire import messages
from extproc.local.envoy import EXTPROC_SERVER_NAME, write_client_ca
from extproc.wire.pb import external_processor_pb2 as pb
from extproc.wire.pb import external_processor_pb2_grpc as pb_grpc
from extproc_lab.keys import write_pem
from tests.support.e2e_support import (echo_values, free_port_pair, https_get, marker, started_stack, tls_context,
                                      upstream_saw)

BILLING_SAN = "spiffe://mesh.example/ns/billing/sa/api"
IDLE_CONNECTIONS = 500


def policy(assertion_key) -> str:
    return f"""
version: 1
access:
  mtls: {{source: attributes}}
  assertion: {{key_file: {assertion_key}, issuer: extproc-e2e}}
  apps:
    - name: billing
      routes: [billing]
      audience: billing
      policies: [{{name: billing-mesh, include: [{{mtls_san: ['spiffe://mesh.example/ns/billing/*']}}]}}]
defaults:
  layers:
    access: {{}}
routes:
  - {{name: billing, match: {{path_prefix: /billing}}}}
"""


def start(tmp_path_factory, name: str, transport: str, sidecar_args: list[str] = ()):
    workdir = tmp_path_factory.mktemp(name)
    key = write_pem(workdir / "assertion.pem", ed25519.Ed25519PrivateKey.generate())
    return started_stack(f"{name} stack", policy(key), workdir, sidecar_transport=transport,
                         sidecar_args=["--drain-seconds", "1", *sidecar_args])


@pytest.fixture(scope="module")
def unix_stack(tmp_path_factory):
    admin_port = free_port_pair()
    with start(tmp_path_factory, "unix", "unix", ["--metrics-address", f"127.0.0.1:{admin_port}"]) as s:
        s.admin_port = admin_port
        yield s


@pytest.fixture(scope="module")
def mtls_stack(tmp_path_factory):
    with start(tmp_path_factory, "mtls", "mtls") as s:
        yield s


def forged_mtls_request() -> pb.ProcessingRequest:
    """What the attacker sent: Envoy's request_headers message, claiming a verified billing cert."""
    return messages.request_headers("GET", "/billing/x", authority="app", scheme="https", attributes={
        "connection.mtls": True, "connection.uri_san_peer_certificate": BILLING_SAN, "xds.route_name": "billing",
        "source.address": "10.0.0.9:1234"})


def minted_headers(channel: grpc.Channel) -> dict[str, str]:
    """The headers the sidecar would add upstream for the forged request."""
    (reply,) = pb_grpc.ExternalProcessorStub(channel).Process(iter([forged_mtls_request()]), timeout=5)
    mutation = reply.request_headers.response.header_mutation
    return {option.header.key: option.header.raw_value.decode() for option in mutation.set_headers}


def billing_through_envoy(stack, tmp_path) -> dict:
    cert = stack.client_ca.issue(tmp_path, "billing", uris=(BILLING_SAN,))
    tag = marker()
    response = https_get(stack.tls_port, f"/billing/{tag}", tls_context(stack.envoy.cert_path, cert))
    assert response.status == 200, response
    (echo,) = upstream_saw(stack, tag)
    return echo


# -- Unix socket: Envoy in the same pod ------------------------------------------------------


def test_envoy_reaches_the_sidecar_over_its_unix_socket(unix_stack, tmp_path):
    echo = billing_through_envoy(unix_stack, tmp_path)
    assert echo_values(echo, "x-extproc-user-id") == [BILLING_SAN]
    assert len(echo_values(echo, "x-extproc-assertion")) == 1
    assert os.stat(unix_stack.sidecar.address.removeprefix("unix:")).st_mode & 0o007 == 0  # not world-usable


def test_the_tcp_port_of_a_unix_socket_sidecar_serves_health_only(unix_stack):
    with grpc.insecure_channel(unix_stack.sidecar.health_address) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            minted_headers(channel)
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED


# -- TCP: loopback by default ---------------------------------------------------------------


def non_loopback_address() -> str | None:
    """This host's address on its outward interface (no packet is sent), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_the_default_address_refuses_connections_from_other_hosts(tmp_path_factory):
    outward = non_loopback_address()
    if outward is None:
        pytest.skip("this host has no non-loopback IPv4 address")
    with start(tmp_path_factory, "tcp", "tcp") as stack:
        port = stack.sidecar.port
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((outward, port), timeout=5).close()
        with grpc.insecure_channel(f"{outward}:{port}") as channel, pytest.raises(grpc.RpcError) as refused:
            minted_headers(channel)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        with grpc.insecure_channel(stack.sidecar.address) as channel:  # control: loopback is the pod
            assert "x-extproc-assertion" in minted_headers(channel)


# -- mutual TLS: Envoy apart from the sidecar ------------------------------------------------


def test_envoy_reaches_the_sidecar_over_mutual_tls(mtls_stack, tmp_path):
    echo = billing_through_envoy(mtls_stack, tmp_path)
    assert echo_values(echo, "x-extproc-user-id") == [BILLING_SAN]
    assert len(echo_values(echo, "x-extproc-assertion")) == 1


def tls_channel(stack, client_cert: tuple | None) -> grpc.Channel:
    tls = stack.sidecar_tls
    key_pair = {}
    if client_cert is not None:
        key_pair = {"certificate_chain": client_cert[0].read_bytes(), "private_key": client_cert[1].read_bytes()}
    credentials = grpc.ssl_channel_credentials(root_certificates=tls.ca.cert_path.read_bytes(), **key_pair)
    return grpc.secure_channel(stack.sidecar.address, credentials,
                               options=[("grpc.ssl_target_name_override", EXTPROC_SERVER_NAME)])


@pytest.mark.parametrize("caller", ["no client certificate", "a certificate from another CA", "plaintext"])
def test_a_caller_without_envoys_certificate_cannot_mint_identities(mtls_stack, tmp_path, caller):
    with ExitStack() as cleanup:
        if caller == "plaintext":
            channel = grpc.insecure_channel(mtls_stack.sidecar.address)
        elif caller == "no client certificate":
            channel = tls_channel(mtls_stack, None)
        else:
            stranger = write_client_ca(tmp_path, name="someone else's CA").issue(tmp_path, "intruder")
            channel = tls_channel(mtls_stack, stranger)
        cleanup.enter_context(channel)
        with pytest.raises(grpc.RpcError) as refused:
            minted_headers(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_envoys_client_certificate_is_what_the_sidecar_trusts(mtls_stack):
    # The control for the test above: the same call with Envoy's certificate is answered.
    tls = mtls_stack.sidecar_tls
    with tls_channel(mtls_stack, (tls.client_cert, tls.client_key)) as channel:
        assert "x-extproc-assertion" in minted_headers(channel)


# -- the admin port --------------------------------------------------------------------------


def thread_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def admin_get(port: int, path: str) -> tuple[int, bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_idle_connections_to_the_admin_port_do_not_cost_a_thread_each(unix_stack):
    pid = unix_stack.sidecar.process.pid
    assert admin_get(unix_stack.admin_port, "/metrics")[0] == 200
    before = thread_count(pid)
    idle = []
    try:
        for _ in range(IDLE_CONNECTIONS):
            idle.append(socket.create_connection(("127.0.0.1", unix_stack.admin_port), timeout=5))
        idle[-1].sendall(b"GET /metrics HTTP/1.1\r\n")  # a head that never ends, on top
        assert admin_get(unix_stack.admin_port, "/metrics")[0] == 200  # a scraper still gets in
        during = thread_count(pid)
    finally:
        for connection in idle:
            connection.close()
    assert during - before < 5, f"{during} threads with {IDLE_CONNECTIONS} idle connections, {before} before"
    assert admin_get(unix_stack.admin_port, "/metrics")[0] == 200


@pytest.mark.parametrize("path", ["/", "/metricsx", "/admin", "/.well-known/", "/debug/vars"])
def test_the_admin_port_serves_only_its_known_paths(unix_stack, path):
    assert admin_get(unix_stack.admin_port, path)[0] == 404


def test_the_admin_port_publishes_the_assertion_jwks(unix_stack):
    status, body = admin_get(unix_stack.admin_port, "/.well-known/jwks.json")
    assert status == 200 and b'"keys"' in body


# -- the red team's direct call -------------------------------------------------------------


def test_the_red_teams_direct_call_is_refused_by_the_unix_socket_sidecar_and_flags_a_tcp_one(unix_stack,
                                                                                             tmp_path_factory,
                                                                                             tmp_path):
    """`redteam smuggle --sidecar`: the health port of a Unix-socket sidecar does not serve ext_proc
    (exit 0); a loopback TCP sidecar, called from its own host, answers and mints the forged
    identity, which the command reports (exit 1): run from another pod, that answer is a finding."""
    from extproc.cli import main

    target = f"http://127.0.0.1:{unix_stack.listen_port}"
    out = tmp_path / "refused.json"
    assert main(["redteam", "smuggle", "--target", target, "--sidecar", unix_stack.sidecar.health_address,
                 "--protected", "/billing/x", "--json", str(out)]) == 0
    (row,) = [r for r in json.loads(out.read_text())["rows"] if r["name"] == "direct-ext-proc"]
    assert row["verdict"] == "refused" and row["note"].startswith("UNIMPLEMENTED")
    with start(tmp_path_factory, "tcp-redteam", "tcp") as stack:
        out = tmp_path / "answered.json"
        assert main(["redteam", "smuggle", "--target", f"http://127.0.0.1:{stack.listen_port}", "--sidecar",
                     stack.sidecar.address, "--protected", "/billing/x", "--json", str(out)]) == 1
        (row,) = [r for r in json.loads(out.read_text())["rows"] if r["name"] == "direct-ext-proc"]
        assert row["verdict"] == "answered" and "a deny, 403" in row["note"]  # the forged SAN is no billing one
