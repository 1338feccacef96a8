"""Who a request is: every credential it carries, verified, merged into one Identity.

Several credentials may arrive at once (a client certificate and an IdP token, say); policy sees
their union. A credential that is present but does not verify is never ignored: the request is
refused with its reason, even if another credential would have been enough.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass, field
from typing import Mapping

from extproc.access.tokens import TokenError, TokenVerifier
from extproc.request import Request


@dataclass(frozen=True)
class Identity:
    methods: frozenset[str] = frozenset()  # "jwt", "service_token", "mtls"
    idp: str = ""
    subject: str = ""
    email: str = ""
    groups: frozenset[str] = frozenset()
    claims: Mapping[str, object] = field(default_factory=dict)
    auth_methods: frozenset[str] = frozenset()  # the token's amr claim
    mtls_sans: tuple[str, ...] = ()
    mtls_subject: str = ""
    service_token: str = ""
    source_ip: str = ""
    posture: str = ""

    @property
    def name(self) -> str:
        """What an audit record calls it."""
        return self.email or self.subject or self.service_token or (self.mtls_sans[0] if self.mtls_sans else "")


class CredentialError(Exception):
    """401: no credential, or one that does not verify. ``reason`` goes to the audit record only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TokenRule:
    """For one app: which IdPs it accepts, where their tokens are, and the audience they must name."""

    idp: str
    sources: tuple[tuple[str, str, str], ...]  # ("header", name, scheme) or ("cookie", name, "")
    audience: str
    email_claim: str
    groups_claim: str


def tokens_in(request: Request, rule: TokenRule) -> list[str]:
    found = []
    for kind, name, scheme in rule.sources:
        if kind == "cookie":
            found.extend(value for cookie, value in request.cookies if cookie == name and value)
            continue
        for value in request.header_map.get(name, ()):
            if scheme:
                given, _, value = value.partition(" ")
                if given.lower() != scheme.lower():
                    continue
            if value.strip():
                found.append(value.strip())
    return found


def from_tokens(request: Request, rules: tuple[TokenRule, ...], verifier: TokenVerifier, now: float) -> dict | None:
    """The identity facts of the first token, None when there is no token at all."""
    by_idp = {rule.idp: rule for rule in rules}
    for token in dict.fromkeys(token for rule in rules for token in tokens_in(request, rule)):
        try:
            verified = verifier.verify(token, now)
        except TokenError as exc:
            raise CredentialError(exc.reason) from None
        rule = by_idp.get(verified.idp)
        if rule is None:
            raise CredentialError("idp_not_accepted")  # a valid token of an IdP this app does not trust
        audiences = verified.claims.get("aud")
        if rule.audience not in (audiences if isinstance(audiences, list) else [audiences]):
            raise CredentialError("wrong_audience")
        return _token_facts(verified.idp, verified.claims, rule)
    return None


def _token_facts(idp: str, claims: dict, rule: TokenRule) -> dict:
    groups = claims.get(rule.groups_claim) or []
    amr = claims.get("amr") or []
    return {
        "idp": idp,
        "subject": str(claims.get("sub", "")),
        "email": str(claims.get(rule.email_claim, "")).lower(),
        "groups": frozenset(str(g) for g in groups) if isinstance(groups, list) else frozenset({str(groups)}),
        "claims": claims,
        "auth_methods": frozenset(str(m) for m in amr) if isinstance(amr, list) else frozenset(),
    }


def from_service_token(request: Request, headers: tuple[str, str], tokens: dict[str, tuple[str, bytes]]) -> str | None:
    """The service token's name, None when none is presented; tokens: client_id -> (name, sha256)."""
    client_id, secret = request.header(headers[0]), request.header(headers[1])
    if not client_id and not secret:
        return None
    entry = tokens.get(client_id)
    offered = hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest()
    if entry is None or not secret or not hmac.compare_digest(offered, entry[1]):
        raise CredentialError("bad_service_token")
    return entry[0]


def from_mtls(request: Request, source: str | None) -> tuple[tuple[str, ...], str] | None:
    """(SANs, subject) of a verified client certificate, None when there is none."""
    if source == "attributes" and request.mtls:
        sans = tuple(request.peer[key] for key in ("uri_san", "dns_san") if request.peer.get(key))
        return sans, request.peer.get("subject", "")
    if source == "xfcc":
        return parse_xfcc(request.header("x-forwarded-client-cert"))
    return None


def parse_xfcc(header: str) -> tuple[tuple[str, ...], str] | None:
    """The client element (the last, added by the proxy next to the client) of an XFCC header."""
    if not header:
        return None
    element = _split_quoted(header, ",")[-1]
    sans, subject = [], ""
    for pair in _split_quoted(element, ";"):
        key, _, value = pair.partition("=")
        value = value.strip('"')
        if key.lower() in ("uri", "dns"):
            sans.append(value)
        elif key.lower() == "subject":
            subject = value
    return (tuple(sans), subject) if sans or subject else None


def _split_quoted(text: str, separator: str) -> list[str]:
    parts, current, quoted = [], [], False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def posture_of(request: Request, header: str, trusted: tuple[ipaddress._BaseNetwork, ...]) -> str:
    """The device-posture header, only from a trusted source (a posture-aware proxy)."""
    value = request.header(header)
    if not value or not request.source_ip:
        return ""
    try:
        address = ipaddress.ip_address(request.source_ip)
    except ValueError:
        return ""
    return value if any(address in network for network in trusted) else ""
