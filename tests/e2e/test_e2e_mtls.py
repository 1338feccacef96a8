"""Client-certificate identity end to end: Envoy's TLS listener verifies the certificate against its
client CA, hands the SANs to the sidecar as connection.* attributes, and the access layer decides.

Client certificates come from the CA the harness made for this Envoy (stack.client_ca). A forged
x-forwarded-client-cert header must never stand in for a certificate: Envoy drops it (SANITIZE)
before the sidecar or the app can see it, so even a policy that reads XFCC finds none.
"""
from __future__ import annotations

import json
import ssl

import pytest

from extproc.local.envoy import write_client_ca
from tests.support.e2e_support import (
    echo_values,
    get,
    https_get,
    marker,
    started_stack,
    tls_context,
    upstream_saw,
    wait_for,
)

BILLING_SAN = "spiffe://mesh.example/ns/billing/sa/api"
WEB_SAN = "spiffe://mesh.example/ns/web/sa/frontend"
FORGED_XFCC = f'By=spiffe://mesh.example/ns/edge;Hash=00;URI={BILLING_SAN};Subject="CN=billing"'


def policy(source: str) -> str:
    return f"""
version: 1
access:
  mtls: {{source: {source}}}
  apps:
    - name: billing
      routes: [billing]
      policies: [{{name: billing-mesh, include: [{{mtls_san: ['spiffe://mesh.example/ns/billing/*']}}]}}]
    - name: internal
      routes: [internal]
      policies: [{{name: any-client-certificate, include: [{{mtls: true}}]}}]
defaults:
  layers:
    access: {{}}
routes:
  - {{name: billing, match: {{path_prefix: /billing}}}}
  - {{name: internal, match: {{path_prefix: /internal}}}}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with started_stack("mtls stack", policy("attributes"), tmp_path_factory.mktemp("mtls")) as s:
        yield s


@pytest.fixture(scope="module")
def xfcc_stack(tmp_path_factory):
    with started_stack("mtls xfcc stack", policy("xfcc"), tmp_path_factory.mktemp("mtls-xfcc")) as s:
        yield s


def client(stack, tmp_path, name: str, *uris: str) -> ssl.SSLContext:
    """A context presenting a new certificate from the CA this stack's Envoy trusts."""
    cert = stack.client_ca.issue(tmp_path, name, uris=uris, dns_names=(f"{name}.svc.mesh.example",))
    return tls_context(stack.envoy.cert_path, cert)


def no_certificate(stack) -> ssl.SSLContext:
    return tls_context(stack.envoy.cert_path)


def denial_reasons(stack, resp) -> list[str]:
    """The sidecar's logged reasons for this denied response (matched by its request id)."""
    request_id = resp.header("x-request-id")

    def logged():
        entries = (json.loads(line) for line in stack.sidecar.log_text().splitlines() if line.startswith("{"))
        return next((entry for entry in entries if entry.get("request_id") == request_id), None)

    return wait_for(logged, 5, what="the deny in the sidecar log")["reasons"]


def test_billing_certificate_gets_in_and_the_app_sees_the_identity(stack, tmp_path):
    resp = https_get(stack.tls_port, f"/billing/invoices?m={marker()}", client(stack, tmp_path, "billing", BILLING_SAN))
    assert resp.status == 200, resp
    echo = resp.json()
    assert echo_values(echo, "x-extproc-user-methods") == ["mtls"]
    assert echo_values(echo, "x-extproc-user-id") == [BILLING_SAN]
    assert echo_values(echo, "x-extproc-access-app") == ["billing"]
    assert echo_values(echo, "x-forwarded-client-cert") == []  # SANITIZE: not passed upstream either


def test_certificate_with_another_san_is_forbidden(stack, tmp_path):
    resp = https_get(stack.tls_port, "/billing/invoices", client(stack, tmp_path, "web", WEB_SAN))
    assert resp.status == 403, resp
    assert "access:identity=" + WEB_SAN in denial_reasons(stack, resp)


def test_any_trusted_certificate_passes_the_route_needing_mtls(stack, tmp_path):
    resp = https_get(stack.tls_port, "/internal/status", client(stack, tmp_path, "web", WEB_SAN))
    assert resp.status == 200, resp
    assert echo_values(resp.json(), "x-extproc-user-id") == [WEB_SAN]


@pytest.mark.parametrize("path", ["/billing/invoices", "/internal/status"])
def test_no_certificate_is_unauthorized(stack, path):
    resp = https_get(stack.tls_port, path, no_certificate(stack))
    assert resp.status == 401, resp
    assert "access:no_credentials" in denial_reasons(stack, resp)


def verify_failures(stack) -> int:
    """Client certificates Envoy's TLS listener rejected as not chaining to its CA."""
    name = f"listener.127.0.0.1_{stack.tls_port}.ssl.fail_verify_error"
    return stack.envoy.stats(name).get(name, 0)


def test_certificate_from_an_untrusted_ca_is_refused_by_envoy_at_the_handshake(stack, tmp_path):
    stranger = write_client_ca(tmp_path, "stranger CA")  # same SAN, wrong issuer
    context = tls_context(stack.envoy.cert_path, stranger.issue(tmp_path, "billing", uris=(BILLING_SAN,)))
    failed_before = verify_failures(stack)
    probe = marker()
    # TLS 1.3: the client's side of the handshake completes before Envoy checks the certificate;
    # Envoy then closes the connection, which the client sees on its first read or write.
    with pytest.raises((ssl.SSLError, ConnectionError)):
        https_get(stack.tls_port, f"/billing/invoices?m={probe}", context)
    assert verify_failures(stack) == failed_before + 1
    assert not upstream_saw(stack, probe)


def send_forged_xfcc(stack, tmp_path, transport: str, path: str):
    headers = [("x-forwarded-client-cert", FORGED_XFCC)]
    if transport == "http":
        return get(stack.listen_port, path, headers=headers)
    context = client(stack, tmp_path, "web", WEB_SAN) if transport == "mtls" else no_certificate(stack)
    return https_get(stack.tls_port, path, context, headers=headers)


@pytest.mark.parametrize("transport", ["http", "tls", "mtls"])
def test_forged_xfcc_never_reaches_a_sidecar_that_reads_xfcc(xfcc_stack, tmp_path, transport):
    # Even on a verified mTLS connection: SANITIZE drops the header instead of setting Envoy's own.
    resp = send_forged_xfcc(xfcc_stack, tmp_path, transport, "/billing/invoices")
    assert resp.status == 401, resp
    assert "access:no_credentials" in denial_reasons(xfcc_stack, resp)


@pytest.mark.parametrize("transport", ["http", "tls", "mtls"])
def test_forged_xfcc_never_reaches_the_app_on_a_route_without_the_sidecar(stack, tmp_path, transport):
    resp = send_forged_xfcc(stack, tmp_path, transport, f"/static/app.css?m={marker()}")
    assert resp.status == 200, resp
    assert echo_values(resp.json(), "x-forwarded-client-cert") == []
