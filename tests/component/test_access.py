"""The access layer: strict token verification, identity sources, per-app policy, require access
protection, identity to the upstream. Real RSA, EC and Ed25519 keys; JWKS from a file and from
loopback HTTP with rotation."""
from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from extproc.config.compile import ConfigError, parse_policy
from extproc.core.transaction import Transaction
from extproc.core.request import Request
from extproc_lab.keys import JwksServer, claims, jwks, new_key, secret_hash, write_pem

ISSUER, PARTNER = "https://idp.corp.example", "https://login.partner.example"


@pytest.fixture(scope="module")
def keys():
    return {"rsa": new_key("rsa", "rsa-1"), "ec": new_key("ec", "ec-1"), "ed": new_key("ed", "ed-1"),
            "partner": new_key("ec", "partner-1"), "stranger": new_key("rsa", "rsa-1")}


@pytest.fixture(scope="module")
def policy_text(keys, tmp_path_factory):
    folder = tmp_path_factory.mktemp("access")
    (folder / "corp.json").write_text(json.dumps(jwks(keys["rsa"], keys["ec"], keys["ed"])))
    (folder / "partner.json").write_text(json.dumps(jwks(keys["partner"])))
    assertion_key = write_pem(folder / "assertion.pem", ec.generate_private_key(ec.SECP256R1()))
    return f"""
version: 1
access:
  idps:
    corp:
      issuer: {ISSUER}
      jwks: {{file: {folder / 'corp.json'}}}
      algorithms: [RS256, ES256, EdDSA]
      token_sources: [{{header: authorization, scheme: Bearer}}, {{cookie: corp_session}}]
      email_domains: [corp.example, contractors.example]
    partner:
      issuer: {PARTNER}
      jwks: {{file: {folder / 'partner.json'}}}
      algorithms: [ES256]
      email_domains: [partner.example]
  service_tokens:
    deployer: {{client_id: deployer.access, secret_hash: {secret_hash('correct horse battery staple and a cart')}}}
  mtls: {{source: attributes}}
  posture: {{header: x-device-posture, trusted_sources: [10.0.0.0/8]}}
  assertion: {{key_file: {assertion_key}, issuer: extproc-test, ttl_s: 60}}
  apps:
    - name: wiki
      routes: [wiki]
      audience: wiki
      idps: [corp, partner]
      policies:
        - name: no-contractors
          action: deny
          include: [{{email_domain: [contractors.example]}}]
        - name: staff
          include: [{{group: [staff], idp: [corp]}}, {{service_token: [deployer]}}]
          exclude: [{{group: [suspended]}}]
    - name: admin
      routes: [admin]
      audience: admin
      idps: [corp]
      policies:
        - name: admins-with-mfa-on-managed-devices
          include: [{{group: [admins]}}]
          require: [{{auth_method: [mfa]}}, {{device_posture: [compliant]}}]
    - name: partners
      routes: [partners]
      audience: partner-portal
      idps: [corp, partner]
      policies:
        - name: partner-idp
          include: [{{idp: [partner]}}]
        - name: mesh-services
          include: [{{mtls_san: ['spiffe://mesh.example/ns/billing/*', '*.svc.mesh.example']}}]
defaults:
  layers:
    access: {{}}
routes:
  - {{name: wiki, match: {{path_prefix: /wiki}}}}
  - {{name: admin, match: {{path_prefix: /admin}}}}
  - {{name: partners, match: {{path_prefix: /partners}}}}
  - {{name: status, match: {{path_prefix: /status}}, public: true}}
  - {{name: forgotten, match: {{path_prefix: /forgotten}}}}
"""


@pytest.fixture(scope="module")
def policy(policy_text):
    return parse_policy(policy_text, "access.yaml")


def call(policy, path, headers=(), source_ip="198.51.100.4", **request_fields):
    request = Request("GET", path, headers=tuple(headers), source_ip=source_ip, **request_fields)
    decision = Transaction(policy, request).on_headers()
    return decision


def bearer(token):
    return [("authorization", f"Bearer {token}")]


def reason(decision) -> str:
    return next(r for r in decision.reasons if r.startswith("access:") and not r.startswith("access:app="))


