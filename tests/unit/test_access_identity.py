"""Identity parsing under hostile input (issue 19): client certificates in x-forwarded-client-cert
read exactly as Envoy writes them, tokens of any shape answered 401/403 with a reason and never a
layer fault, every credential of a request verified, weak JWKS keys refused."""
from __future__ import annotations

import base64
import datetime
import json
import logging
import time

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extproc.access import xfcc
from extproc.access.service_tokens import hash_secret
from extproc.access.jwks import parse_jwks
from extproc.config.compile import parse_policy
from extproc.core.transaction import Transaction
from extproc.core.request import Request
from extproc_lab.keys import claims, jwks, new_key
from tests.support.xfcc_envoy import element, subject_of

ISSUER, PARTNER = "https://idp.corp.example", "https://login.partner.example"
BILLING = "spiffe://mesh.example/ns/billing/sa/api"
CA_KEY = ec.generate_private_key(ec.SECP256R1())
CA_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "unit test CA")])
RAW_IN_ENVOY = ';,"'  # Envoy writes URI and DNS SANs without quoting or escaping


def certificate(common_name: str, uris=(), dns=()) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
               .issuer_name(CA_NAME).public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now)
               .not_valid_after(now + datetime.timedelta(days=1)))
    names = [x509.UniformResourceIdentifier(u) for u in uris] + [x509.DNSName(d) for d in dns]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(CA_KEY, hashes.SHA256())


# -- x-forwarded-client-cert ----------------------------------------------------------------

HOSTILE = '";,=\\+<># ' + "\x01\x7fé"
common_names = st.text(st.sampled_from(HOSTILE) | st.characters(codec="utf-8", exclude_categories=("Cs",)),
                       min_size=1, max_size=16)  # a CN holds at most 64 bytes
sans = st.lists(st.text(st.sampled_from(HOSTILE[:-3] + "abc:/.") , min_size=1, max_size=30), max_size=3)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(common_names, sans, sans)
def test_xfcc_reads_back_what_envoy_wrote_for_any_subject_and_sans(common_name, uris, dns):
    cert = certificate(common_name, uris, dns)
    header = element(cert)
    if any(ch in RAW_IN_ENVOY for value in uris + dns for ch in value):
        # Envoy's raw SAN splits into pairs of its own: refused (the certificate disagrees), never
        # read as another identity.
        with pytest.raises(xfcc.XfccError):
            xfcc.parse(header)
        return
    parsed = xfcc.parse(header)
    assert (parsed.uris, parsed.dns, parsed.subject) == (tuple(uris), tuple(dns), subject_of(common_name))


@settings(max_examples=100, deadline=None)
@given(common_names)
def test_a_hostile_subject_never_adds_a_san_even_without_cert(common_name):
    cert = certificate(common_name, ["spiffe://mesh.example/ns/web/sa/x"])
    parsed = xfcc.parse(element(cert, cert=False), require_cert=False)
    assert parsed.uris == ("spiffe://mesh.example/ns/web/sa/x",) and parsed.subject == subject_of(common_name)


def test_the_reported_forgery_keeps_its_uri_inside_the_subject():
    cert = certificate(f'x";URI={BILLING}', ["spiffe://mesh.example/ns/web/sa/x"])
    parsed = xfcc.parse(element(cert))
    assert parsed.uris == ("spiffe://mesh.example/ns/web/sa/x",) and BILLING not in parsed.sans
    assert parsed.subject == f'CN=x\\"\\;URI={BILLING}'


def test_only_the_last_element_counts_and_it_must_be_whole():
    real = element(certificate("web", ["spiffe://mesh.example/ns/web/sa/x"]))
    billing = element(certificate("billing", [BILLING]))
    assert xfcc.parse(f"{billing},{real}").uris == ("spiffe://mesh.example/ns/web/sa/x",)  # APPEND_FORWARD
    # A SAN holding ',' cuts the element: the fragment after it has no Hash and is refused.
    cut = certificate("web", [f"spiffe://mesh.example/ns/web,URI={BILLING}"])
    with pytest.raises(xfcc.XfccError):
        xfcc.parse(element(cut))
    with pytest.raises(xfcc.XfccError):
        xfcc.parse(element(cut, cert=False), require_cert=False)


