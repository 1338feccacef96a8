"""Lateral reach, verified: for each test identity, try every route of the policy through Envoy and
compare what got through with what `extproc reach` computes from the same policy.

Identities are JSON Lines, one per line::

    {"name": "ana", "token": "eyJ..."}                               # sent as Authorization: Bearer
    {"name": "deployer", "service_token": "deployer.access:s3cret"}  # sent in the two service-token headers
    {"name": "eve", "claims": {"email": "eve@corp.example", "groups": ["marketing"], "idp": "corp"}}
    ... each may add "expect": {"admin": false, "wiki": true}: what the team asserts

Claims have no credential to send, so claims-only identities are checked in-process only
(computed reach against their expectations). Any route that is reachable where the policy says it
is not, or the reverse, and any broken expectation, is a failure.

Each route needs a request that lands on it. The probe is made from the route's match (path
prefix, host, method; a route matched by Envoy route name X is probed at /X/, as in the demo
bootstrap) and checked in-process to select that route; --routes FILE ({"route": "/path"}) fixes
the routes the guess cannot reach.
"""
from __future__ import annotations

import http.client
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from extproc.core.policy import Policy
from extproc.commands.reach import credential_request, identity_from_claims, reach
from extproc_lab.redteam.forgery import Forgery, forgeries
from extproc.core.request import Request

PROBE_LEAF = "redteam-reach"
DENIED = (401, 403, 429)  # the access layer's answers: no or bad credential, identity not allowed, locked out


class IdentityError(ValueError):
    pass


@dataclass(frozen=True)
class Persona:
    name: str
    token: str | None = None
    service_token: str | None = None
    claims: dict | None = None
    expect: dict[str, bool] = field(default_factory=dict)

    @property
    def sendable(self) -> bool:
        return bool(self.token or self.service_token)


@dataclass(frozen=True)
class Probe:
    route: str
    method: str
    path: str
    host: str


def load_identities(path: str) -> list[Persona]:
    identities = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            identities.append(_identity(line, f"{path}:{number}"))
    return identities


def _identity(line: str, where: str) -> Persona:
    try:
        spec = json.loads(line)
    except ValueError as exc:
        raise IdentityError(f"{where}: not JSON: {exc}") from None
    if not isinstance(spec, dict) or not any(spec.get(k) for k in ("token", "service_token", "claims")):
        raise IdentityError(f"{where}: an identity needs a token, a service_token or claims")
    expect = spec.get("expect") or {}
    if not isinstance(expect, dict) or not all(isinstance(v, bool) for v in expect.values()):
        raise IdentityError(f"{where}: expect must map route names to true/false")
    return Persona(name=str(spec.get("name") or where), token=spec.get("token"),
                        service_token=spec.get("service_token"), claims=spec.get("claims"), expect=expect)


# -- probes -----------------------------------------------------------------------------------


def probes(policy: Policy, config_path: str, overrides: dict[str, str] | None = None) -> dict[str, Probe | str]:
    """route -> the request that reaches it, or why none could be made."""
    document = yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {}
    matches = {str(r.get("name")): (r.get("match") or {}) for r in document.get("routes") or ()}
    return {route.name: _probe(policy, route.name, matches.get(route.name, {}), (overrides or {}).get(route.name))
            for route in policy.routes}


def _probe(policy: Policy, route: str, match: dict, override: str | None) -> Probe | str:
    hosts = [h for h in match.get("hosts") or () if "*" not in h] or [
        h.replace("*", "redteam") for h in match.get("hosts") or ()] or ["redteam.example"]
    method = (match.get("methods") or ["GET"])[0].upper()
    if override:
        path = override
    elif match.get("path_prefix"):
        path = match["path_prefix"].rstrip("/") + "/" + PROBE_LEAF
    elif match.get("route_name"):
        path = f"/{match['route_name']}/{PROBE_LEAF}"
    elif match.get("path_regex"):
        return "a path_regex route: give its path with --routes"
    else:
        path = "/" + PROBE_LEAF
    request = Request(method, path, authority=hosts[0], route_name=str(match.get("route_name") or ""))
    chosen = policy.route_for(request).name
    return Probe(route, method, path, hosts[0]) if chosen == route else f"{path} selects route {chosen}"


# -- checks -----------------------------------------------------------------------------------


def computed_reach(policy: Policy, identity: Persona) -> dict[str, tuple[bool, str]]:
    if identity.sendable:
        if policy.access is None:
            raise IdentityError("the policy has no access block: credentials cannot be checked")
        rows = reach(policy, request=credential_request(identity.token, identity.service_token, policy))
    else:
        rows = reach(policy, identity_from_claims(identity.claims))
    return {row.route: (row.reachable, row.why) for row in rows}


