"""Apps and their policies, compiled: ordered policies of include / require / exclude rules.

A policy holds when any include rule, every require rule and no exclude rule matches the
identity. The first policy that holds decides (allow or deny); when none does, access is denied.
Rules match identity attributes, never names of people in code: a new account in a permitted
group gets in with no change here.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Callable

from extproc.access.identity import Identity
from extproc.access.settings import App, AppPolicy, Rule

Check = Callable[[Identity], bool]


@dataclass(frozen=True)
class CompiledPolicy:
    name: str
    allow: bool
    include: tuple[Check, ...]
    require: tuple[Check, ...]
    exclude: tuple[Check, ...]

    def holds(self, identity: Identity) -> bool:
        return (any(rule(identity) for rule in self.include) and all(rule(identity) for rule in self.require)
                and not any(rule(identity) for rule in self.exclude))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    policy: str  # the policy that decided, "" when none held
    reason: str  # machine-readable, for the audit record


@dataclass(frozen=True)
class CompiledApp:
    name: str
    routes: frozenset[str]
    policies: tuple[CompiledPolicy, ...]

    def decide(self, identity: Identity) -> Decision:
        for policy in self.policies:
            if policy.holds(identity):
                reason = "allowed" if policy.allow else "denied_by_policy"
                return Decision(policy.allow, policy.name, reason)
        return Decision(False, "", "no_policy_matched")


def compile_app(app: App) -> CompiledApp:
    return CompiledApp(app.name, frozenset(app.routes), tuple(_compile_policy(p) for p in app.policies))


def _compile_policy(policy: AppPolicy) -> CompiledPolicy:
    return CompiledPolicy(
        policy.name, policy.action == "allow",
        tuple(compile_rule(r) for r in policy.include), tuple(compile_rule(r) for r in policy.require),
        tuple(compile_rule(r) for r in policy.exclude),
    )


def compile_rule(rule: Rule) -> Check:
    """All conditions of the rule must hold."""
    checks = [_CONDITIONS[key](value) for key, value in rule.model_dump(exclude_none=True).items()]
    return lambda identity: all(check(identity) for check in checks)


def _everyone(value: bool) -> Check:
    return lambda identity: value


def _email(values: list[str]) -> Check:
    wanted = frozenset(v.lower() for v in values)
    return lambda identity: identity.email in wanted


def _email_domain(values: list[str]) -> Check:
    wanted = frozenset(v.lower().lstrip("@") for v in values)
    return lambda identity: "@" in identity.email and identity.email.rpartition("@")[2] in wanted


def _group(values: list[str]) -> Check:
    wanted = frozenset(values)
    return lambda identity: not wanted.isdisjoint(identity.groups)


def _claim(values: dict[str, str | list[str]]) -> Check:
    wanted = {name: frozenset([v] if isinstance(v, str) else v) for name, v in values.items()}

    def check(identity: Identity) -> bool:
        for name, accepted in wanted.items():
            actual = identity.claims.get(name)
            actual = actual if isinstance(actual, list) else [actual]
            if accepted.isdisjoint(str(a) for a in actual if a is not None):
                return False
        return True

    return check


def _idp(values: list[str]) -> Check:
    wanted = frozenset(values)
    return lambda identity: identity.idp in wanted


def _auth_method(values: list[str]) -> Check:
    wanted = frozenset(values)
    return lambda identity: not wanted.isdisjoint(identity.auth_methods)


def _mtls(value: bool) -> Check:
    return lambda identity: ("mtls" in identity.methods) == value


def _mtls_san(values: list[str]) -> Check:
    """Exact SANs, '*.example.com' (DNS suffix) or 'spiffe://trust/ns/x/*' (prefix)."""
    exact = frozenset(v for v in values if "*" not in v)
    suffixes = tuple(v[1:] for v in values if v.startswith("*."))
    prefixes = tuple(v[:-1] for v in values if v.endswith("*") and not v.startswith("*"))

    def check(identity: Identity) -> bool:
        return any(san in exact or bool(suffixes and san.endswith(suffixes))
                   or bool(prefixes and san.startswith(prefixes)) for san in identity.mtls_sans)

    return check


def _service_token(values: list[str]) -> Check:
    wanted = frozenset(values)
    return lambda identity: identity.service_token in wanted


def _source_ip(values: list[str]) -> Check:
    networks = tuple(ipaddress.ip_network(v, strict=False) for v in values)

    def check(identity: Identity) -> bool:
        try:
            address = ipaddress.ip_address(identity.source_ip)
        except ValueError:
            return False
        return any(address in network for network in networks)

    return check


def _device_posture(values: list[str]) -> Check:
    wanted = frozenset(values)
    return lambda identity: identity.posture in wanted


# Rule key -> the check's builder, given that key's value as Rule validated it (hence Any: the
# value's type depends on the key, and compile_rule reads them from model_dump).
_CONDITIONS: dict[str, Callable[[Any], Check]] = {
    "everyone": _everyone, "email": _email, "email_domain": _email_domain, "group": _group, "claim": _claim,
    "idp": _idp, "auth_method": _auth_method, "mtls": _mtls, "mtls_san": _mtls_san,
    "service_token": _service_token, "source_ip": _source_ip, "device_posture": _device_posture,
}
