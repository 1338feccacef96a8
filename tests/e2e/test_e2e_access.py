"""Zero-trust access end to end: a real Envoy, the sidecar, an IdP's JWKS on loopback HTTP.

What `extproc reach` computes from the policy is checked against what Envoy actually lets
through, for every identity and route."""
from __future__ import annotations

import json
import time
import urllib.request

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from extproc.config.compile import load_policy
from extproc.commands.reach import credential_request, reach
from extproc_lab.keys import claims, jwks, new_key, write_pem
from tests.support.e2e_support import free_port_pair, request, started_stack

ISSUER = "https://idp.corp.example"
ROUTES = {"wiki": "/wiki/page", "admin": "/admin/panel", "status": "/status", "forgotten": "/forgotten/x"}
IDENTITIES = {
    "ana": {"email": "ana@corp.example", "groups": ["staff"]},
    "root": {"email": "root@corp.example", "groups": ["admins", "staff"], "amr": ["pwd", "mfa"]},
    "root-no-mfa": {"email": "root@corp.example", "groups": ["admins"], "amr": ["pwd"]},
    "eve": {"email": "eve@corp.example", "groups": ["marketing"]},
}


def policy_text(jwks_url: str, assertion_key: str) -> str:
    return f"""
version: 1
access:
  idps:
    corp: {{issuer: {ISSUER}, jwks: {{url: {jwks_url}, min_refetch_s: 1}}, algorithms: [RS256, EdDSA],
           email_domains: [corp.example]}}
  assertion: {{key_file: {assertion_key}, issuer: extproc-e2e}}
  apps:
    - name: wiki
      routes: [wiki]
      audience: wiki
      policies: [{{name: staff, include: [{{group: [staff]}}]}}]
    - name: admin
      routes: [admin]
      audience: admin
      policies: [{{name: admins-mfa, include: [{{group: [admins]}}], require: [{{auth_method: [mfa]}}]}}]
defaults:
  layers:
    access: {{budget_ms: 50}}
routes:
  - {{name: wiki, match: {{path_prefix: /wiki}}}}
  - {{name: admin, match: {{path_prefix: /admin}}}}
  - {{name: status, match: {{path_prefix: /status}}, public: true}}
  - {{name: forgotten, match: {{path_prefix: /forgotten}}}}
"""


@pytest.fixture(scope="module")
def stack(idp, tmp_path_factory):
    _, server = idp
    workdir = tmp_path_factory.mktemp("access")
    assertion_key = write_pem(workdir / "assertion.pem", ed25519.Ed25519PrivateKey.generate())
    admin_port = free_port_pair()
    with started_stack("access stack", policy_text(server.url, assertion_key), workdir,
                       sidecar_args=["--drain-seconds", "1", "--metrics-address", f"127.0.0.1:{admin_port}"]) as s:
        s.admin_port = admin_port
        s.policy_path = workdir / "policy.yaml"
        yield s


def token_for(idp, name: str) -> str:
    key, _ = idp
    spec = IDENTITIES[name]
    extra = {"amr": spec["amr"]} if "amr" in spec else {}
    return key.token(claims(ISSUER, ["wiki", "admin"], email=spec["email"], groups=spec["groups"], **extra))


def send(stack, path: str, token: str | None = None, extra=()):
    headers = [("authorization", f"Bearer {token}")] if token else []
    return request(stack.listen_port, "GET", path, headers=[*headers, *extra])


def test_what_reach_computes_is_what_envoy_lets_through(stack, idp):
    policy = load_policy(stack.policy_path)
    for name in IDENTITIES:
        token = token_for(idp, name)
        computed = {row.route: row.reachable for row in reach(policy, request=credential_request(token=token))}
        observed = {route: send(stack, path, token).status == 200 for route, path in ROUTES.items()}
        assert observed == computed, name
    assert {route: send(stack, path).status for route, path in ROUTES.items()} == {
        "wiki": 401, "admin": 401, "status": 200, "forgotten": 403}


def test_upstream_gets_identity_and_a_verifiable_assertion_not_forged_copies(stack, idp):
    response = send(stack, ROUTES["wiki"], token_for(idp, "ana"),
                    extra=[("x-extproc-user-email", "ceo@corp.example"), ("x-extproc-assertion", "forged")])
    assert response.status == 200
    seen = response.json()["headers"]
    assert [v for n, v in seen if n == "x-extproc-user-email"] == ["ana@corp.example"]
    (assertion,) = [v for n, v in seen if n == "x-extproc-assertion"]
    published = json.loads(urllib.request.urlopen(
        f"http://127.0.0.1:{stack.admin_port}/.well-known/jwks.json", timeout=5).read())
    key = jwt.PyJWK(published["keys"][0])
    verified = jwt.decode(assertion, key.key, algorithms=["EdDSA"], audience="wiki", issuer="extproc-e2e")
    assert verified["email"] == "ana@corp.example"


def test_denials_say_nothing_about_why(stack, idp):
    for response in (send(stack, ROUTES["admin"], token_for(idp, "eve")), send(stack, ROUTES["wiki"], "garbage")):
        assert response.status in (401, 403)
        assert set(response.json()) == {"error", "request_id"}
        assert "policy" not in response.everything() and "token" not in response.body.decode()


def test_a_rotated_key_is_fetched_without_restart(stack, idp):
    _, server = idp
    rotated = new_key("ed", "corp-2027")
    server.document = jwks(idp[0], rotated)
    token = rotated.token(claims(ISSUER, "wiki", groups=["staff"]))
    deadline = time.time() + 30  # the first request kicks a refetch (here at most once a second)
    while send(stack, ROUTES["wiki"], token).status != 200:
        assert time.time() < deadline, "the rotated key was never fetched"
        time.sleep(0.5)
