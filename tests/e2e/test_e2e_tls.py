"""TLS fingerprints: Envoy's HTTPS listener hands the client's JA3/JA4 to the sidecar and the app as
x-ja3 / x-ja4, and no client-sent copy of those headers survives on either listener.

The policy makes the sidecar's view visible: it tags a request whose x-ja4 looks genuine and
denies one whose x-ja4 is the forged value, so a 200 with the tag means the sidecar saw Envoy's
fingerprint and not the client's.
"""
from __future__ import annotations

import re
import ssl

import pytest
from tests.support.e2e_support import Response, echo_values, get, marker, started_stack
from tests.support.e2e_support import https_get as https_get_port

POLICY = """
version: 1
defaults:
  layers:
    rules:
      rules:
        - id: tls-forged-ja4
          match: {headers: {x-ja4: {exact: forged}}}
          action: deny
        - id: tls-ja4-seen
          match: {headers: {x-ja4: {regex: '^t1[23]d'}}}
          action: tag
          tags: [ja4-seen]
"""

JA3 = re.compile(r"[0-9a-f]{32}")
JA4 = re.compile(r"t1[23]d\d{4}(h1|h2|00)_[0-9a-f]{12}_[0-9a-f]{12}")
FORGED = [("x-ja4", "forged"), ("X-JA3", "forged"), ("x-ja4", "forged"), ("x-e2e-last", "1")]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with started_stack("tls stack", POLICY, tmp_path_factory.mktemp("tls")) as s:
        yield s


def client_context(stack, *, max_version: ssl.TLSVersion | None = None, ciphers: str | None = None) -> ssl.SSLContext:
    """A verifying client context; the options change the ClientHello, hence the fingerprint."""
    context = ssl.create_default_context(cafile=str(stack.envoy.cert_path))
    context.set_alpn_protocols(["http/1.1"])  # http.client speaks HTTP/1.1 only
    if max_version is not None:
        context.maximum_version = max_version
    if ciphers is not None:
        context.set_ciphers(ciphers)
    return context


def https_get(stack, path: str, context: ssl.SSLContext, headers=()) -> Response:
    return https_get_port(stack.tls_port, path, context, headers=headers, server_hostname="localhost")


def fingerprints(resp: Response) -> tuple[str, str]:
    """The single x-ja3 and x-ja4 the app received, checked for their format."""
    assert resp.status == 200, resp
    echo = resp.json()
    (ja3,), (ja4,) = echo_values(echo, "x-ja3"), echo_values(echo, "x-ja4")
    assert JA3.fullmatch(ja3), ja3
    assert JA4.fullmatch(ja4), ja4
    return ja3, ja4


def header_names(resp: Response) -> list[str]:
    return [name for name, _ in resp.json()["headers"]]


def test_tls_request_carries_fingerprints_to_sidecar_and_app(stack):
    resp = https_get(stack, f"/fp?m={marker()}", client_context(stack))
    fingerprints(resp)
    assert echo_values(resp.json(), "x-extproc-tags") == ["ja4-seen"]  # the sidecar saw a real JA4
    assert echo_values(resp.json(), "x-forwarded-proto") == ["https"]


def test_forged_fingerprints_over_tls_are_replaced_after_the_client_headers(stack):
    resp = https_get(stack, f"/fp?m={marker()}", client_context(stack), headers=FORGED)
    _, ja4 = fingerprints(resp)  # exactly one of each, and genuine
    assert ja4 != "forged"
    names = header_names(resp)
    assert names.index("x-ja3") > names.index("x-e2e-last")
    assert names.index("x-ja4") > names.index("x-e2e-last")


@pytest.mark.parametrize("path", ["/plain", "/static/app.css"])  # with and without the sidecar
def test_forged_fingerprints_over_plain_http_do_not_reach_the_app(stack, path):
    resp = get(stack.listen_port, f"{path}?m={marker()}", headers=FORGED)
    assert resp.status == 200, resp
    names = header_names(resp)
    assert "x-ja3" not in names and "x-ja4" not in names
    assert "x-e2e-last" in names


def test_different_client_tls_configurations_give_different_ja4(stack):
    modern = client_context(stack)
    legacy = client_context(stack, max_version=ssl.TLSVersion.TLSv1_2, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
    ja3_modern, ja4_modern = fingerprints(https_get(stack, "/fp/modern", modern))
    ja3_legacy, ja4_legacy = fingerprints(https_get(stack, "/fp/legacy", legacy))
    assert ja4_modern.startswith("t13") and ja4_legacy.startswith("t12")
    assert ja4_modern != ja4_legacy and ja3_modern != ja3_legacy
    # Per connection, yet stable for one client configuration.
    assert fingerprints(https_get(stack, "/fp/modern-again", modern))[1] == ja4_modern
