"""Who may connect: the listen-address policy of `extproc serve`, and the admin port's answers."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from extproc import cli
from extproc.observability.admin import admin_reply
from extproc.local.envoy import write_client_ca
from extproc.wire.listen import AddressError, parse_address, refusal, tls_files
from extproc.observability.metrics import Metrics

LOCAL = ["127.0.0.1:50051", "127.9.9.9:1", "localhost:50051", "LOCALHOST:1", "[::1]:50051",
         "unix:/run/extproc/extproc.sock", "unix:///tmp/x.sock"]
REMOTE = ["0.0.0.0:50051", ":50051", "[::]:50051", "10.1.2.3:50051", "192.0.2.2:1", "[fd00::2]:50051",
          "extproc.default.svc:50051", "localhost.evil.example:50051", "127.0.0.1.nip.io:1", "[::ffff:10.0.0.1]:1"]


@pytest.mark.parametrize("address", LOCAL)
def test_loopback_and_unix_sockets_are_local(address):
    assert parse_address(address).is_local
    assert refusal(parse_address(address), tls=False, opted_in=False, opt_in_flag="--x") is None


@pytest.mark.parametrize("address", REMOTE)
def test_any_other_address_is_refused_without_tls_or_opt_in(address):
    parsed = parse_address(address)
    assert not parsed.is_local
    problem = refusal(parsed, tls=False, opted_in=False, opt_in_flag="--insecure-address")
    assert problem and "--insecure-address" in problem and address in problem
    assert refusal(parsed, tls=True, opted_in=False, opt_in_flag="--x") is None
    assert refusal(parsed, tls=False, opted_in=True, opt_in_flag="--x") is None


@pytest.mark.parametrize("address", ["50051", "host:port", "unix:relative.sock", "1.2.3.4:70000", ""])
def test_malformed_addresses_are_errors(address):
    with pytest.raises(AddressError):
        parse_address(address)


def test_unix_paths_keep_their_absolute_path():
    assert parse_address("unix:/run/x.sock").unix_path == "/run/x.sock"
    assert parse_address("unix:///run/x.sock").unix_path == "/run/x.sock"


def test_tls_is_always_mutual(tmp_path):
    ca = write_client_ca(tmp_path)
    cert, key = ca.issue(tmp_path, "sidecar", dns_names=("extproc",), server=True)
    assert tls_files(None, None, None) is None
    with pytest.raises(AddressError, match="go together"):
        tls_files(str(cert), str(key), None)  # a server cert alone would let anyone call
    with pytest.raises(AddressError, match="no such file"):
        tls_files(str(cert), str(key), str(tmp_path / "missing.crt"))
    files = tls_files(str(cert), str(key), str(ca.cert_path))
    assert files.server_context().verify_mode.name == "CERT_REQUIRED"


def serve_args(*extra: str):
    return cli._parser().parse_args(["serve", "--config", "policy.yaml", *extra])


@pytest.mark.parametrize(("extra", "refused_for"), [
    (["--address", "0.0.0.0:50051"], "--insecure-address"),
    (["--metrics-address", "0.0.0.0:9464"], "--public-metrics"),
    (["--address", "0.0.0.0:50051", "--public-metrics"], "--insecure-address"),
    (["--metrics-address", "[::]:9464", "--insecure-address"], "--public-metrics"),
])
def test_serve_refuses_reachable_ports_without_authentication(extra, refused_for):
    problem = cli._listen_problem(serve_args(*extra))
    assert problem and refused_for in problem


def test_serve_accepts_local_addresses_tls_and_explicit_opt_ins(tmp_path):
    ca = write_client_ca(tmp_path)
    cert, key = ca.issue(tmp_path, "sidecar", server=True)
    tls = ["--tls-cert", str(cert), "--tls-key", str(key), "--client-ca", str(ca.cert_path)]
    for extra in ([], ["--address", "unix:/tmp/e.sock", "--health-address", "0.0.0.0:50052"],
                  ["--address", "0.0.0.0:50051", "--metrics-address", "0.0.0.0:9464", *tls],
                  ["--address", "0.0.0.0:50051", "--insecure-address"],
                  ["--metrics-address", "0.0.0.0:9464", "--public-metrics"]):
        assert cli._listen_problem(serve_args(*extra)) is None, extra


def test_serve_exits_2_before_listening_on_a_reachable_plaintext_port():
    assert cli.main(["serve", "--config", "deploy/policy/demo.yaml", "--address", "0.0.0.0:1"]) == 2


def test_workers_cannot_share_a_unix_socket():
    problem = cli._listen_problem(serve_args("--address", "unix:/tmp/e.sock", "--workers", "2"))
    assert problem and "TCP" in problem


# -- the admin port's answers ---------------------------------------------------------------


def admin_store(signer=None):
    return SimpleNamespace(current=SimpleNamespace(access=SimpleNamespace(signer=signer)))


@pytest.mark.parametrize("path", ["/", "/metrics/", "/metricsx", "/favicon.ico", "/.well-known/jwks", "/../metrics"])
def test_the_admin_port_answers_404_off_its_paths(path):
    assert admin_reply("GET", path, Metrics(), admin_store()).status == 404


def test_the_admin_port_serves_metrics_and_refuses_other_methods():
    metrics = Metrics()
    reply = admin_reply("GET", "/metrics?x=1", metrics, admin_store())
    assert reply.status == 200 and b"# TYPE" in reply.body
    assert admin_reply("POST", "/metrics", metrics, admin_store()).status == 405


def test_the_jwks_is_404_without_an_assertion_key_and_json_with_one():
    assert admin_reply("GET", "/.well-known/jwks.json", Metrics(), admin_store()).status == 404
    signer = SimpleNamespace(jwks=lambda: {"keys": [{"kty": "OKP"}]})
    reply = admin_reply("GET", "/.well-known/jwks.json", Metrics(), admin_store(signer))
    assert reply.status == 200 and reply.body == b'{"keys": [{"kty": "OKP"}]}'
