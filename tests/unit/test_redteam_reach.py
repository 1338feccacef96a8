"""The lateral-reach check in-process: identities files, probe paths made from the policy, and
expectations compared with what the policy computes (the Envoy side is in tests/e2e)."""
from __future__ import annotations

import json

import pytest

from extproc.cli import main
from extproc.config.compile import load_policy, parse_policy
from extproc_lab.redteam import reach_check
from extproc_lab.redteam.reach_check import IdentityError, Probe, Persona
from extproc.local.stack import DEMO_POLICY

DEMO_SECRET = "demo-secret-change-me-before-real-use"


def test_probes_land_on_every_route_of_the_demo_policy():
    probes = reach_check.probes(load_policy(DEMO_POLICY), str(DEMO_POLICY))
    assert probes == {
        "api": Probe("api", "GET", "/api/redteam-reach", "redteam.example"),
        "internal": Probe("internal", "GET", "/internal/redteam-reach", "redteam.example"),
        "legacy": Probe("legacy", "GET", "/legacy/redteam-reach", "redteam.example"),
        "site": Probe("site", "GET", "/redteam-reach", "redteam.example"),
    }


def test_a_route_the_guess_cannot_reach_says_why_and_an_override_fixes_it(tmp_path):
    text = """version: 1
routes:
  - {name: broad, match: {path_prefix: /a}}
  - {name: shadowed, match: {path_prefix: /a/b}}
  - {name: regex, match: {path_regex: '^/v[0-9]+/'}}
  - {name: hosted, match: {hosts: ['*.corp.example'], methods: [POST]}}
"""
    path = tmp_path / "p.yaml"
    path.write_text(text)
    policy = parse_policy(text)
    probes = reach_check.probes(policy, str(path))
    assert probes["shadowed"] == "/a/b/redteam-reach selects route broad"
    assert probes["regex"] == "a path_regex route: give its path with --routes"
    assert probes["hosted"] == Probe("hosted", "POST", "/redteam-reach", "redteam.corp.example")
    assert reach_check.probes(policy, str(path), {"regex": "/v2/x"})["regex"] == Probe("regex", "GET", "/v2/x",
                                                                                      "redteam.example")


def test_identities_file_errors_name_the_line(tmp_path):
    path = tmp_path / "ids.jsonl"
    path.write_text('{"name": "a", "claims": {"groups": ["x"]}}\n\n{"name": "b"}\n')
    with pytest.raises(IdentityError, match=r"ids.jsonl:3: an identity needs"):
        reach_check.load_identities(str(path))
    path.write_text('{"name": "a", "claims": {}, "token": "t", "expect": {"x": "yes"}}\n')
    with pytest.raises(IdentityError, match="expect must map route names to true/false"):
        reach_check.load_identities(str(path))


def test_in_process_expectations_are_checked_against_the_computed_reach():
    policy = load_policy(DEMO_POLICY)
    identities = [
        Persona("client", service_token=f"demo-client.access:{DEMO_SECRET}", expect={"internal": True}),
        Persona("wrong-secret", service_token="demo-client.access:nope", expect={"internal": False}),
        Persona("visitor", claims={"email": "v@example.org"}, expect={"internal": True, "site": True}),
    ]
    summary = reach_check.check(policy, identities, reach_check.probes(policy, str(DEMO_POLICY)), target=None)
    failures = [(c["identity"], c["route"]) for c in summary["checks"] if c["verdict"] == "FAIL"]
    assert failures == [("visitor", "internal")]
    # 4 expectations, and the client's two forged secrets on the one route it reaches
    assert summary["failures"] == 1 and summary["checked"] == 6 and summary["skipped"] == 8
    forged = [c["identity"] for c in summary["checks"] if "[" in c["identity"]]
    assert forged == ["client [wrong-secret]", "client [second-secret]"]


def test_a_token_check_that_skipped_the_signature_would_be_caught(tmp_path, monkeypatch):
    """The forgeries are only worth running if a verifier that believes them fails the check."""
    import jwt as pyjwt
    from extproc_lab.keys import claims, jwks, new_key

    from extproc.access import tokens

    key = new_key("ec", "corp-1")
    (tmp_path / "corp.json").write_text(json.dumps(jwks(key)))
    path = tmp_path / "p.yaml"
    path.write_text(f"""
version: 1
access:
  idps: {{corp: {{issuer: https://idp.example, jwks: {{file: {tmp_path / 'corp.json'}}}, audience: wiki,
                 algorithms: [ES256]}}}}
  apps: [{{name: wiki, routes: [wiki], policies: [{{name: staff, include: [{{group: [staff]}}]}}]}}]
defaults: {{layers: {{access: {{}}}}}}
routes: [{{name: wiki, match: {{path_prefix: /wiki}}}}]
""")
    policy = load_policy(path)
    persona = Persona("ana", token=key.token(claims("https://idp.example", "wiki")))
    probes = reach_check.probes(policy, str(path))
    assert reach_check.check(policy, [persona], probes, target=None)["failures"] == 0

    def trusting(token, _key, _algorithm, settings, _now):
        return pyjwt.decode(token, options={"verify_signature": False})

    monkeypatch.setattr(tokens, "_decode_at", trusting)
    monkeypatch.setattr(tokens, "_key_fits", lambda *_: True)
    summary = reach_check.check(policy, [persona], probes, target=None)
    broken = {c["identity"] for c in summary["checks"] if c["verdict"] == "FAIL"}
    assert {"ana [signature-stripped]", "ana [lifetime-year-3000]"} <= broken


def test_the_reach_command_exits_1_on_a_failure_and_0_without(tmp_path, capsys):
    path = tmp_path / "ids.jsonl"
    good = {"name": "client", "service_token": f"demo-client.access:{DEMO_SECRET}", "expect": {"internal": True}}
    path.write_text(json.dumps(good) + "\n")
    assert main(["redteam", "reach", "--config", str(DEMO_POLICY), "--identities", str(path)]) == 0
    path.write_text(json.dumps({**good, "expect": {"internal": False}}) + "\n")
    assert main(["redteam", "reach", "--config", str(DEMO_POLICY), "--identities", str(path)]) == 1
    assert "expected not reachable" in capsys.readouterr().out
