"""What each IdP is trusted with (issue 19, items 4 and 5): a token lives no longer than its key
and the IdP's maximum lifetime, and an IdP asserts only the email domains it owns and its own
groups. Real keys and JWKS files; the serving path (Transaction) and `reach` agree throughout."""
from __future__ import annotations

import json
import os
import time

import pytest

from extproc.config.compile import ConfigError, parse_policy
from extproc.core.transaction import Transaction
from extproc.commands.reach import credential_request, identity_from_claims, reach
from extproc.core.request import Request
from extproc_lab.keys import claims, jwks, new_key

CORP, PARTNER = "https://idp.corp.example", "https://login.partner.example"
APPS = """
  apps:
    - name: wiki
      routes: [wiki]
      audience: wiki
      idps: [corp, partner]
      policies:
        - {{name: corp-people, include: [{{email_domain: [corp.example]}}]}}
        - {{name: corp-staff, include: [{{group: [staff], idp: [corp]}}]}}
        - {{name: named-partner, include: [{{email: [pat@partner.example]}}]}}
        - {{name: partner-claim, include: [{{claim: {{email: [ana@corp.example]}}, idp: [partner]}}]}}
defaults: {{layers: {{access: {{}}}}}}
routes: [{{name: wiki, match: {{path_prefix: /wiki}}}}, {{name: status, match: {{path_prefix: /status}}, public: true}}]
"""


def write_jwks(path, *keys) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(jwks(*keys)))
    os.replace(tmp, path)  # as a deploy would: a new file over the old


def policy_for(folder, extra_corp: str = "") -> object:
    return parse_policy(f"""
version: 1
access:
  idps:
    corp: {{issuer: {CORP}, jwks: {{file: {folder / 'corp.json'}}}, email_domains: [corp.example]{extra_corp}}}
    partner: {{issuer: {PARTNER}, jwks: {{file: {folder / 'partner.json'}}}, email_domains: [partner.example]}}
""" + APPS.format(), "trust.yaml")


@pytest.fixture
def idps(tmp_path):
    keys = {"corp": new_key("rsa", "corp-1"), "corp-2": new_key("ec", "corp-2"), "partner": new_key("ed", "partner-1")}
    write_jwks(tmp_path / "corp.json", keys["corp"], keys["corp-2"])
    write_jwks(tmp_path / "partner.json", keys["partner"])
    return keys, tmp_path


def call(policy, token: str, path: str = "/wiki"):
    return Transaction(policy, Request("GET", path, headers=(("authorization", f"Bearer {token}"),))).on_headers()


def reason(decision) -> str:
    return next(r for r in decision.reasons if r.startswith("access:") and not r.startswith("access:app="))


def reach_wiki(policy, token: str):
    return next(row for row in reach(policy, request=credential_request(token=token)) if row.route == "wiki")


# -- item 4: revoked keys, token lifetime ----------------------------------------------------


def test_a_cached_token_dies_with_its_key(idps):
    keys, folder = idps
    policy = policy_for(folder)
    token = keys["corp-2"].token(claims(CORP, "wiki"))
    assert call(policy, token).allowed and call(policy, token).allowed  # verified, then from the cache
    write_jwks(folder / "corp.json", keys["corp"])  # corp-2 revoked
    policy.access.verifier.by_issuer[CORP].keys.refresh()  # what the JWKS thread does (tested end to end)
    refused = call(policy, token)
    assert (refused.status, reason(refused)) == (401, "access:unknown_key")
    assert (reach_wiki(policy, token).reachable, reach_wiki(policy, token).why) == (False, "unknown_key")
    # The key that stayed keeps working, and a key set that did not change keeps the cache.
    other = keys["corp"].token(claims(CORP, "wiki"))
    assert call(policy, other).allowed
    cached = policy.access.verifier.verify(other)
    policy.access.verifier.by_issuer[CORP].keys.refresh()
    assert policy.access.verifier.verify(other) is cached