@pytest.mark.parametrize("header, reason", [
    ("URI=spiffe://x", "xfcc_malformed"),  # no Hash: not Envoy's
    ('Hash=00;Subject="CN=a', "xfcc_malformed"),  # unclosed quote
    ('Hash=00;Subject="CN=a"x', "xfcc_malformed"),
    ("Hash=00;Hash=01;URI=spiffe://x", "xfcc_malformed"),
    ("Hash=00;Evil=1;URI=spiffe://x", "xfcc_malformed"),
    ('Hash=00;URI=spiffe://a"b', "xfcc_malformed"),
    ("Hash=00;URI=spiffe://x", "xfcc_without_cert"),
    ('Hash=00;Cert="not a certificate";URI=', "xfcc_malformed"),
])
def test_what_envoy_would_not_write_is_refused(header, reason):
    with pytest.raises(xfcc.XfccError) as caught:
        xfcc.parse(header)
    assert caught.value.reason == reason


def test_a_cert_whose_hash_or_sans_disagree_is_refused():
    cert = certificate("web", ["spiffe://mesh.example/ns/web/sa/x"])
    other = element(certificate("other", ["spiffe://mesh.example/ns/web/sa/x"]))
    swapped_hash = element(cert).replace(element(cert).split(";")[0], other.split(";")[0])
    with pytest.raises(xfcc.XfccError, match="xfcc_cert_mismatch"):
        xfcc.parse(swapped_hash)
    with pytest.raises(xfcc.XfccError, match="xfcc_cert_mismatch"):
        xfcc.parse(element(cert) + f";URI={BILLING}")


# -- tokens of any shape --------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys():
    return {"ec": new_key("ec", "ec-1"), "partner": new_key("ec", "partner-1")}


@pytest.fixture(scope="module")
def policy(keys, tmp_path_factory):
    folder = tmp_path_factory.mktemp("identity")
    (folder / "corp.json").write_text(json.dumps(jwks(keys["ec"])))
    (folder / "partner.json").write_text(json.dumps(jwks(keys["partner"])))
    text = f"""
version: 1
access:
  idps:
    corp:
      issuer: {ISSUER}
      jwks: {{file: {folder / 'corp.json'}}}
      algorithms: [ES256]
      token_sources: [{{header: authorization, scheme: Bearer}}, {{cookie: corp_session}}]
    partner:
      issuer: {PARTNER}
      jwks: {{file: {folder / 'partner.json'}}}
      algorithms: [ES256]
      token_sources: [{{cookie: partner_session}}]
  service_tokens:
    deployer: {{client_id: deployer.access, secret_hash: {hash_secret('a' * 40)}}}
  apps:
    - name: wiki
      routes: [wiki]
      audience: wiki
      idps: [corp]
      policies: [{{name: staff, include: [{{group: [staff]}}]}}]
defaults:
  layers:
    access: {{on_error: open}}
routes:
  - {{name: wiki, match: {{path_prefix: /wiki}}}}
"""
    return parse_policy(text, "identity.yaml")


def call(policy, headers):
    return Transaction(policy, Request("GET", "/wiki", headers=tuple(headers), source_ip="198.51.100.4")).on_headers()


def reason(decision) -> str:
    return next(r for r in decision.reasons if r.startswith("access:") and not r.startswith("access:app="))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: object, body: object) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body).encode())}.{b64(b'sig')}"


