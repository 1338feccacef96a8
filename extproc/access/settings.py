"""The central ``access`` block of the policy document: identity sources and apps.

Identity providers, service tokens and the mTLS and posture sources are defined once here; apps
reference them by name and cannot change them. An app is a set of Envoy routes with an ordered
list of policies.
"""
from __future__ import annotations

import re
from typing import Literal, get_args

from pydantic import Field, field_validator, model_validator

from extproc.access.service_tokens import parse_hash
from extproc.config.matchers import validate_cidrs
from extproc.core.strict import StrictModel
from extproc.state.settings import StateSettings

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
SigningAlgorithm = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
SIGNING_ALGORITHMS = get_args(SigningAlgorithm)


class TokenSource(StrictModel):
    """Where a token is read from: a header (with an optional scheme such as Bearer) or a cookie."""

    header: str | None = None
    scheme: str | None = None  # "Bearer": the header value must start with it
    cookie: str | None = None

    @model_validator(mode="after")
    def _one_place(self) -> "TokenSource":
        if (self.header is None) == (self.cookie is None):
            raise ValueError("give exactly one of 'header' or 'cookie'")
        return self


class Jwks(StrictModel):
    file: str | None = None
    url: str | None = None  # https, or http on loopback only (tests, a local IdP)
    refresh_s: float = Field(default=300.0, ge=5, le=86_400)  # periodic re-fetch: key rotation without restart
    min_refetch_s: float = Field(default=30.0, ge=1, le=3_600)  # unknown kid refetches at most this often
    timeout_s: float = Field(default=3.0, gt=0, le=30)

    @model_validator(mode="after")
    def _one_source(self) -> "Jwks":
        if (self.file is None) == (self.url is None):
            raise ValueError("give exactly one of 'file' or 'url'")
        if self.url is not None and not _allowed_url(self.url):
            raise ValueError(f"JWKS url {self.url!r} must be https (http only on loopback)")
        return self


def _allowed_url(url: str) -> bool:
    if url.startswith("https://"):
        return True
    host = re.sub(r"^http://", "", url).split("/")[0].rsplit(":", 1)[0].strip("[]")
    return url.startswith("http://") and host in ("127.0.0.1", "localhost", "::1")


class IdentityProvider(StrictModel):
    issuer: str = Field(min_length=1)
    jwks: Jwks
    algorithms: list[SigningAlgorithm] = ["RS256", "ES256", "EdDSA"]
    audience: str | None = None  # default for apps that name none
    token_sources: list[TokenSource] = [TokenSource(header="authorization", scheme="Bearer")]
    max_skew_s: float = Field(default=60.0, ge=0, le=300)
    max_token_bytes: int = Field(default=8192, ge=256, le=65536)
    # exp - iat (exp - now without iat) above this is refused: a token must not outlive a revocation by years
    max_token_lifetime_s: float = Field(default=86_400, ge=60, le=30 * 86_400)
    email_claim: str = "email"
    # The domains whose addresses this IdP may assert. An email claim outside them is not trusted:
    # the identity has no email. Not given: this IdP asserts no email address at all.
    email_domains: list[str] = []
    groups_claim: str = "groups"

    @field_validator("email_domains")
    @classmethod
    def _domains(cls, values: list[str]) -> list[str]:
        domains = [v.strip().lower().lstrip("@") for v in values]
        for domain in domains:
            if not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+", domain):
                raise ValueError(f"{domain!r} is not a domain name (like corp.example)")
        return domains


class ServiceToken(StrictModel):
    """A machine client: an id and the salted hash of its secret (``extproc service-token new``),
    inline or, better, in a file from a mounted Secret. The secret itself is never stored."""

    client_id: str = Field(min_length=8)
    secret_hash: str | None = None
    secret_hash_file: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_unsalted(cls, data: object) -> object:
        if isinstance(data, dict) and "secret_sha256" in data:
            raise ValueError("secret_sha256 (an unsalted hash) is no longer accepted: make a new token with "
                             "`extproc service-token new NAME` and give its secret_hash or secret_hash_file")
        return data

    @model_validator(mode="after")
    def _one_hash(self) -> "ServiceToken":
        if (self.secret_hash is None) == (self.secret_hash_file is None):
            raise ValueError("give exactly one of 'secret_hash' or 'secret_hash_file'")
        if self.secret_hash is not None:
            parse_hash(self.secret_hash)
        return self