@pytest.mark.parametrize("kind", ["rsa", "ec", "ed"])
def test_tokens_signed_with_each_key_type_get_in(policy, keys, kind):
    decision = call(policy, "/wiki/home", bearer(keys[kind].token(claims(ISSUER, "wiki"))))
    assert decision.allowed
    headers = dict(decision.set_headers)
    assert headers["x-extproc-user-email"] == "ana@corp.example" and headers["x-extproc-user-idp"] == "corp"
    assert headers["x-extproc-user-groups"] == "staff" and headers["x-extproc-access-app"] == "wiki"


def test_session_cookie_is_a_token_source(policy, keys):
    token = keys["ec"].token(claims(ISSUER, "wiki"))
    assert call(policy, "/wiki/home", [("cookie", f"theme=dark; corp_session={token}")]).allowed


@pytest.mark.parametrize("make_token, status, why", [
    (lambda k: k["rsa"].token(claims(ISSUER, "wiki", ttl=-3600)), 401, "token_expired"),
    (lambda k: k["rsa"].token(claims(ISSUER, "wiki", now=time.time() + 3600)), 401, "token_not_yet_valid"),
    (lambda k: k["rsa"].token(claims(ISSUER, "admin")), 401, "wrong_audience"),
    (lambda k: k["rsa"].token(claims("https://evil.example", "wiki")), 401, "unknown_issuer"),
    (lambda k: k["stranger"].token(claims(ISSUER, "wiki")), 401, "bad_signature"),  # same kid, other key
    (lambda k: k["rsa"].token(claims(ISSUER, "wiki"), headers={"kid": "rotated-away"}), 401, "unknown_key"),
    (lambda k: jwt.encode(claims(ISSUER, "wiki"), None, algorithm="none"), 401, "algorithm_not_allowed"),
    (lambda k: _hs256_with_public_key(k["rsa"]), 401, "algorithm_not_allowed"),
    (lambda k: k["rsa"].token(claims(ISSUER, "wiki"))[:150], 401, "malformed_token"),  # cut in the claims
    (lambda k: k["rsa"].token(claims(ISSUER, "wiki", padding="x" * 9000)), 401, "token_too_large"),
    (lambda k: "not.a.jwt", 401, "malformed_token"),
    (lambda k: "\udcff\udcfe.\x00.x", 401, "malformed_token"),
    (lambda k: k["partner"].token(claims(PARTNER, "admin")), 401, "idp_not_accepted"),  # admin trusts corp only
])
def test_bad_tokens_are_refused_with_their_reason(policy, keys, make_token, status, why):
    decision = call(policy, "/admin" if why == "idp_not_accepted" else "/wiki/home", bearer(make_token(keys)))
    assert (decision.allowed, decision.status, reason(decision)) == (False, status, f"access:{why}")


def test_key_type_must_fit_the_algorithm(policy, keys):
    # An EC key published under the kid an RS256 token names: refused before any signature check.
    forged = keys["ec"].token(claims(ISSUER, "wiki"), algorithm="ES256", headers={"kid": "rsa-1"})
    assert reason(call(policy, "/wiki", bearer(forged))) == "access:key_algorithm_mismatch"


