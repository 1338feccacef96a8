"""Service tokens and the upstream assertion, end to end (issue 19, items 7 and 8): a real Envoy,
the sidecar, the echo upstream. The token's salted hash comes from a file (a mounted Secret); a
source that keeps guessing is locked out, right secret or not; each assertion the upstream gets is
bound to its request and refused a second time by an upstream that checks it."""
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from extproc.access.assertion import AssertionRefused, AssertionVerifier
from extproc.config.compile import load_policy
from extproc_lab.keys import secret_hash, write_pem
from tests.support.e2e_support import marker, request, started_stack

SECRET = "the-deployers-secret-of-forty-two-characters"
CLIENT_ID = ("x-access-client-id", "deployer.access")
MAX_FAILURES = 5


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("service-tokens")
    (workdir / "deployer.hash").write_text(secret_hash(SECRET) + "\n")
    key = write_pem(workdir / "assertion.pem", ed25519.Ed25519PrivateKey.generate())
    policy = f"""
version: 1
access:
  service_tokens:
    deployer: {{client_id: deployer.access, secret_hash_file: {workdir / 'deployer.hash'}}}
  service_token_lockout: {{max_failures: {MAX_FAILURES}, window_s: 600, lockout_s: 600}}
  assertion: {{key_file: {key}, issuer: extproc-e2e}}
  apps:
    - name: deploy
      routes: [deploy]
      policies: [{{name: ci, include: [{{service_token: [deployer]}}]}}]
defaults:
  layers:
    access: {{}}
routes:
  - {{name: deploy, match: {{path_prefix: /deploy}}}}
"""
    with started_stack("service token stack", policy, workdir, sidecar_args=["--drain-seconds", "1"]) as s:
        s.workdir = workdir
        yield s


def send(stack, secret: str, path: str = "/deploy/api", method: str = "GET"):
    return request(stack.listen_port, method, path, headers=[CLIENT_ID, ("x-access-client-secret", secret)])


def test_each_assertion_the_upstream_gets_is_bound_to_its_request_and_good_once(stack):
    jwks = load_policy(stack.workdir / "policy.yaml").access.signer.jwks()
    upstream = AssertionVerifier(jwks, issuer="extproc-e2e", audience="deploy")
    path = f"/deploy/{marker()}"
    first, second = send(stack, SECRET, path + "?dry_run=1"), send(stack, SECRET, path, method="POST")
    assert first.status == second.status == 200
    echoed = [dict(response.json()["headers"]) for response in (first, second)]
    assertions = [headers["x-extproc-assertion"] for headers in echoed]
    url = f"http://{echoed[0]['host']}{path}"  # what the upstream received: no query
    claims = upstream.verify(assertions[0], "GET", url)
    assert claims["sub"] == "deployer" and claims["rid"] == echoed[0]["x-request-id"]
    with pytest.raises(AssertionRefused, match="replayed"):
        upstream.verify(assertions[0], "GET", url)  # captured upstream, replayed within its 60 s
    with pytest.raises(AssertionRefused, match="other_request"):
        upstream.verify(assertions[1], "DELETE", url)  # a POST's assertion does not authorise a DELETE
    assert upstream.verify(assertions[1], "POST", url)["jti"] != claims["jti"]
    assert "x-access-client-secret" not in echoed[0]


def test_a_guessing_source_is_locked_out_and_told_nothing_more(stack):
    assert send(stack, SECRET).status == 200
    for attempt in range(MAX_FAILURES):
        wrong = send(stack, f"guess-{attempt}-" + "x" * 40)
        assert wrong.status == 401
    locked = send(stack, SECRET)  # the right secret, from the locked-out source (all of loopback here)
    assert locked.status == 429 and locked.header("x-request-id")
    assert "locked" not in locked.everything() and "service_token" not in locked.everything()
