"""The identity assertion the upstream receives on allow: a short-lived JWT the sidecar signs.

Upstreams verify it with the sidecar's public JWKS (``extproc jwks --config FILE``, or
``/.well-known/jwks.json`` on the metrics address) instead of trusting plain headers.
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from extproc.access.identity import Identity
from extproc.access.settings import Assertion
from extproc.core.request import Request
from extproc.core.text import library_value


class AssertionKeyError(ValueError):
    """The key file is missing, unreadable or of a type we do not sign with."""


class Signer:
    def __init__(self, settings: Assertion) -> None:
        self.settings = settings
        self.private_key = _load_key(settings.key_file)
        public = self.private_key.public_key()
        if isinstance(self.private_key, ec.EllipticCurvePrivateKey):
            self.algorithm = "ES256"
            jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(public))
        else:
            self.algorithm = "EdDSA"
            jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(public))
        raw = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = base64.urlsafe_b64encode(hashlib.sha256(raw).digest()[:12]).decode().rstrip("=")
        self.jwk = {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def sign(self, identity: Identity, app: str, request: Request, now: float | None = None) -> str:
        """One assertion for one request: a unique ``jti``, and the method, URL and request id it was
        minted for, so an upstream can refuse it on any other request or a second time."""
        issued = int(time.time() if now is None else now)
        claims = {
            "iss": self.settings.issuer, "aud": app, "iat": issued, "exp": issued + self.settings.ttl_s,
            "jti": secrets.token_urlsafe(16), "htm": request.method, "htu": request_url(request),
            "rid": request.request_id,
            "sub": identity.subject or identity.name, "email": identity.email, "groups": sorted(identity.groups),
            "idp": identity.idp, "methods": sorted(identity.methods), "service_token": identity.service_token,
        }
        claims = {k: v for k, v in claims.items() if v not in ("", [])}
        # An identity from a client certificate header may hold bytes that were not UTF-8.
        return jwt.encode(library_value(claims), self.private_key, algorithm=self.algorithm, headers={"kid": self.kid})

    def jwks(self) -> dict:
        return {"keys": [self.jwk]}


def request_url(request: Request) -> str:
    """What the upstream receives: scheme, authority and path (after Envoy's normalisation), no query."""
    return f"{request.scheme}://{request.authority}{request.url_path}"


def _load_key(path: str):
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as exc:
        raise AssertionKeyError(f"{path}: {exc.strerror or exc}") from None
    except (ValueError, TypeError) as exc:
        raise AssertionKeyError(f"{path}: not an unencrypted PEM private key: {exc}") from None
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise AssertionKeyError(f"{path}: the assertion key must be EC P-256 (ES256) or Ed25519 (EdDSA)")


class AssertionRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AssertionVerifier:
    """The checks an upstream makes on ``x-extproc-assertion``, for upstreams written in Python
    (docs/access.md lists them for any language): the sidecar's signature, issuer, audience and
    expiry; that it was minted for this method and URL; and that its ``jti`` was not seen before
    (kept until the assertion expires, in this process)."""

    def __init__(self, jwks: dict, issuer: str, audience: str, leeway_s: float = 5.0) -> None:
        self.keys = {key["kid"]: jwt.PyJWK(key) for key in jwks.get("keys", []) if "kid" in key}
        self.issuer, self.audience, self.leeway_s = issuer, audience, leeway_s
        self.seen: dict[str, float] = {}  # jti -> exp

    def verify(self, token: str, method: str, url: str, now: float | None = None) -> dict:
        now = time.time() if now is None else now
        try:
            key = self.keys.get(jwt.get_unverified_header(token).get("kid"))
            if key is None:
                raise AssertionRefused("unknown_key")
            claims = jwt.decode(token, key.key, algorithms=[key.algorithm_name], audience=self.audience,
                                issuer=self.issuer, leeway=self.leeway_s,
                                options={"require": ["exp", "jti", "htm", "htu"], "verify_exp": False})
        except jwt.PyJWTError as exc:
            raise AssertionRefused(f"invalid:{type(exc).__name__}") from None
        if claims["exp"] + self.leeway_s < now:
            raise AssertionRefused("expired")
        if (claims["htm"], claims["htu"]) != (method, url):
            raise AssertionRefused("other_request")
        self._forget_expired(now)
        if claims["jti"] in self.seen:
            raise AssertionRefused("replayed")
        self.seen[claims["jti"]] = claims["exp"]
        return claims

    def _forget_expired(self, now: float) -> None:
        if len(self.seen) > 1024:
            self.seen = {jti: exp for jti, exp in self.seen.items() if exp + self.leeway_s >= now}
