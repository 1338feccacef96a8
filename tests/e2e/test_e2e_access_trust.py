"""What each IdP is trusted with, end to end (issue 19, items 4 and 5): a real Envoy, the sidecar,
two IdPs with JWKS files. A revoked key's token stops working as soon as the file changes even
though it was accepted (and cached) before; a token that claims to live for centuries is refused;
a partner IdP cannot assert a corp address or corp groups. `extproc reach` agrees with Envoy."""
from __future__ import annotations

import json
import os

import pytest

from extproc.config.compile import load_policy
from extproc.commands.reach import credential_request, reach
from extproc_lab.keys import claims, jwks, new_key
from tests.support.e2e_support import request, started_stack, wait_for

CORP, PARTNER = "https://idp.corp.example", "https://login.partner.example"


def write_jwks(path, *keys) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(jwks(*keys)))
    os.replace(tmp, path)


@pytest.fixture(scope="module")
def keys():
    return {"corp": new_key("rsa", "corp-2026"), "corp-revoked": new_key("ec", "corp-2025"),
            "partner": new_key("ed", "partner-1")}


@pytest.fixture(scope="module")
def stack(keys, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("access-trust")
    write_jwks(workdir / "corp.json", keys["corp"], keys["corp-revoked"])
    write_jwks(workdir / "partner.json", keys["partner"])
    policy = f"""
version: 1
access:
  idps:
    corp: {{issuer: {CORP}, jwks: {{file: {workdir / 'corp.json'}}}, email_domains: [corp.example]}}
    partner: {{issuer: {PARTNER}, jwks: {{file: {workdir / 'partner.json'}}}, email_domains: [partner.example],
               algorithms: [EdDSA]}}
  apps:
    - name: wiki
      routes: [wiki]
      audience: wiki
      idps: [corp, partner]
      policies:
        - {{name: corp-people, include: [{{email_domain: [corp.example]}}]}}
        - {{name: corp-admins, include: [{{group: [admins], idp: [corp]}}]}}
        - {{name: partner-people, include: [{{email_domain: [partner.example]}}]}}
defaults:
  layers:
    access: {{budget_ms: 50}}
routes:
  - {{name: wiki, match: {{path_prefix: /wiki}}}}
"""
    with started_stack("access trust stack", policy, workdir, sidecar_args=["--drain-seconds", "1"]) as s:
        s.workdir = workdir
        yield s


def send(stack, token: str):
    return request(stack.listen_port, "GET", "/wiki/page", headers=[("authorization", f"Bearer {token}")])


def reach_wiki(stack, token: str):
    policy = load_policy(stack.workdir / "policy.yaml")
    return next(row for row in reach(policy, request=credential_request(token=token)) if row.route == "wiki")


def test_a_revoked_keys_token_is_refused_once_the_jwks_file_changes(stack, keys):
    token = keys["corp-revoked"].token(claims(CORP, "wiki"))
    assert send(stack, token).status == 200
    assert send(stack, token).status == 200  # now in the sidecar's verified-token cache
    write_jwks(stack.workdir / "corp.json", keys["corp"])  # the key leaves the JWKS; no reload, no restart
    # refresh_s is 300: only the file watch (a stat a second) can revoke it this soon
    wait_for(lambda: send(stack, token).status == 401, timeout=20, interval=0.2, what="the revoked key to stop working")
    row = reach_wiki(stack, token)
    assert (row.reachable, row.why) == (False, "unknown_key")
    assert send(stack, keys["corp"].token(claims(CORP, "wiki"))).status == 200  # the remaining key still works


def test_a_token_that_lives_until_2999_is_refused(stack, keys):
    forever = {**claims(CORP, "wiki"), "exp": 32_503_680_000}
    token = keys["corp"].token(forever)
    assert send(stack, token).status == 401
    assert reach_wiki(stack, token).why == "token_lifetime_too_long"
    no_iat = {name: value for name, value in forever.items() if name != "iat"}
    assert send(stack, keys["corp"].token(no_iat)).status == 401
    assert send(stack, keys["corp"].token(claims(CORP, "wiki", ttl=3600))).status == 200


@pytest.mark.parametrize("email", ["ana@corp.example", "ANA@corp.example", "pat@partner.example@corp.example"])
def test_a_partner_token_asserting_a_corp_address_does_not_pass_a_corp_rule(stack, keys, email):
    token = keys["partner"].token(claims(PARTNER, "wiki", email=email, groups=["admins"]))
    assert send(stack, token).status == 403
    assert reach_wiki(stack, token).reachable is False
    corp = send(stack, keys["corp"].token(claims(CORP, "wiki", email=email, groups=[])))
    assert corp.status == 200
    seen = corp.json()["headers"]
    assert [v for n, v in seen if n == "x-extproc-user-email"] == [email.lower()]


def test_a_partner_asserting_its_own_addresses_gets_in_with_its_email_and_idp(stack, keys):
    response = send(stack, keys["partner"].token(claims(PARTNER, "wiki", email="pat@partner.example")))
    assert response.status == 200
    seen = dict(response.json()["headers"])
    assert seen["x-extproc-user-email"] == "pat@partner.example" and seen["x-extproc-user-idp"] == "partner"
