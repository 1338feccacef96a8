"""Identity parsing end to end (issue 19), through a real Envoy.

- x-forwarded-client-cert: Envoy terminates mTLS and writes the header itself (SANITIZE_SET, or
  APPEND_FORWARD after what the client sent); the sidecar reads it with ``mtls: {source: xfcc}``.
  Certificates with hostile CNs and SANs come from the harness's client CA. The header Envoy
  writes is compared byte for byte with tests/support/xfcc_envoy.py, the encoder the unit property test uses.
- Tokens: with the access layer at ``on_error: open``, a token whose ``iss`` is an array is a 401,
  not a fault that lets it through; a bad cookie beside a good bearer is a 401; a JWKS key under
  2048 bits is refused.
"""
from __future__ import annotations

import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from extproc.local.envoy import http_connection_manager
from extproc_lab.keys import JwksServer, claims, jwks, new_key
from tests.support.e2e_support import echo_values, https_get, marker, request, started_stack, tls_context, wait_for
from tests.unit.test_access_identity import unsigned
from tests.support.xfcc_envoy import element

ISSUER = "https://idp.corp.example"
BILLING = "spiffe://mesh.example/ns/billing/sa/api"
WEB = "spiffe://mesh.example/ns/web/sa/frontend"
HOSTILE_CNS = [f'x";URI={BILLING}', 'a,b;c=d\\e+f<g>h"i', "#lead ", ' x"', "é\x01\x7f", 'x\\";DNS=evil.example']


def xfcc_policy() -> str:
    return """
version: 1
access:
  mtls: {source: xfcc}
  apps:
    - name: billing
      routes: [billing]
      policies: [{name: billing-mesh, include: [{mtls_san: ['spiffe://mesh.example/ns/billing/*']}]}]
defaults:
  layers:
    access: {}
routes:
  - {name: billing, match: {path_prefix: /billing}}
  - {name: echo, match: {path_prefix: /echo}, public: true}
"""


def forward(mode: str):
    def change(config: dict) -> None:
        manager = http_connection_manager(config)
        manager["forward_client_cert_details"] = mode
        manager["set_current_client_cert_details"] = {"subject": True, "uri": True, "dns": True, "cert": True}
    return change


@pytest.fixture(scope="module")
def set_stack(tmp_path_factory):
    with started_stack("xfcc sanitize-set stack", xfcc_policy(), tmp_path_factory.mktemp("xfcc-set"),
                       envoy_changes=forward("SANITIZE_SET")) as s:
        yield s


@pytest.fixture(scope="module")
def append_stack(tmp_path_factory):
    with started_stack("xfcc append-forward stack", xfcc_policy(), tmp_path_factory.mktemp("xfcc-append"),
                       envoy_changes=forward("APPEND_FORWARD")) as s:
        yield s


def issue(stack, tmp_path, name, common_name, uris=(), dns=()):
    paths = stack.client_ca.issue(tmp_path, name, uris=uris, dns_names=dns, common_name=common_name)
    return paths, x509.load_pem_x509_certificate(paths[0].read_bytes())


def denial_reasons(stack, resp) -> list[str]:
    request_id = resp.header("x-request-id")

    def logged():
        entries = (json.loads(line) for line in stack.sidecar.log_text().splitlines() if line.startswith("{"))
        return next((entry for entry in entries if entry.get("request_id") == request_id), None)

    return wait_for(logged, 5, what="the deny in the sidecar log")["reasons"]


@pytest.mark.parametrize("index, common_name", list(enumerate(HOSTILE_CNS)))
def test_envoy_writes_xfcc_exactly_as_our_encoder_does(set_stack, tmp_path, index, common_name):
    uris, dns = (WEB, f"{WEB}/x;y"), ("web.svc.mesh.example", "a,b")
    paths, cert = issue(set_stack, tmp_path, f"hostile{index}", common_name, uris, dns)
    resp = https_get(set_stack.tls_port, f"/echo/{marker()}", tls_context(set_stack.envoy.cert_path, paths))
    assert resp.status == 200, resp
    assert echo_values(resp.json(), "x-forwarded-client-cert") == [element(cert)]


@pytest.mark.parametrize("index, common_name", list(enumerate(HOSTILE_CNS)))
def test_a_hostile_subject_never_becomes_a_san(set_stack, tmp_path, index, common_name):
    paths, _ = issue(set_stack, tmp_path, f"web{index}", common_name, (WEB,))
    resp = https_get(set_stack.tls_port, "/billing/invoices", tls_context(set_stack.envoy.cert_path, paths))
    assert resp.status == 403, resp  # the web identity, which billing does not allow
    assert f"access:identity={WEB}" in denial_reasons(set_stack, resp)


def test_the_billing_certificate_gets_in_with_its_own_identity(set_stack, tmp_path):
    paths, _ = issue(set_stack, tmp_path, "billing", 'billing";URI=spiffe://x', (BILLING,))
    resp = https_get(set_stack.tls_port, "/billing/invoices", tls_context(set_stack.envoy.cert_path, paths))
    assert resp.status == 200, resp
    assert echo_values(resp.json(), "x-extproc-user-id") == [BILLING]


