"""Service tokens (salted hashes from a file or inline, the lockout of guessing sources) and the
upstream assertion bound to one request (jti, method, URL, request id)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from extproc.access.assertion import AssertionRefused, AssertionVerifier
from extproc.access.service_tokens import Lockout, SecretHash, hash_secret, parse_hash, source_key
from extproc.config.compile import parse_policy
from extproc.core.transaction import Transaction
from extproc.core.request import Request
from extproc_lab.keys import secret_hash, write_pem

SECRET = "a-service-token-secret-of-forty-characters"
CLIENT = ("x-access-client-id", "deployer.access")


def policy_text(folder, token: str, lockout: str = "") -> str:
    key = write_pem(folder / "assertion.pem", ec.generate_private_key(ec.SECP256R1()))
    return f"""
version: 1
access:
  service_tokens:
    deployer: {{client_id: deployer.access, {token}}}
  {lockout}
  assertion: {{key_file: {key}, issuer: extproc-test}}
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


@pytest.fixture
def policy(tmp_path):
    return parse_policy(policy_text(tmp_path, f"secret_hash: {secret_hash(SECRET)}",
                                    "service_token_lockout: {max_failures: 3, window_s: 60, lockout_s: 300}"), "p.yaml")


def call(policy, secret, source_ip="198.51.100.4", path="/deploy/api", method="GET", request_id="r-1"):
    request = Request(method, path, authority="deploy.example", headers=(CLIENT, ("x-access-client-secret", secret)),
                      source_ip=source_ip, request_id=request_id)
    return Transaction(policy, request).on_headers()


def access_reason(decision) -> str:
    return next(r for r in decision.reasons if r.startswith("access:") and not r.startswith("access:app="))


def test_the_stored_hash_is_salted_and_no_two_are_alike():
    first, second = hash_secret(SECRET), hash_secret(SECRET)
    assert first != second and first.startswith("hmac-sha256$")
    assert parse_hash(first).matches(SECRET) and parse_hash(second).matches(SECRET)
    assert not parse_hash(first).matches(SECRET + "x")


def test_a_short_secret_never_matches_even_when_its_hash_is_stored():
    with pytest.raises(ValueError, match="at least 32"):
        hash_secret("password")
    import hashlib
    import hmac

    salt = b"s" * 16
    stored = SecretHash(salt, hmac.new(salt, b"password", hashlib.sha256).digest())  # smuggled into a policy
    assert not stored.matches("password")


def test_a_hash_file_is_read_at_compile_and_listed_for_reload(tmp_path):
    (tmp_path / "deployer.hash").write_text(hash_secret(SECRET) + "\n")
    policy = parse_policy(policy_text(tmp_path, f"secret_hash_file: {tmp_path / 'deployer.hash'}"), "p.yaml")
    assert call(policy, SECRET).allowed
    assert str(tmp_path / "deployer.hash") in policy.access.files
    assert str(tmp_path / "assertion.pem") in policy.access.files


def test_a_source_that_keeps_guessing_is_locked_out_even_with_the_right_secret(policy):
    for _ in range(3):
        wrong = call(policy, "x" * 40)
        assert (wrong.status, access_reason(wrong)) == (401, "access:bad_service_token")
    locked = call(policy, SECRET)
    assert (locked.status, access_reason(locked)) == (429, "access:service_token_locked_out")
    assert call(policy, SECRET, source_ip="198.51.100.5").allowed  # another source is not
    # The same host by another IPv6 address of its /64 is the same source; the next /64 is not.
    for _ in range(3):
        call(policy, "x" * 40, source_ip="2001:db8:0:1::1")
    assert call(policy, SECRET, source_ip="2001:db8:0:1::ffff").status == 429
    assert call(policy, SECRET, source_ip="2001:db8:0:2::1").allowed


def test_a_lockout_survives_a_policy_reload(policy, tmp_path):
    for _ in range(3):
        call(policy, "x" * 40)
    reloaded = parse_policy(policy_text(tmp_path, f"secret_hash: {secret_hash(SECRET)}"), "p.yaml")
    assert call(reloaded, SECRET).status == 429


def test_failures_outside_the_window_do_not_add_up_and_a_lockout_ends():
    lockout = Lockout()
    assert not lockout.failed("192.0.2.1", 0, 3, 60, 300)
    assert not lockout.failed("192.0.2.1", 30, 3, 60, 300)
    assert not lockout.failed("192.0.2.1", 100, 3, 60, 300)  # the window restarted at 100
    assert not lockout.failed("192.0.2.1", 110, 3, 60, 300)
    assert lockout.failed("192.0.2.1", 120, 3, 60, 300)
    assert lockout.locked("192.0.2.1", 419) and not lockout.locked("192.0.2.1", 421)
    assert source_key("::ffff:192.0.2.1") == "192.0.2.1"


def test_the_lockout_table_is_bounded():
    lockout = Lockout(max_sources=100)
    for index in range(1000):
        lockout.failed(f"10.0.{index // 256}.{index % 256}", 0, 3, 60, 300)
    assert len(lockout.sources) == 100


def test_each_assertion_is_for_one_request_and_once(policy):
    published = policy.access.signer.jwks()
    verifier = AssertionVerifier(published, issuer="extproc-test", audience="deploy")
    first = dict(call(policy, SECRET, request_id="r-1").set_headers)["x-extproc-assertion"]
    second = dict(call(policy, SECRET, request_id="r-2").set_headers)["x-extproc-assertion"]
    claims = verifier.verify(first, "GET", "http://deploy.example/deploy/api")
    assert claims["rid"] == "r-1" and claims["htm"] == "GET" and claims["sub"] == "deployer"
    with pytest.raises(AssertionRefused, match="replayed"):
        verifier.verify(first, "GET", "http://deploy.example/deploy/api")
    with pytest.raises(AssertionRefused, match="other_request"):
        verifier.verify(second, "DELETE", "http://deploy.example/deploy/api")
    with pytest.raises(AssertionRefused, match="other_request"):
        verifier.verify(second, "GET", "http://deploy.example/deploy/other")
    assert verifier.verify(second, "GET", "http://deploy.example/deploy/api")["jti"] != claims["jti"]
    with pytest.raises(AssertionRefused, match="expired"):
        verifier.verify(dict(call(policy, SECRET).set_headers)["x-extproc-assertion"], "GET",
                        "http://deploy.example/deploy/api", now=claims["exp"] + 600)


def test_service_token_new_makes_a_working_entry_and_never_overwrites(tmp_path):
    hash_file = tmp_path / "deployer.hash"
    made = subprocess.run([sys.executable, "-m", "extproc", "service-token", "new", "deployer",
                           "--hash-file", str(hash_file)], capture_output=True, text=True, check=True).stdout
    lines = dict(line.split(": ", 1) for line in made.splitlines() if line.startswith("x-access-"))
    assert lines["x-access-client-id"] == "deployer.access" and len(lines["x-access-client-secret"]) >= 32
    assert f"secret_hash_file: {hash_file}" in made and lines["x-access-client-secret"] not in hash_file.read_text()
    assert os.stat(hash_file).st_mode & 0o777 == 0o600
    policy = parse_policy(policy_text(tmp_path, f"secret_hash_file: {hash_file}"), "p.yaml")
    assert call(policy, lines["x-access-client-secret"]).allowed
    again = subprocess.run([sys.executable, "-m", "extproc", "service-token", "new", "deployer",
                            "--hash-file", str(hash_file)], capture_output=True, text=True)
    assert again.returncode == 2 and "exists" in again.stderr
