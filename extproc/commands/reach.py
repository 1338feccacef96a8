"""``extproc reach``: what one credential (or set of claims) can reach under the current policy.

The red team's lateral-reach check, computed from the policy with the serving code path: a token
or service token is verified exactly as a request carrying it would be, per app (audiences
differ); claims are judged by the apps' policies, held first to what their ``idp`` may assert (an
email outside its ``email_domains`` is dropped, as from a token). Routes without the access layer and
public routes are reachable by anyone, and are listed as such.

    extproc reach --config policy.yaml --token eyJ...
    extproc reach --config policy.yaml --claims '{"email": "ana@corp.example", "groups": ["staff"], "idp": "corp"}'
    extproc reach --config policy.yaml --identities people.jsonl --matrix
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass

from extproc.access.identity import CredentialError, Identity
from extproc.core.policy import Policy
from extproc.core.request import Request
from extproc.core.verdict import Mode


@dataclass(frozen=True)
class Reach:
    route: str
    reachable: bool
    why: str  # "public", "unprotected", "policy:<name>", or the refusal reason


def identity_from_claims(spec: dict) -> Identity:
    methods = set(spec.get("methods") or ())
    if spec.get("idp") or spec.get("email"):
        methods.add("jwt")
    if spec.get("service_token"):
        methods.add("service_token")
    if spec.get("mtls_sans"):
        methods.add("mtls")
    return Identity(
        methods=frozenset(methods), idp=str(spec.get("idp", "")), subject=str(spec.get("sub", "")),
        email=str(spec.get("email", "")).lower(), groups=frozenset(spec.get("groups") or ()),
        claims=spec.get("claims") or spec, auth_methods=frozenset(spec.get("amr") or ()),
        mtls_sans=tuple(spec.get("mtls_sans") or ()), service_token=str(spec.get("service_token", "")),
        source_ip=str(spec.get("source_ip", "")), posture=str(spec.get("device_posture", "")),
    )


def credential_request(token: str | None = None, service_token: str | None = None, policy: Policy | None = None,
                       source_ip: str = "") -> Request:
    """A request carrying the credential where the policy's first IdP / service-token headers expect it."""
    headers = []
    if token:
        headers.append(("authorization", f"Bearer {token}"))
    if service_token:
        if policy is None or policy.access is None:
            raise ValueError("a service token is sent in the headers of a policy's access block")
        client_id, _, secret = service_token.partition(":")
        id_header, secret_header = policy.access.service_token_headers
        headers += [(id_header, client_id), (secret_header, secret)]
    return Request("GET", "/", headers=tuple(headers), source_ip=source_ip)


def reach(policy: Policy, identity: Identity | None = None, request: Request | None = None) -> list[Reach]:
    """Per route, whether the request's credential (else the identity, taken as asserted) reaches it."""
    if identity is None and request is None:
        raise ValueError("reach() needs an identity or a request")
    directory = policy.access
    results = []
    for route in policy.routes:
        access = next((slot for slot in route.slots if slot.name == "access"), None)
        if access is None or access.mode is not Mode.ENFORCE:
            results.append(Reach(route.name, True, "unprotected"))
            continue
        if route.name in policy.public_routes:
            results.append(Reach(route.name, True, "public"))
            continue
        app = directory.app_by_route.get(route.name) if directory else None
        if app is None or directory is None:
            results.append(Reach(route.name, False, "no_app"))
            continue
        try:
            if request is not None:
                who = directory.identify(request, app, record=False)
            elif identity is not None:
                who = directory.as_asserted(identity, app)
        except CredentialError as exc:
            results.append(Reach(route.name, False, exc.reason))
            continue
        decision = app.decide(who)
        why = f"policy:{decision.policy}" if decision.policy else decision.reason
        results.append(Reach(route.name, decision.allowed, why if decision.allowed else f"{decision.reason}:{decision.policy or '-'}"))
    return results


def run(config: str, token: str | None, service_token: str | None, claims: str | None, identities: str | None,
        matrix: bool, as_json: bool) -> int:
    from extproc.config.compile import load_policy_or_report

    policy = load_policy_or_report(config)
    if policy is None:
        return 2
    subjects = _subjects(policy, token, service_token, claims, identities)
    if isinstance(subjects, str):
        print(subjects, file=sys.stderr)
        return 2
    table = {name: reach(policy, identity, request) for name, identity, request in subjects}
    if as_json:
        print(json.dumps({name: [r.__dict__ for r in rows] for name, rows in table.items()}, indent=2))
    elif matrix:
        _print_matrix(table)
    else:
        for name, rows in table.items():
            print(f"{name}:")
            for row in rows:
                print(f"  {'REACHES' if row.reachable else 'blocked'}  {row.route:24} {row.why}")
    return 0


def _subjects(policy, token, service_token, claims, identities):
    if token or service_token:
        if policy.access is None:
            return "the policy has no access block: credentials cannot be checked"
        name = "token" if token else f"service token {service_token.partition(':')[0]}"
        return [(name, None, credential_request(token, service_token, policy))]
    if claims:
        try:
            return [("claims", identity_from_claims(json.loads(claims)), None)]
        except (ValueError, TypeError, AttributeError) as exc:
            return f"--claims: not a JSON object of identity claims: {exc}"
    if identities:
        out = []
        with open(identities) as lines:
            for number, line in enumerate(lines, 1):
                if line.strip():
                    try:
                        spec = json.loads(line)
                        out.append((str(spec.get("name", f"line {number}")), identity_from_claims(spec), None))
                    except (ValueError, TypeError, AttributeError) as exc:
                        return f"{identities}:{number}: not a JSON object of identity claims: {exc}"
        return out
    return "give --token, --service-token, --claims or --identities"


def _print_matrix(table: dict[str, list[Reach]]) -> None:
    routes = [row.route for row in next(iter(table.values()), [])]
    width = max([len(n) for n in table] + [8])
    print(" " * width + "  " + "  ".join(routes))
    for name, rows in table.items():
        cells = "  ".join(("yes" if r.reachable else "-").center(len(r.route)) for r in rows)
        print(f"{name:{width}}  {cells}")