def test_a_jwks_file_change_is_picked_up_within_seconds_without_a_reload(idps):
    keys, folder = idps
    policy = policy_for(folder)
    token = keys["corp-2"].token(claims(CORP, "wiki"))
    assert call(policy, token).allowed
    write_jwks(folder / "corp.json", keys["corp"])
    deadline = time.time() + 20  # refresh_s is 300: only the file watch can make this pass
    while call(policy, token).allowed:
        assert time.time() < deadline, "the revoked key kept working"
        time.sleep(0.1)
    assert reason(call(policy, token)) == "access:unknown_key"


@pytest.mark.parametrize("make_claims, allowed", [
    (lambda: claims(CORP, "wiki", ttl=3600), True),
    (lambda: claims(CORP, "wiki", ttl=86_400), True),  # the default maximum, exactly
    (lambda: claims(CORP, "wiki", ttl=86_401), False),
    (lambda: {**claims(CORP, "wiki"), "exp": 32_503_680_000}, False),  # the year 2999
    (lambda: {k: v for k, v in {**claims(CORP, "wiki"), "exp": 32_503_680_000}.items() if k != "iat"}, False),
    (lambda: {k: v for k, v in claims(CORP, "wiki", ttl=600).items() if k != "iat"}, True),  # exp - now
    (lambda: {**claims(CORP, "wiki", ttl=600), "iat": time.time() - 90_000}, False),  # an old iat counts
])
def test_tokens_may_live_at_most_the_idps_maximum(idps, make_claims, allowed):
    keys, folder = idps
    policy = policy_for(folder)
    decision = call(policy, keys["corp"].token(make_claims()))
    if allowed:
        assert decision.allowed
    else:
        assert (decision.status, reason(decision)) == (401, "access:token_lifetime_too_long")


def test_the_maximum_lifetime_is_per_idp(idps):
    keys, folder = idps
    policy = policy_for(folder, ", max_token_lifetime_s: 900")
    assert call(policy, keys["corp"].token(claims(CORP, "wiki", ttl=900))).allowed
    too_long = call(policy, keys["corp"].token(claims(CORP, "wiki", ttl=901)))
    assert reason(too_long) == "access:token_lifetime_too_long"
    assert call(policy, keys["partner"].token(claims(PARTNER, "wiki", email="pat@partner.example",
                                                     ttl=3600))).allowed


# -- item 5: what an IdP may assert ----------------------------------------------------------


@pytest.mark.parametrize("email", [
    "ana@corp.example", "ANA@Corp.Example", " ana@corp.example ", "x@partner.example@corp.example",
])
def test_a_partner_token_with_a_corp_address_is_not_a_corp_person(idps, email):
    keys, folder = idps
    policy = policy_for(folder)
    token = keys["partner"].token(claims(PARTNER, "wiki", email=email, groups=["staff"]))
    denied = call(policy, token)
    assert (denied.status, reason(denied)) == (403, "access:no_policy_matched")
    assert reach_wiki(policy, token).reachable is False
    # The same address from the IdP that owns the domain gets in, and the upstream is told it.
    corp = call(policy, keys["corp"].token(claims(CORP, "wiki", email=email, groups=[])))
    assert corp.allowed and dict(corp.set_headers)["x-extproc-user-email"] == email.strip().lower()


def test_an_address_an_idp_may_assert_is_kept_and_one_it_may_not_is_dropped(idps):
    keys, folder = idps
    policy = policy_for(folder)
    own = call(policy, keys["partner"].token(claims(PARTNER, "wiki", email="pat@partner.example")))
    assert own.allowed and dict(own.set_headers)["x-extproc-user-email"] == "pat@partner.example"
    # A corp token claiming a partner address: no email at all, so the named-partner rule fails.
    foreign = call(policy, keys["corp"].token(claims(CORP, "wiki", email="pat@partner.example", groups=[])))
    assert (foreign.status, reason(foreign)) == (403, "access:no_policy_matched")
    # Not even a raw claim rule can read an address its IdP may not assert.
    raw = call(policy, keys["partner"].token(claims(PARTNER, "wiki", email="ana@corp.example", groups=[])))
    assert reason(raw) == "access:no_policy_matched"


def test_groups_bind_to_their_idp(idps):
    keys, folder = idps
    policy = policy_for(folder)
    partner_staff = keys["partner"].token(claims(PARTNER, "wiki", email="pat@partner.example.org", groups=["staff"]))
    assert reason(call(policy, partner_staff)) == "access:no_policy_matched"
    assert call(policy, keys["corp"].token(claims(CORP, "wiki", email="x@elsewhere.example", groups=["staff"]))).allowed