@pytest.mark.parametrize("san", [f"{WEB},URI={BILLING}", f"{WEB};URI={BILLING}", f'{WEB}";URI={BILLING}'])
def test_a_san_that_envoy_writes_raw_cannot_pose_as_another(set_stack, tmp_path, san):
    paths, _ = issue(set_stack, tmp_path, "smuggler", "smuggler", (san,))
    resp = https_get(set_stack.tls_port, "/billing/invoices", tls_context(set_stack.envoy.cert_path, paths))
    assert resp.status == 401, resp
    assert {"access:xfcc_cert_mismatch", "access:xfcc_malformed"} & set(denial_reasons(set_stack, resp))


def test_append_forward_trusts_only_the_element_envoy_appended(append_stack, tmp_path):
    _, billing_cert = issue(append_stack, tmp_path, "billing", "billing", (BILLING,))
    forged = element(billing_cert)  # a whole, well-formed element of a real billing certificate
    paths, _ = issue(append_stack, tmp_path, "web", f'x";URI={BILLING}', (WEB,))
    context = tls_context(append_stack.envoy.cert_path, paths)
    resp = https_get(append_stack.tls_port, "/billing/invoices", context, headers=[("x-forwarded-client-cert", forged)])
    assert resp.status == 403, resp
    assert f"access:identity={WEB}" in denial_reasons(append_stack, resp)
    # Without a client certificate Envoy drops the client's header: no identity at all.
    resp = https_get(append_stack.tls_port, "/billing/invoices", tls_context(append_stack.envoy.cert_path),
                     headers=[("x-forwarded-client-cert", forged)])
    assert resp.status == 401 and "access:no_credentials" in denial_reasons(append_stack, resp)


# -- tokens with on_error: open ----------------------------------------------------------------


@pytest.fixture(scope="module")
def keys():
    weak = new_key("rsa", "weak-1024")
    weak.private = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return {"strong": new_key("rsa", "strong"), "weak": weak}


@pytest.fixture(scope="module")
def token_stack(keys, tmp_path_factory):
    server = JwksServer(jwks(keys["strong"], keys["weak"]))
    policy = f"""
version: 1
access:
  idps:
    corp:
      issuer: {ISSUER}
      jwks: {{url: {server.url}}}
      algorithms: [RS256]
      token_sources: [{{header: authorization, scheme: Bearer}}, {{cookie: corp_session}}]
  apps:
    - name: wiki
      routes: [wiki]
      audience: wiki
      policies: [{{name: staff, include: [{{group: [staff]}}]}}]
defaults:
  layers:
    access: {{on_error: open}}
routes:
  - {{name: wiki, match: {{path_prefix: /wiki}}}}
"""
    try:
        with started_stack("identity token stack", policy, tmp_path_factory.mktemp("tokens")) as s:
            yield s
    finally:
        server.close()


def get_wiki(stack, headers):
    return request(stack.listen_port, "GET", f"/wiki/{marker()}", headers=headers)


@pytest.mark.parametrize("header, body, why", [
    ({"alg": "RS256", "kid": "strong"}, {"iss": [ISSUER], "aud": "wiki", "exp": 9e9}, "malformed_claim"),
    ({"alg": "RS256", "kid": ["strong"]}, {"iss": ISSUER, "aud": "wiki", "exp": 9e9}, "malformed_header"),
])
def test_an_array_iss_or_kid_is_401_even_with_on_error_open(token_stack, header, body, why):
    resp = get_wiki(token_stack, [("authorization", f"Bearer {unsigned(header, body)}")])
    assert resp.status == 401, resp
    assert f"access:{why}" in denial_reasons(token_stack, resp)
    assert "Traceback" not in token_stack.sidecar.log_text()


def test_signed_claims_of_the_wrong_type_are_401(token_stack, keys):
    bad = {**claims(ISSUER, "wiki"), "groups": [["staff"]]}
    token = keys["strong"].token(bad)
    resp = get_wiki(token_stack, [("authorization", f"Bearer {token}")])
    assert resp.status == 401 and "access:malformed_claim" in denial_reasons(token_stack, resp)


def test_a_bad_cookie_beside_a_good_bearer_is_401(token_stack, keys):
    import jwt

    good = keys["strong"].token(claims(ISSUER, "wiki"))
    assert get_wiki(token_stack, [("authorization", f"Bearer {good}")]).status == 200
    none_alg = jwt.encode(claims(ISSUER, "wiki", groups=["admins"]), None, algorithm="none")
    resp = get_wiki(token_stack, [("authorization", f"Bearer {good}"), ("cookie", f"corp_session={none_alg}")])
    assert resp.status == 401 and "access:algorithm_not_allowed" in denial_reasons(token_stack, resp)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # signing with it is the point
def test_a_token_signed_by_a_weak_rsa_key_is_unknown(token_stack, keys):
    resp = get_wiki(token_stack, [("authorization", f"Bearer {keys['weak'].token(claims(ISSUER, 'wiki'))}")])
    assert resp.status == 401 and "access:unknown_key" in denial_reasons(token_stack, resp)
    assert "'weak-1024' refused: RSA keys need at least 2048 bits" in token_stack.sidecar.log_text()