def _hs256_with_public_key(key) -> str:
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": key.kid}).encode()).rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(claims(ISSUER, "wiki")).encode()).rstrip(b"=")
    import hmac, hashlib  # noqa: E401 - the classic confusion: the public key as the HMAC secret

    signature = hmac.new(key.public_pem(), header + b"." + body, hashlib.sha256).digest()
    return (header + b"." + body + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode()


def test_no_credentials_is_401_and_a_disallowed_identity_is_403(policy, keys):
    assert (call(policy, "/wiki").status, reason(call(policy, "/wiki"))) == (401, "access:no_credentials")
    outsider = keys["rsa"].token(claims(ISSUER, "wiki", groups=["marketing"]))
    denied = call(policy, "/wiki", bearer(outsider))
    assert (denied.status, reason(denied)) == (403, "access:no_policy_matched")


def test_policy_order_include_require_exclude(policy, keys):
    contractor = keys["rsa"].token(claims(ISSUER, "wiki", email="bo@contractors.example"))
    assert reason(call(policy, "/wiki", bearer(contractor))) == "access:denied_by_policy"  # deny policy first
    suspended = keys["rsa"].token(claims(ISSUER, "wiki", groups=["staff", "suspended"]))
    assert not call(policy, "/wiki", bearer(suspended)).allowed  # excluded
    admin = claims(ISSUER, "admin", groups=["admins"], amr=["pwd", "mfa"])
    managed = [("x-device-posture", "compliant")]
    assert call(policy, "/admin", bearer(keys["ed"].token(admin)) + managed, source_ip="10.1.2.3").allowed
    no_mfa = {**admin, "amr": ["pwd"]}
    assert not call(policy, "/admin", bearer(keys["ed"].token(no_mfa)) + managed, source_ip="10.1.2.3").allowed
    # The posture header from an address that is not a trusted posture source counts for nothing.
    assert not call(policy, "/admin", bearer(keys["ed"].token(admin)) + managed, source_ip="198.51.100.4").allowed


def test_new_account_in_a_permitted_group_gets_in_without_config_change(policy, keys):
    newcomer = keys["ec"].token(claims(ISSUER, "wiki", email="new.hire@corp.example", groups=["staff"]))
    assert call(policy, "/wiki", bearer(newcomer)).allowed


def test_service_tokens_are_checked_against_the_stored_hash(policy):
    good = [("x-access-client-id", "deployer.access"), ("x-access-client-secret", "correct horse battery staple and a cart")]
    decision = call(policy, "/wiki", good)
    assert decision.allowed and dict(decision.set_headers)["x-extproc-user-methods"] == "service_token"
    for headers in ([good[0], ("x-access-client-secret", "wrong")], [good[0]], [("x-access-client-id", "x"), good[1]]):
        denied = call(policy, "/wiki", headers)
        assert (denied.status, reason(denied)) == (401, "access:bad_service_token")


def test_the_service_token_secret_is_never_sent_upstream(policy, keys):
    """Issue 18, 8b: the secret is the sidecar's to check; the upstream never needs it, verified or not."""
    good = [("x-access-client-id", "deployer.access"), ("x-access-client-secret", "correct horse battery staple and a cart")]
    allowed = call(policy, "/wiki", good)
    assert allowed.allowed and allowed.remove_headers == ("x-access-client-secret",)
    wrong = call(policy, "/wiki", [good[0], ("x-access-client-secret", "wrong")])
    assert not wrong.allowed  # a deny never reaches the upstream
    public = call(policy, "/status", good)  # not checked on a public route, and not passed on either
    assert public.allowed and public.remove_headers == ("x-access-client-secret",)
    # A token holder sends no secret: nothing to remove, and the reply stays cacheable.
    assert call(policy, "/wiki", bearer(keys["rsa"].token(claims(ISSUER, "wiki")))).remove_headers == ()


def test_the_configured_secret_header_is_removed_even_when_a_deny_is_only_observed(policy_text):
    text = policy_text.replace("  service_tokens:",
                               "  service_token_headers: [x-robot-id, x-robot-key]\n  service_tokens:")
    text = text.replace("- {name: wiki, match: {path_prefix: /wiki}}",
                        "- {name: wiki, match: {path_prefix: /wiki}, mode: observe}")
    observed = parse_policy(text, "access.yaml")
    decision = call(observed, "/wiki", [("x-robot-id", "deployer.access"), ("x-robot-key", "wrong"),
                                        ("x-access-client-secret", "not ours to judge")])
    assert decision.allowed and decision.would_deny == ("access",)
    assert decision.remove_headers == ("x-robot-key",)


def test_the_secret_is_removed_on_routes_without_the_access_layer_and_when_the_layer_fails(policy_text,
                                                                                           monkeypatch):
    # Stripped by the policy, not by the layer: a route that turns the layer off, or a layer that
    # fails open, must not hand the upstream the secret either.
    text = policy_text.replace("- {name: wiki, match: {path_prefix: /wiki}}",
                               "- {name: wiki, match: {path_prefix: /wiki}, layers: {access: {on_error: open}}}")
    text += "  - {name: bare, match: {path_prefix: /bare}, public: true, layers: {access: null}}\n"
    lenient = parse_policy(text, "access.yaml")
    secret = [("x-access-client-id", "deployer.access"), ("x-access-client-secret", "correct horse battery staple and a cart")]
    bare = call(lenient, "/bare", secret)
    assert bare.allowed and not any(r.verdict.layer == "access" for r in bare.results)
    assert bare.remove_headers == ("x-access-client-secret",)
    def broken(*_args):
        raise RuntimeError("a bug in the access layer")

    monkeypatch.setattr(type(lenient.access), "identify", broken)  # on_error open lets the request through
    failed = call(lenient, "/wiki", secret)
    assert failed.allowed and "fault:error" in failed.reasons
    assert failed.remove_headers == ("x-access-client-secret",)


def test_mtls_identity_from_envoy_attributes(policy):
    peer = {"uri_san": "spiffe://mesh.example/ns/billing/sa/api", "subject": "CN=billing"}
    assert call(policy, "/partners", mtls=True, peer=peer).allowed
    other = {"uri_san": "spiffe://mesh.example/ns/web/sa/api"}
    assert call(policy, "/partners", mtls=True, peer=other).status == 403
    assert call(policy, "/partners", mtls=False, peer=peer).status == 401  # attributes without a verified cert


def test_require_access_protection_and_public_routes(policy):
    assert call(policy, "/status").allowed
    forgotten = call(policy, "/forgotten")
    assert (forgotten.status, reason(forgotten)) == (403, "access:no_app")
    assert call(policy, "/no/route/at/all").status == 403
    assert policy.public_routes == ("status",)
    assert any("status" in line and "PUBLIC" in line for line in policy.summary())


def test_client_copies_of_identity_headers_are_removed(policy, keys):
    forged = [("x-extproc-user-email", "ceo@corp.example"), ("x-extproc-assertion", "forged")]
    decision = call(policy, "/status", forged)
    assert decision.allowed and {"x-extproc-user-email", "x-extproc-assertion"} <= set(decision.remove_headers)
    decision = call(policy, "/wiki", bearer(keys["rsa"].token(claims(ISSUER, "wiki"))) + forged)
    assert dict(decision.set_headers)["x-extproc-user-email"] == "ana@corp.example"


def test_upstream_assertion_verifies_with_the_published_jwks(policy, keys):
    decision = call(policy, "/wiki", bearer(keys["rsa"].token(claims(ISSUER, "wiki"))))
    assertion = dict(decision.set_headers)["x-extproc-assertion"]
    (published,) = policy.access.signer.jwks()["keys"]
    verified = jwt.decode(assertion, jwt.PyJWK(published).key, algorithms=["ES256"], audience="wiki",
                          issuer="extproc-test")
    assert verified["email"] == "ana@corp.example" and verified["groups"] == ["staff"]
    assert verified["exp"] - verified["iat"] == 60 and "d" not in published


def test_verified_tokens_are_cached_until_they_expire(policy, keys):
    token = keys["rsa"].token(claims(ISSUER, "wiki", ttl=120))
    verifier = policy.access.verifier
    first = verifier.verify(token)
    assert verifier.verify(token) is first  # the second request costs a lookup
    with pytest.raises(Exception, match="token_expired"):
        verifier.verify(token, now=time.time() + 3600)


def test_jwks_over_http_follows_key_rotation(keys, tmp_path):
    old, new = new_key("rsa", "2025"), new_key("ec", "2026")
    server = JwksServer(jwks(old))
    try:
        text = f"""
version: 1
access:
  idps:
    corp: {{issuer: {ISSUER}, audience: wiki, jwks: {{url: {server.url}, refresh_s: 300, min_refetch_s: 1}}}}
  apps: [{{name: wiki, routes: [wiki], policies: [{{name: all, include: [{{everyone: true}}]}}]}}]
defaults: {{layers: {{access: {{}}}}}}
routes: [{{name: wiki, match: {{}}}}]
"""
        policy = parse_policy(text, "rotation.yaml")
        assert call(policy, "/", bearer(old.token(claims(ISSUER, "wiki")))).allowed
        server.document = jwks(new)  # the IdP rotates: a token with the new kid arrives
        token = new.token(claims(ISSUER, "wiki"))
        assert reason(call(policy, "/", bearer(token))) == "access:unknown_key"  # and triggers a refetch
        deadline = time.time() + 5
        while not call(policy, "/", bearer(token)).allowed and time.time() < deadline:
            time.sleep(0.05)
        assert call(policy, "/", bearer(token)).allowed
        fetches = server.fetches
        for n in range(50):  # made-up key ids do not turn into a fetch each
            call(policy, "/", bearer(new.token(claims(ISSUER, "wiki"), headers={"kid": f"bogus-{n}"})))
        time.sleep(0.3)
        assert server.fetches <= fetches + 1
    finally:
        server.close()


@pytest.mark.parametrize("fragment, error", [
    ("apps: [{name: a, routes: [nope], policies: [{name: p, include: [{everyone: true}]}]}]",
     "access.apps[0].routes: no route named 'nope'"),
    ("apps: [{name: a, routes: [r], policies: [{name: p, include: [{grups: [x]}]}]}]",
     "access.apps[0].policies[0].include[0]: unknown key 'grups'"),
    ("apps: [{name: a, routes: [r], policies: [{name: p, include: [{}]}]}]", "at least one condition"),
    ("apps: [{name: a, routes: [r], policies: [{name: p, include: [{service_token: [ghost]}]}]}]",
     "no service token named 'ghost'"),
    ("idps: {x: {issuer: i, jwks: {url: 'http://idp.example/jwks'}}}", "must be https"),
    ("idps: {x: {issuer: i, jwks: {file: /j.json}, algorithms: [HS256]}}", "algorithms"),
    ("idps: {x: {issuer: i, jwks: {file: /j.json}, algorithms: [none]}}", "algorithms"),
    ("service_tokens: {t: {client_id: abcdefgh, secret_hash: plaintext}}", "access.service_tokens.t: not a service-token hash"),
    ("service_tokens: {t: {client_id: abcdefgh, secret_sha256: " + "a" * 64 + "}}", "unsalted"),
    ("service_tokens: {t: {client_id: abcdefgh, secret_hash_file: /nonexistent.hash}}",
     "access.service_tokens.t.secret_hash_file: /nonexistent.hash: No such file"),
    ("assertion: {key_file: /nonexistent.pem}", "access.assertion.key_file"),
    ("idps: {x: {issuer: i, jwks: {file: /nonexistent/jwks.json}}}",
     "access.idps.x.jwks.file: /nonexistent/jwks.json: [Errno 2] No such file"),
])
def test_access_config_errors_name_their_path(fragment, error):
    text = f"version: 1\naccess:\n  {fragment}\nroutes: [{{name: r, match: {{}}}}]\n"
    with pytest.raises(ConfigError) as caught:
        parse_policy(text, "bad.yaml")
    assert error in str(caught.value)


def test_a_jwks_file_that_is_missing_or_not_a_jwks_fails_check_config_until_fixed(tmp_path, keys, capsys):
    # It used to pass check-config ("ok") and serve, logging only, while every token got a 401.
    from extproc import cli

    jwks_file, policy_file = tmp_path / "corp.json", tmp_path / "policy.yaml"
    policy_file.write_text(f"version: 1\naccess: {{idps: {{corp: {{issuer: {ISSUER}, jwks: {{file: {jwks_file}}}}}}}}}\n")
    for content in (None, "{not json", '{"keys": "none"}'):
        if content is not None:
            jwks_file.write_text(content)
        assert cli.main(["check-config", str(policy_file)]) == 1
        assert capsys.readouterr().err.startswith(f"{policy_file}: access.idps.corp.jwks.file: {jwks_file}: ")
    jwks_file.write_text(json.dumps(jwks(keys["ec"])))
    assert cli.main(["check-config", str(policy_file)]) == 0  # the cached source reads the fixed file


def test_a_broken_access_block_is_reported_alone_not_as_a_missing_one(tmp_path, capsys):
    # Every route with the access layer also said "needs the top-level 'access' block", which the
    # policy has: only the real error is printed.
    from extproc import cli

    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(f"version: 1\naccess: {{idps: {{corp: {{issuer: {ISSUER}, jwks: {{file: {tmp_path / 'no.json'}}}}}}}}}\n"
                           "defaults: {layers: {access: {}}}\n"
                           "routes: [{name: wiki, match: {path_prefix: /wiki}, layers: {access: {}}}]\n")
    assert cli.main(["check-config", str(policy_file)]) == 1
    problems = [line for line in capsys.readouterr().err.splitlines() if line.startswith(f"{policy_file}:")]
    assert len(problems) == 1 and "access.idps.corp.jwks.file" in problems[0], problems


def test_access_layer_without_the_access_block_is_an_error():
    with pytest.raises(ConfigError, match="needs the top-level 'access' block"):
        parse_policy("version: 1\ndefaults: {layers: {access: {}}}\n", "bad.yaml")


def test_reach_lists_what_one_identity_can_reach_and_why(policy, keys):
    from extproc.commands.reach import credential_request, identity_from_claims, reach

    staff = {row.route: row for row in reach(policy, identity_from_claims(
        {"email": "ana@corp.example", "groups": ["staff"], "idp": "corp"}))}
    assert staff["wiki"].reachable and staff["wiki"].why == "policy:staff"
    assert not staff["admin"].reachable and staff["status"].why == "public"
    assert not staff["forgotten"].reachable and staff["forgotten"].why == "no_app"
    # A real token is verified per app: its audience names only the wiki.
    token = keys["rsa"].token(claims(ISSUER, "wiki", groups=["staff", "admins"], amr=["mfa"]))
    rows = {row.route: row for row in reach(policy, request=credential_request(token=token))}
    assert rows["wiki"].reachable and rows["admin"].why == "wrong_audience"
    deployer = credential_request(service_token="deployer.access:correct horse battery staple and a cart", policy=policy)
    assert [r.route for r in reach(policy, request=deployer) if r.reachable] == ["wiki", "status"]


def test_reach_command_matrix(policy_text, tmp_path, capsys):
    from extproc import cli

    (tmp_path / "policy.yaml").write_text(policy_text)
    people = tmp_path / "people.jsonl"
    people.write_text('{"name": "ana", "email": "ana@corp.example", "groups": ["staff"], "idp": "corp"}\n'
                      '{"name": "mesh-billing", "mtls_sans": ["spiffe://mesh.example/ns/billing/sa/api"]}\n')
    assert cli.main(["reach", "--config", str(tmp_path / "policy.yaml"), "--identities", str(people), "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    reachable = {name: [r["route"] for r in rows if r["reachable"]] for name, rows in table.items()}
    assert reachable == {"ana": ["wiki", "status"], "mesh-billing": ["partners", "status"]}
    assert cli.main(["reach", "--config", str(tmp_path / "policy.yaml"), "--claims", "{not json"]) == 2


def test_a_jwks_source_no_policy_names_any_more_stops_refreshing(tmp_path, keys):
    """A reload that changes an IdP's JWKS settings leaves the old source to no policy: its
    refresher thread ends instead of polling (or fetching) for the life of the process."""
    import gc
    import threading

    (tmp_path / "jwks.json").write_text(json.dumps(jwks(keys["ec"])))
    text = f"""
version: 1
access:
  idps: {{corp: {{issuer: {ISSUER}, jwks: {{file: {tmp_path / 'jwks.json'}, refresh_s: 30}}, audience: wiki}}}}
  apps: [{{name: wiki, routes: [wiki], policies: [{{name: all, include: [{{everyone: true}}]}}]}}]
routes: [{{name: wiki, match: {{}}}}]
"""

    def refreshers():
        return [t for t in threading.enumerate() if t.name == "jwks-corp" and t.is_alive()]

    before = set(refreshers())
    first = parse_policy(text, "p.yaml")
    (started,) = set(refreshers()) - before
    same = parse_policy(text, "p.yaml")  # a reload with the same settings shares the source
    assert set(refreshers()) - before == {started}
    del first, same
    changed = parse_policy(text.replace("refresh_s: 30", "refresh_s: 31"), "p.yaml")
    gc.collect()
    deadline = time.monotonic() + 30
    while started.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not started.is_alive()  # the old settings' thread ended; the new policy's runs
    assert len(set(refreshers()) - before) == 1 and changed.access is not None