def test_reach_claims_are_held_to_what_their_idp_may_assert(idps):
    keys, folder = idps
    policy = policy_for(folder)

    def wiki(spec):
        return next(r for r in reach(policy, identity_from_claims(spec)) if r.route == "wiki")

    assert wiki({"email": "ana@corp.example", "idp": "corp"}).reachable
    assert not wiki({"email": "ana@corp.example", "idp": "partner"}).reachable
    assert wiki({"email": "ana@corp.example", "idp": "ghost"}).why == "idp_not_accepted"


CONFIG_CASES = [
    # A rule no accepted IdP can satisfy would silently never match (or never deny): refused, saying why.
    ("corp: {issuer: c, jwks: {file: F}}",
     "include: [{email_domain: [corp.example]}]",
     "include[0].email_domain: no IdP this rule accepts may assert addresses in 'corp.example' "
     "('corp' asserts no email address (it has no email_domains))"),
    ("corp: {issuer: c, jwks: {file: F}, email_domains: [corp.example]}\n    partner: {issuer: p, jwks: {file: F}, "
     "email_domains: [partner.example]}",
     "include: [{email: [ana@corp.example], idp: [partner]}]",
     "email: no IdP this rule accepts may assert addresses in 'corp.example' ('partner' asserts partner.example)"),
    ("corp: {issuer: c, jwks: {file: F}}\n    partner: {issuer: p, jwks: {file: F}}",
     "include: [{group: [staff]}]",
     "include[0]: group and claim names are each IdP's own, and this app accepts 'corp', 'partner'"),
    ("corp: {issuer: c, jwks: {file: F}}\n    partner: {issuer: p, jwks: {file: F}}", "include: [{everyone: true}]",
     "access.apps[0].idps: the access block has several IdPs ('corp', 'partner'): name the ones this app accepts"),
    ("corp: {issuer: c, jwks: {file: F}, email_domains: ['not a domain']}", "include: [{everyone: true}]",
     "access.idps.corp.email_domains"),
    ("corp: {issuer: c, jwks: {file: F}, max_token_lifetime_s: 315360000}", "include: [{everyone: true}]",
     "access.idps.corp.max_token_lifetime_s"),
]


@pytest.mark.parametrize("idps_text, rule, error", CONFIG_CASES)
def test_config_says_what_an_idp_may_assert(idps, idps_text, rule, error):
    _, folder = idps
    text = (f"version: 1\naccess:\n  idps:\n    {idps_text.replace('F', str(folder / 'corp.json'))}\n"
            f"  apps: [{{name: a, routes: [r], audience: a, policies: [{{name: p, {rule}}}]}}]\n"
            "routes: [{name: r, match: {}}]\n")
    with pytest.raises(ConfigError) as caught:
        parse_policy(text, "bad.yaml")
    assert error in str(caught.value)


def test_one_idp_apps_and_rules_naming_the_idp_need_no_more(idps):
    _, folder = idps
    text = (f"version: 1\naccess:\n  idps:\n    corp: {{issuer: c, jwks: {{file: {folder / 'corp.json'}}}}}\n"
            "  apps: [{name: a, routes: [r], audience: a, policies: [{name: p, include: [{group: [staff]}]}]}]\n"
            "routes: [{name: r, match: {}}]\n")
    assert parse_policy(text, "ok.yaml").access is not None


def test_check_config_says_what_each_idp_may_assert(idps, capsys):
    from extproc import cli

    _, folder = idps
    path = folder / "policy.yaml"
    path.write_text(f"version: 1\naccess:\n  idps:\n    corp: {{issuer: c, jwks: {{file: {folder / 'corp.json'}}}, "
                    "email_domains: [corp.example, corp.example.org], max_token_lifetime_s: 3600}\n"
                    f"    partner: {{issuer: p, jwks: {{file: {folder / 'partner.json'}}}}}\n")
    assert cli.main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "idp corp: asserts addresses in corp.example, corp.example.org; tokens live at most 3600 s" in out
    assert "idp partner: asserts no email address (it has no email_domains); tokens live at most 86400 s" in out