def signed(key, header: dict, body: object) -> str:
    """Signed by a key the IdP publishes, whatever the header and claims hold (PyJWT's encode would
    refuse some of them)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body).encode())}"
    algorithm = jwt.algorithms.get_default_algorithms()["ES256"]
    return f"{signing_input}.{b64(algorithm.sign(signing_input.encode(), key.private))}"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10 ** 30), max_value=10 ** 30)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20)
    | st.sampled_from([ISSUER, "wiki", "staff", "ES256", "ec-1", "\ud800", "x" * 5000]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12)
HEADER_FIELDS = ["alg", "kid", "typ", "cty", "crit", "jku", "x5u", "jwk"]
CLAIM_FIELDS = ["iss", "aud", "exp", "nbf", "iat", "sub", "email", "groups", "amr", "jti"]


def _fields(names):
    return st.dictionaries(st.sampled_from(names) | st.text(max_size=4), json_values, max_size=6)


def assert_answered_with_a_reason(decision):
    """An answer of the layer itself: never a fault (which on_error: open would let through)."""
    assert not any(r.startswith("fault:") for r in decision.reasons), decision.reasons
    assert all(r.outcome.name != "ERROR" for r in decision.results), decision.reasons
    if not decision.allowed:
        assert decision.status in (401, 403), decision.reasons
        assert reason(decision) != "access:token_unreadable", decision.reasons  # no exception path


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(_fields(HEADER_FIELDS), _fields(CLAIM_FIELDS) | json_values)
def test_unsigned_tokens_of_any_shape_get_401_with_a_reason(policy, header, body):
    decision = call(policy, [("authorization", f"Bearer {unsigned(header, body)}")])
    assert_answered_with_a_reason(decision)
    assert not decision.allowed


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(_fields(HEADER_FIELDS), _fields(CLAIM_FIELDS))
def test_signed_tokens_with_claims_of_any_type_get_a_reason(policy, keys, header_extra, claim_changes):
    header = {"alg": "ES256", "kid": "ec-1", **{k: v for k, v in header_extra.items() if k not in ("alg", "kid")}}
    body = {**claims(ISSUER, "wiki"), **claim_changes}
    decision = call(policy, [("authorization", f"Bearer {signed(keys['ec'], header, body)}")])
    assert_answered_with_a_reason(decision)
    if decision.allowed:  # then every identity header the upstream gets is text
        assert all(isinstance(v, str) for _, v in decision.set_headers)


@pytest.mark.parametrize("header, body, why", [
    ({"alg": "ES256", "kid": "ec-1"}, {"iss": [ISSUER], "aud": "wiki", "exp": 9e9}, "malformed_claim"),
    ({"alg": "ES256", "kid": ["ec-1"]}, {"iss": ISSUER, "aud": "wiki", "exp": 9e9}, "malformed_header"),
    ({"alg": "ES256", "kid": {"a": 1}}, {"iss": ISSUER}, "malformed_header"),
    ({"alg": ["ES256"]}, {"iss": ISSUER}, "malformed_header"),
    ({"alg": "ES256", "crit": ["exp"]}, {"iss": ISSUER}, "unsupported_header"),
    ({"alg": "ES256"}, {"iss": {"$ne": 1}}, "malformed_claim"),
])
def test_the_reported_array_claims_are_401_not_a_fault_even_with_on_error_open(policy, header, body, why):
    decision = call(policy, [("authorization", f"Bearer {unsigned(header, body)}")])
    assert (decision.allowed, decision.status, reason(decision)) == (False, 401, f"access:{why}")


@pytest.mark.parametrize("change", [
    {"exp": float("inf")}, {"exp": True}, {"exp": "9999999999"}, {"nbf": float("nan")}, {"exp": 1e300},
    {"aud": ["wiki", 1]}, {"groups": [["staff"]]}, {"groups": {"staff": True}}, {"email": ["a@corp.example"]},
    {"amr": "mfa"}, {"sub": 7}, {"email": "\ud800@corp.example"},
])
def test_signed_claims_of_the_wrong_type_are_malformed(policy, keys, change):
    token = signed(keys["ec"], {"alg": "ES256", "kid": "ec-1"}, {**claims(ISSUER, "wiki"), **change})
    decision = call(policy, [("authorization", f"Bearer {token}")])
    # PyJWT itself refuses a sub that is not text (malformed_token), before our checks.
    assert decision.status == 401 and reason(decision) in ("access:malformed_claim", "access:malformed_token")


def test_deeply_nested_and_huge_tokens_are_malformed_or_too_large(policy):
    nested = "[" * 100_000 + "]" * 100_000
    deep = f"{b64(nested.encode())}.{b64(b'{}')}.x"
    assert reason(call(policy, [("authorization", f"Bearer {deep}")])) == "access:token_too_large"
    deep = f"{b64(('[' * 5000 + ']' * 5000).encode())}.{b64(b'{}')}.x"
    assert reason(call(policy, [("authorization", f"Bearer {deep}")])) == "access:malformed_token"
    raw_header = b'{"alg": "' + bytes([0xFF]) + b'"}'
    not_utf8 = f"{b64(raw_header)}.{b64(b'{}')}.x"
    assert reason(call(policy, [("authorization", f"Bearer {not_utf8}")])) == "access:malformed_token"
    huge_int = b'{"alg": "ES256"}', f'{{"iss": {"9" * 5000}}}'.encode()
    token = f"{b64(huge_int[0])}.{b64(huge_int[1])}.x"
    assert reason(call(policy, [("authorization", f"Bearer {token}")])) == "access:malformed_token"


# -- every credential is verified -------------------------------------------------------------


def test_a_bad_cookie_beside_a_good_bearer_is_refused(policy, keys):
    good = keys["ec"].token(claims(ISSUER, "wiki"))
    assert call(policy, [("authorization", f"Bearer {good}")]).allowed
    none_alg = jwt.encode(claims(ISSUER, "wiki", groups=["admins"]), None, algorithm="none")
    for cookie in (f"corp_session={none_alg}", f"partner_session={none_alg}"):  # any IdP's token source
        decision = call(policy, [("authorization", f"Bearer {good}"), ("cookie", cookie)])
        assert (decision.status, reason(decision)) == (401, "access:algorithm_not_allowed"), cookie
    second_bearer = call(policy, [("authorization", f"Bearer {good}"), ("authorization", "Bearer x.y.z")])
    assert (second_bearer.status, reason(second_bearer)) == (401, "access:malformed_token")


def test_two_valid_tokens_must_name_the_same_person(policy, keys):
    ana = keys["ec"].token(claims(ISSUER, "wiki"))
    bo = keys["ec"].token(claims(ISSUER, "wiki", email="bo@corp.example"))
    assert call(policy, [("authorization", f"Bearer {ana}"), ("cookie", f"corp_session={ana}")]).allowed
    decision = call(policy, [("authorization", f"Bearer {ana}"), ("cookie", f"corp_session={bo}")])
    assert (decision.status, reason(decision)) == (401, "access:conflicting_tokens")
    # A valid token of an IdP the app does not accept is not ignored either.
    partner = keys["partner"].token(claims(PARTNER, "wiki"))
    decision = call(policy, [("authorization", f"Bearer {ana}"), ("cookie", f"partner_session={partner}")])
    assert (decision.status, reason(decision)) == (401, "access:idp_not_accepted")


def test_a_repeated_service_token_header_is_refused(policy):
    decision = call(policy, [("x-access-client-id", "deployer.access"), ("x-access-client-id", "other"),
                             ("x-access-client-secret", "s")])
    assert (decision.status, reason(decision)) == (401, "access:bad_service_token")


# -- weak keys ----------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # signing with it is the point
def test_rsa_keys_under_2048_bits_are_refused_at_load(caplog, tmp_path):
    weak = new_key("ec", "weak")
    weak.kind, weak.private = "rsa", rsa.generate_private_key(public_exponent=65537, key_size=1024)
    strong = new_key("rsa", "strong")
    with caplog.at_level(logging.WARNING, logger="extproc.access.jwks"):
        keys = parse_jwks(jwks(weak, strong))
    assert set(keys) == {"strong"}
    assert any("'weak' refused" in record.getMessage() and "2048" in record.getMessage() for record in caplog.records)
    (tmp_path / "corp.json").write_text(json.dumps(jwks(weak, strong)))
    policy = parse_policy(f"""
version: 1
access:
  idps: {{corp: {{issuer: {ISSUER}, audience: wiki, jwks: {{file: {tmp_path / 'corp.json'}}}, algorithms: [RS256]}}}}
  apps: [{{name: wiki, routes: [wiki], policies: [{{name: all, include: [{{everyone: true}}]}}]}}]
defaults: {{layers: {{access: {{}}}}}}
routes: [{{name: wiki, match: {{}}}}]
""", "weak.yaml")
    by_weak = call(policy, [("authorization", f"Bearer {weak.token(claims(ISSUER, 'wiki'))}")])
    assert (by_weak.status, reason(by_weak)) == (401, "access:unknown_key")
    assert call(policy, [("authorization", f"Bearer {strong.token(claims(ISSUER, 'wiki'))}")]).allowed


def test_time_claims_still_work(policy, keys):
    expired = keys["ec"].token(claims(ISSUER, "wiki", ttl=-3600))
    assert reason(call(policy, [("authorization", f"Bearer {expired}")])) == "access:token_expired"
    assert call(policy, [("authorization", f"Bearer {keys['ec'].token(claims(ISSUER, 'wiki', now=time.time()))}")]).allowed