class ServiceTokenLockout(StrictModel):
    """A source (an IPv4 address, an IPv6 /64) that fails ``max_failures`` times within ``window_s``
    gets 429 on every service-token attempt, right secret or not, for ``lockout_s``."""

    max_failures: int = Field(default=10, ge=1, le=10_000)
    window_s: float = Field(default=60.0, gt=0, le=86_400)
    lockout_s: float = Field(default=300.0, ge=0, le=86_400)  # 0: never lock out


class Mtls(StrictModel):
    # attributes: Envoy's connection.* request attributes (its own TLS listener verified the
    # certificate); xfcc: x-forwarded-client-cert set by a proxy in front that Envoy trusts.
    source: Literal["attributes", "xfcc"] = "attributes"
    # xfcc only: the element must carry Cert (Envoy: set_current_client_cert_details.cert), from
    # which the SANs are read; Envoy writes URI and DNS SANs unescaped, so without it a SAN
    # holding ';' or ',' could pose as another one.
    require_cert: bool = True


class Posture(StrictModel):
    header: str = "x-device-posture"
    trusted_sources: list[str] = Field(min_length=1)  # addresses allowed to set it (a posture-aware proxy)

    @field_validator("trusted_sources")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        return validate_cidrs(values)


class Assertion(StrictModel):
    """The signed identity the upstream receives on allow (verify it with the sidecar's JWKS)."""

    key_file: str  # PEM private key: EC P-256 (ES256) or Ed25519 (EdDSA)
    issuer: str = "extproc"
    ttl_s: int = Field(default=60, ge=5, le=3600)


class Rule(StrictModel):
    """One condition; every key given must hold (a rule with two keys is an AND)."""

    everyone: bool | None = None
    email: list[str] | None = None
    email_domain: list[str] | None = None
    group: list[str] | None = None
    claim: dict[str, str | list[str]] | None = None  # claim -> accepted value(s); lists in the token match any
    idp: list[str] | None = None
    auth_method: list[str] | None = None  # values of the token's amr claim (mfa, hwk, otp, pwd, ...)
    mtls: bool | None = None  # any verified client certificate
    mtls_san: list[str] | None = None  # URI or DNS SAN: exact, '*.dns.suffix' or 'spiffe://prefix/*'
    service_token: list[str] | None = None
    source_ip: list[str] | None = None
    device_posture: list[str] | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> "Rule":
        if not self.model_dump(exclude_none=True):
            raise ValueError("a rule needs at least one condition")
        return self

    @field_validator("source_ip")
    @classmethod
    def _cidrs(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else validate_cidrs(values)


class AppPolicy(StrictModel):
    name: str = Field(pattern=NAME)
    action: Literal["allow", "deny"] = "allow"
    include: list[Rule] = Field(min_length=1)  # any of these
    require: list[Rule] = []  # all of these
    exclude: list[Rule] = []  # none of these


class App(StrictModel):
    name: str = Field(pattern=NAME)
    routes: list[str] = Field(min_length=1)  # route names of this policy document
    audience: str | None = None  # expected `aud` of IdP tokens; default: each IdP's audience
    idps: list[str] | None = None  # accepted IdPs; may be left out only when there is one
    policies: list[AppPolicy] = Field(min_length=1)  # first matching policy decides


class AccessBlock(StrictModel):
    idps: dict[str, IdentityProvider] = {}
    service_tokens: dict[str, ServiceToken] = {}
    service_token_headers: tuple[str, str] = ("x-access-client-id", "x-access-client-secret")
    service_token_lockout: ServiceTokenLockout = ServiceTokenLockout()
    mtls: Mtls | None = None  # None: client certificates are not an identity
    posture: Posture | None = None
    assertion: Assertion | None = None
    apps: list[App] = []
    # Revocations every worker and replica hears (docs/state.md): with backend redis, a key that
    # leaves an IdP's JWKS stops working everywhere once one worker has seen it go. on_error
    # closed: while the worker cannot hear the store, the access layer refuses (error_status).
    state: StateSettings = StateSettings()
