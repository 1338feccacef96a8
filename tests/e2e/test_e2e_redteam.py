"""The red-team harness through a real Envoy: replayed attacks agree with the in-process pipeline,
smuggling attempts are refused by Envoy, and lateral reach with real tokens equals what
`extproc reach` computes; a wrong expectation is reported as a failure (exit 1)."""
from __future__ import annotations

import json

import pytest

from extproc.cli import main
from extproc.config.compile import load_policy
from extproc_lab.redteam import mutate, smuggle
from extproc_lab.redteam.replay import InProcess, Remote, attribute_from_audit, replay
from extproc_lab.keys import claims, secret_hash
from tests.support.e2e_support import started_stack

ISSUER = "https://idp.corp.example"
SERVICE_SECRET = "deploy-secret-for-the-e2e-red-team-run"
MUTATIONS = ("none", "url-encode", "html-entities", "hpp-split", "json-nested", "multipart-filename",
             "charset-ibm037", "chunked")


def policy_text(jwks_url: str) -> str:
    return f"""
version: 1
access:
  idps:
    corp: {{issuer: {ISSUER}, jwks: {{url: {jwks_url}, min_refetch_s: 1}}, algorithms: [RS256]}}
  service_tokens:
    deployer: {{client_id: deployer.access, secret_hash: {secret_hash(SERVICE_SECRET)}}}
  apps:
    - name: wiki
      routes: [wiki]
      audience: wiki
      policies: [{{name: staff, include: [{{group: [staff]}}]}}]
    - name: admin
      routes: [admin]
      audience: admin
      policies: [{{name: admins-mfa, include: [{{group: [admins]}}], require: [{{auth_method: [mfa]}}]}},
                 {{name: deployer, include: [{{service_token: [deployer]}}]}}]
defaults:
  layers:
    access: {{budget_ms: 50}}
    attack: {{threshold: 20, budget_ms: 200}}
routes:
  - {{name: wiki, match: {{path_prefix: /wiki}}}}
  - {{name: admin, match: {{path_prefix: /admin}}}}
  - {{name: status, match: {{path_prefix: /status}}, public: true}}
  - {{name: forgotten, match: {{path_prefix: /forgotten}}}}
  - {{name: site, match: {{}}, public: true}}
"""


