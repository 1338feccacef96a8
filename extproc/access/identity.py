"""Who a request is: every credential it carries, verified, merged into one Identity.

Several credentials may arrive at once (a client certificate and an IdP token, say); policy sees
their union. A credential that is present but does not verify is never ignored: the request is
refused with its reason, even if another credential would have been enough.
"""
from __future__ import annotations

import ipaddress
import logging
import secrets
from dataclasses import dataclass, field
from typing import Mapping, NamedTuple

from extproc.access import xfcc
from extproc.access.service_tokens import SecretHash
from extproc.access.tokens import TokenError, TokenVerifier
from extproc.core.request import Request

log = logging.getLogger(__name__)
UNKNOWN_CLIENT = SecretHash(secrets.token_bytes(16), secrets.token_bytes(32))


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


class Caller(NamedTuple):
    """Who a request is for the layers that count and grant per caller (mcp, ai_gateway)."""

    name: str  # the identity's name, or anonymous@address
    groups: frozenset[str]


def caller(identity: Identity | None, source_ip: str) -> Caller:
    """The access layer's identity, or the client's address when the route has none."""
    if identity is None or not identity.name:
        return Caller(f"anonymous@{source_ip}", identity.groups if identity else frozenset())
    return Caller(identity.name, frozenset(identity.groups))


class CredentialError(Exception):
    """401: no credential, or one that does not verify (429: a source locked out for guessing).
    ``reason`` goes to the audit record only."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class TokenRule:
    """For one app: which IdPs it accepts, where their tokens are, and the audience they must name."""

    idp: str
    sources: tuple[tuple[str, str, str], ...]  # ("header", name, scheme) or ("cookie", name, "")
    audience: str
    email_claim: str
    groups_claim: str
    email_domains: frozenset[str] = frozenset()  # whose addresses this IdP may assert


def tokens_in(request: Request, sources: tuple[tuple[str, str, str], ...]) -> list[str]:
    """Every token in these places, in order, each once."""
    found: list[str] = []
    for kind, name, scheme in sources:
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
    return list(dict.fromkeys(found))


def from_tokens(request: Request, rules: tuple[TokenRule, ...], verifier: TokenVerifier, now: float,
                sources: tuple[tuple[str, str, str], ...] = ()) -> dict | None:
    """The identity facts of the request's tokens, None when there is none. Every token found in any
    token source (this app's IdPs' and, given ``sources``, every IdP's) must verify, be of an IdP the
    app accepts and name its audience; tokens that name different people are refused."""
    by_idp = {rule.idp: rule for rule in rules}
    everywhere = tuple(dict.fromkeys((*(s for rule in rules for s in rule.sources), *sources)))
    facts = None
    for token in tokens_in(request, everywhere):
        found = _token_identity(token, by_idp, verifier, now)
        if facts is not None and (found["idp"], found["subject"]) != (facts["idp"], facts["subject"]):
            raise CredentialError("conflicting_tokens")
        facts = facts or found
    return facts


def _token_identity(token: str, by_idp: dict[str, TokenRule], verifier: TokenVerifier, now: float) -> dict:
    try:
        verified = verifier.verify(token, now)
    except TokenError as exc:
        raise CredentialError(exc.reason) from None
    except Exception as exc:  # noqa: BLE001 - a client's bytes must never fault the layer
        log.warning("token refused by an unexpected %s", type(exc).__name__)
        raise CredentialError("token_unreadable") from None
    rule = by_idp.get(verified.idp)
    if rule is None:
        raise CredentialError("idp_not_accepted")  # a valid token of an IdP this app does not trust
    audiences = verified.claims.get("aud")
    if rule.audience not in (audiences if isinstance(audiences, list) else [audiences]):
        raise CredentialError("wrong_audience")
    return _token_facts(verified.idp, verified.claims, rule)


def _token_facts(idp: str, claims: dict, rule: TokenRule) -> dict:
    groups = claims.get(rule.groups_claim) or []
    amr = claims.get("amr") or []
    email = asserted_email(claims.get(rule.email_claim), rule.email_domains)
    if not email:  # an address this IdP may not assert is no fact: no rule may read it, raw or not
        claims = {name: value for name, value in claims.items() if name != rule.email_claim}
    return {
        "idp": idp,
        "subject": str(claims.get("sub", "")),
        "email": email,
        "groups": frozenset(str(g) for g in groups) if isinstance(groups, list) else frozenset({str(groups)}),
        "claims": claims,
        "auth_methods": frozenset(str(m) for m in amr) if isinstance(amr, list) else frozenset(),
    }


def asserted_email(value: object, domains: frozenset[str]) -> str:
    """The address, lower-cased, when it is in a domain the IdP may assert; "" otherwise."""
    if not isinstance(value, str):
        return ""
    email = value.strip().lower()
    local, at, domain = email.rpartition("@")
    return email if at and local and domain in domains else ""


def from_service_token(request: Request, headers: tuple[str, str], tokens: dict[str, tuple[str, SecretHash]]) -> str:
    """The name of the service token presented; tokens: client_id -> (name, salted hash)."""
    ids, offered = request.header_map.get(headers[0], ()), request.header_map.get(headers[1], ())
    if len(ids) != 1 or len(offered) != 1:
        raise CredentialError("bad_service_token")  # half a token, or a second one that would go unchecked
    entry = tokens.get(ids[0])
    stored = entry[1] if entry else UNKNOWN_CLIENT  # an unknown id takes the time a known one does
    if not stored.matches(offered[0]) or entry is None:
        raise CredentialError("bad_service_token")
    return entry[0]


def from_mtls(request: Request, source: str | None, require_cert: bool = True) -> tuple[tuple[str, ...], str] | None:
    """(SANs, subject) of a verified client certificate, None when there is none."""
    if source == "attributes" and request.mtls:
        sans = tuple(request.peer[key] for key in ("uri_san", "dns_san") if request.peer.get(key))
        return sans, request.peer.get("subject", "")
    if source == "xfcc":
        header = ",".join(request.header_map.get("x-forwarded-client-cert", ()))  # repeated = one list
        try:
            certificate = xfcc.parse(header, require_cert)
        except xfcc.XfccError as exc:
            raise CredentialError(exc.reason) from None
        return (certificate.sans, certificate.subject) if certificate is not None else None
    return None


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