def credential_headers(policy: Policy, identity: Persona) -> list[tuple[str, str]]:
    return list(credential_request(identity.token, identity.service_token, policy).headers)


def observe(target: tuple[str, int], probe: Probe, headers: list[tuple[str, str]], timeout: float) -> tuple[bool | None, int]:
    """(reached the app?, status); None when the answer says neither (5xx, no answer)."""
    conn = http.client.HTTPConnection(*target, timeout=timeout)
    try:
        conn.putrequest(probe.method, probe.path, skip_host=True, skip_accept_encoding=True)
        for name, value in [("Host", probe.host), *headers]:  # a repeated header stays repeated
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        response.read()
    except (OSError, http.client.HTTPException):
        return None, 0
    finally:
        conn.close()
    if response.status >= 500:
        return None, response.status
    return response.status not in DENIED, response.status


def check(policy: Policy, identities: list[Persona], route_probes: dict[str, Probe | str],
          target: tuple[str, int] | None, timeout: float = 10.0) -> dict:
    """Every identity on every route: computed reach, observed reach (through Envoy), expectations."""
    checks = []
    for identity in identities:
        computed = computed_reach(policy, identity)
        for route, probe in route_probes.items():
            checks.append(_check_one(policy, identity, route, probe, computed[route], target, timeout))
    for identity in identities:  # after every genuine check: forged service tokens count towards a lockout
        if identity.sendable:
            checks += forged_checks(policy, identity, route_probes, target, timeout)
    failures = sum(c["verdict"] == "FAIL" for c in checks)
    skipped = sum(c["verdict"] == "skipped" for c in checks)
    return {"checked": len(checks) - skipped, "failures": failures, "skipped": skipped, "checks": checks}


def _check_one(policy: Policy, identity: Persona, route: str, probe: Probe | str, computed: tuple[bool, str],
               target: tuple[str, int] | None, timeout: float) -> dict:
    row = {"identity": identity.name, "route": route, "computed": computed[0], "why": computed[1]}
    problems = []
    observed = None
    if target is not None and identity.sendable and isinstance(probe, Probe):
        observed, row["status"] = observe(target, probe, credential_headers(policy, identity), timeout)
        row["observed"] = observed
        if observed is None:
            problems.append(f"no verdict from Envoy (status {row['status']})")
        elif observed != computed[0]:
            problems.append(f"Envoy {'let it through' if observed else 'refused it'}, policy says "
                            f"{'reachable' if computed[0] else 'not reachable'}")
    elif target is not None:
        row["note"] = probe if isinstance(probe, str) else "claims only: checked in-process"
    if route in identity.expect:
        row["expected"] = identity.expect[route]
        actual = observed if observed is not None else computed[0]
        if actual != identity.expect[route]:
            problems.append(f"expected {'reachable' if identity.expect[route] else 'not reachable'}")
    compared = observed is not None or "expected" in row
    row["verdict"] = "FAIL" if problems else ("ok" if compared else "skipped")
    if problems:
        row["problems"] = problems
    return row


def forged_checks(policy: Policy, identity: Persona, route_probes: dict[str, Probe | str],
                  target: tuple[str, int] | None, timeout: float) -> list[dict]:
    """Each forged variant of the identity's credential, on each route the genuine one reaches and a
    request without credentials does not: refused in-process, and through Envoy when there is a target."""
    anonymous = {row.route for row in reach(policy, request=Request("GET", "/")) if row.reachable}
    genuine = computed_reach(policy, identity)
    guarded = [r for r, (reachable, _) in genuine.items() if reachable and r not in anonymous]
    headers = policy.access.service_token_headers
    rows = []
    for forgery in forgeries(identity.token, identity.service_token, *headers):
        computed = {row.route: row for row in reach(policy, request=Request("GET", "/", headers=forgery.headers))}
        for route in guarded[:1] if forgery.guess else guarded:
            rows.append(_forged_row(identity, forgery, route, computed[route], route_probes[route], target, timeout))
    return rows


def _forged_row(identity: Persona, forgery: Forgery, route: str, computed, probe: Probe | str,
                target: tuple[str, int] | None, timeout: float) -> dict:
    row = {"identity": f"{identity.name} [{forgery.name}]", "route": route, "computed": computed.reachable,
           "why": computed.why, "expected": False}
    problems = ["the policy lets the forgery in"] if computed.reachable else []
    if target is not None and isinstance(probe, Probe):
        row["observed"], row["status"] = observe(target, probe, list(forgery.headers), timeout)
        if row["observed"] is None:
            problems.append(f"no verdict from Envoy (status {row['status']})")
        elif row["observed"]:
            problems.append("Envoy let the forgery through")
    row["verdict"] = "FAIL" if problems else "ok"
    if problems:
        row["problems"] = problems
    return row