@pytest.fixture(scope="module")
def stack(idp, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("redteam")
    audit = workdir / "audit.jsonl"
    # A generous per-message timeout: this checks verdicts, and the machine is shared.
    with started_stack("redteam stack", policy_text(idp[1].url), workdir, message_timeout=5.0,
                       sidecar_args=["--drain-seconds", "1", "--audit-log", str(audit)]) as s:
        s.policy_path, s.audit_path = workdir / "policy.yaml", audit
        yield s


def test_replay_through_envoy_stops_what_the_pipeline_stops(stack):
    records = list(mutate.mutation_records(("sqli", "xss"), 3, seed=2, names=MUTATIONS))
    through_envoy = replay(records, Remote(stack.url, timeout=10, concurrency=2))
    in_process = {o.id: o for o in replay(records, InProcess(load_policy(stack.policy_path)))}
    assert [o.result for o in through_envoy if o.result == "error"] == []
    for outcome in through_envoy:
        if in_process[outcome.id].stopped:
            assert outcome.stopped, (outcome, in_process[outcome.id])
    assert attribute_from_audit(through_envoy, stack.audit_path) == sum(o.result == "blocked" for o in through_envoy)
    assert {o.layer for o in through_envoy if o.result == "blocked"} == {"attack"}
    assert any(o.mutation == "charset-ibm037" and o.result == "blocked" for o in through_envoy)


def test_replay_command_through_envoy_writes_its_reports(stack, tmp_path, capsys):
    records = tmp_path / "records.jsonl"
    mutate_args = ["--families", "sqli", "--per-family", "2", "--mutations", "none,chunked", "--seed", "4"]
    assert main(["redteam", "mutate", "--target", stack.url, *mutate_args, "--records-out", str(records),
                 "--quiet"]) == 0
    out = tmp_path / "replay.json"
    assert main(["redteam", "replay", str(records), "--target", stack.url, "--audit", str(stack.audit_path),
                 "--json", str(out), "--html", str(tmp_path / "replay.html")]) == 0
    summary = json.loads(out.read_text())["summary"]
    assert summary["attacks"]["total"] == 4 and summary["by_layer"] == {"attack": summary["attacks"]["stopped"]}
    assert "attacks stopped" in capsys.readouterr().out


def test_smuggling_attempts_are_refused_by_envoy_and_never_desync(stack):
    rows = {row["name"]: row for row in smuggle.run_all("127.0.0.1", stack.listen_port, timeout=2.0)}
    for name in ("cl-te", "te-cl", "te-space-before-colon", "cl-duplicate", "nul-in-header", "space-in-header-name"):
        assert rows[name]["verdict"] == smuggle.ENVOY and rows[name]["status"] == 400, rows[name]
    assert all(row.get("responses", 0) <= 1 for row in rows.values()), rows
    assert rows["obs-fold"]["verdict"] != smuggle.PASSED  # the folded payload is seen and denied
    assert rows["underscore-header"]["verdict"] == smuggle.ENVOY and rows["underscore-header"]["status"] == 400
    spellings = [name for name in rows if name.startswith("path-")]
    assert len(spellings) == 4 and all(rows[name]["verdict"] != smuggle.PASSED for name in spellings), rows
    # Nothing smuggled reached the app: the upstream never saw the second request's payload.
    assert not [r for r in stack.upstream.requests() if "alert(document.cookie)" in r["path"]]


def test_forged_identity_never_reaches_a_protected_app(stack, tmp_path, capsys):
    """Issue 19: the headers the sidecar sets, a client certificate header with an escaped quote,
    device posture, an unsigned token, half a service token: refused on a protected route. On a
    public route the same probes reach the app, and the command says so (exit 1)."""
    out = tmp_path / "smuggle.json"
    assert main(["redteam", "smuggle", "--target", stack.url, "--protected", "/wiki/page", "--json", str(out)]) == 0
    rows = {r["name"]: r for r in json.loads(out.read_text())["rows"] if r["name"].startswith("identity-")}
    assert len(rows) == 6 and rows["identity-underscore-identity-header"]["status"] == 400  # Envoy's own
    assert all(r["verdict"] in (smuggle.SIDECAR_DENIED, smuggle.ENVOY) for r in rows.values()), rows
    assert all(r["status"] in (400, 401) for r in rows.values()), rows
    capsys.readouterr()
    assert main(["redteam", "smuggle", "--target", stack.url, "--protected", "/status/page"]) == 1
    assert "forged identity reached the app: identity-sidecar-headers" in capsys.readouterr().out


def identity_lines(idp, wrong: bool) -> list[dict]:
    key, _ = idp

    def token(email, groups, **extra):
        return key.token(claims(ISSUER, ["wiki", "admin"], email=email, groups=groups, **extra))

    eve_expect = {"admin": True} if wrong else {"admin": False}  # the deliberate mistake: eve is no admin
    return [
        {"name": "ana", "token": token("ana@corp.example", ["staff"]), "expect": {"wiki": True, "admin": False}},
        {"name": "root", "token": token("root@corp.example", ["admins", "staff"], amr=["pwd", "mfa"])},
        {"name": "eve", "token": token("eve@corp.example", ["marketing"]), "expect": eve_expect},
        {"name": "deployer", "service_token": f"deployer.access:{SERVICE_SECRET}", "expect": {"admin": True}},
        {"name": "claims-only", "claims": {"email": "zoe@corp.example", "groups": ["staff"], "idp": "corp"},
         "expect": {"wiki": True}},
    ]


def write_identities(path, lines) -> str:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return str(path)


def test_lateral_reach_through_envoy_equals_the_policy(stack, idp, tmp_path):
    identities = write_identities(tmp_path / "ids.jsonl", identity_lines(idp, wrong=False))
    out = tmp_path / "reach.json"
    assert main(["redteam", "reach", "--config", str(stack.policy_path), "--identities", identities,
                 "--target", stack.url, "--json", str(out), "--html", str(tmp_path / "reach.html")]) == 0
    summary = json.loads(out.read_text())["summary"]
    assert summary["failures"] == 0
    checks = [c for c in summary["checks"] if "[" not in c["identity"]]
    observed = {(c["identity"], c["route"]): c["observed"] for c in checks if "observed" in c}
    assert len(observed) == 4 * 5  # four identities with credentials, five routes
    assert observed[("ana", "wiki")] and not observed[("ana", "admin")] and observed[("root", "admin")]
    assert observed[("deployer", "admin")] and not observed[("deployer", "wiki")]
    assert not any(observed[(who, "forgotten")] for who in ("ana", "root", "eve", "deployer"))
    claims_only = [c for c in summary["checks"] if c["identity"] == "claims-only"]
    assert all("observed" not in c for c in claims_only) and {c["verdict"] for c in claims_only} == {"ok", "skipped"}
    # Forged variants of each credential (issue 19): refused by the policy and by Envoy on every
    # route the genuine credential reaches; a forged service token is one guess, on one route.
    forged = [c for c in summary["checks"] if "[" in c["identity"]]
    assert {c["identity"].split(" [")[1].rstrip("]") for c in forged} == {
        "alg-none", "signature-stripped", "kid-array", "iss-array", "lifetime-year-3000", "attacker-key-in-header",
        "forged-beside-good", "wrong-secret", "second-secret"}
    assert all(c["verdict"] == "ok" and c["observed"] is False and not c["computed"] for c in forged)
    routes = {(c["identity"].split(" [")[0], c["route"]) for c in forged}
    assert routes == {("ana", "wiki"), ("root", "wiki"), ("root", "admin"), ("deployer", "admin")}


def test_a_wrong_expectation_is_reported_as_a_failure(stack, idp, tmp_path, capsys):
    identities = write_identities(tmp_path / "ids.jsonl", identity_lines(idp, wrong=True))
    assert main(["redteam", "reach", "--config", str(stack.policy_path), "--identities", identities,
                 "--target", stack.url]) == 1
    out = capsys.readouterr().out
    assert "1 failure(s)" in out
    (failure,) = [line for line in out.splitlines() if " FAIL " in line]
    assert failure.startswith("eve") and "admin" in failure and "expected reachable" in failure


def test_a_policy_that_differs_from_what_envoy_enforces_is_a_failure(stack, idp, tmp_path):
    """Reach computed from one policy while the sidecar serves another: every difference fails."""
    looser = tmp_path / "looser.yaml"
    looser.write_text(stack.policy_path.read_text().replace("include: [{group: [staff]}]",
                                                            "include: [{group: [staff, marketing]}]"))
    identities = write_identities(tmp_path / "ids.jsonl", identity_lines(idp, wrong=False)[2:3])  # eve
    out = tmp_path / "reach.json"
    assert main(["redteam", "reach", "--config", str(looser), "--identities", identities, "--target", stack.url,
                 "--json", str(out)]) == 1
    (failure,) = [c for c in json.loads(out.read_text())["summary"]["checks"] if c["verdict"] == "FAIL"]
    assert failure["route"] == "wiki" and failure["computed"] and not failure["observed"]
