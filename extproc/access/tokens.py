"""Strict verification of identity-provider tokens (JWT), with verified tokens cached.

Only the IdP's allowed asymmetric algorithms are accepted, and only with a key of the matching
type, so ``none`` and the HS256-with-a-public-key confusion cannot happen. The issuer picks the
IdP before anything else is trusted. A token that verified is cached by its digest until it
expires, so a client's next requests cost a hash and a dictionary lookup.
"""
from __future__ import annotations

import base64
import hashlib
import json
import time
from collections import OrderedDict
from dataclasses import dataclass

import jwt

from extproc.access.jwks import KeySource
from extproc.access.settings import IdentityProvider

KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


class TokenError(Exception):
    """Why a token was refused; the reason is machine-readable and goes to the audit record only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Verified:
    idp: str
    claims: dict
    expires: float


@dataclass(frozen=True)
class Issuer:
    name: str
    settings: IdentityProvider
    keys: KeySource


class TokenVerifier:
    def __init__(self, issuers: dict[str, Issuer], cache_entries: int = 10_000) -> None:
        self.by_issuer = {issuer.settings.issuer: issuer for issuer in issuers.values()}
        self.cache: OrderedDict[bytes, Verified] = OrderedDict()
        self.cache_entries = cache_entries

    def verify(self, token: str, now: float | None = None) -> Verified:
        """The token's IdP and claims, or TokenError. Audience is checked per app by the caller."""
        now = time.time() if now is None else now
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        cached = self.cache.get(digest)
        if cached is not None:
            if cached.expires + self.by_issuer[cached.claims["iss"]].settings.max_skew_s < now:
                del self.cache[digest]
                raise TokenError("token_expired")
            return cached
        verified = self._verify(token, now)
        self.cache[digest] = verified
        if len(self.cache) > self.cache_entries:
            self.cache.popitem(last=False)
        return verified

    def _verify(self, token: str, now: float) -> Verified:
        header, claims = _peek(token)
        issuer = self.by_issuer.get(claims.get("iss"))
        if issuer is None:
            raise TokenError("unknown_issuer")
        settings = issuer.settings
        if len(token) > settings.max_token_bytes:
            raise TokenError("token_too_large")
        algorithm = header.get("alg")
        if algorithm not in settings.algorithms:
            raise TokenError("algorithm_not_allowed")
        key = issuer.keys.key(header.get("kid"))
        if key is None:
            raise TokenError("unknown_key")
        if not _key_fits(key, algorithm):
            raise TokenError("key_algorithm_mismatch")
        try:
            verified = _decode_at(token, key, algorithm, settings, now)
        except jwt.ExpiredSignatureError:
            raise TokenError("token_expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenError("token_not_yet_valid") from None
        except jwt.InvalidSignatureError:
            raise TokenError("bad_signature") from None
        except jwt.MissingRequiredClaimError:
            raise TokenError("missing_claim") from None
        except jwt.PyJWTError:
            raise TokenError("malformed_token") from None
        return Verified(issuer.name, verified, float(verified["exp"]))


def _peek(token: str) -> tuple[dict, dict]:
    """Header and claims before any check, only to pick the IdP and key; nothing else is trusted."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]) or not token.isascii():  # base64url and dots, nothing else
        raise TokenError("malformed_token")
    try:
        header, claims = (json.loads(_b64(part)) for part in parts[:2])
    except (ValueError, UnicodeDecodeError):
        raise TokenError("malformed_token") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenError("malformed_token")
    return header, claims


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _key_fits(key: jwt.PyJWK, algorithm: str) -> bool:
    if KEY_TYPES.get(algorithm[:2]) != key.key_type:
        return False
    curve = CURVES.get(algorithm)
    return curve is None or key._jwk_data.get("crv") == curve  # noqa: SLF001 - PyJWK keeps the JWK only there


def _decode_at(token: str, key: jwt.PyJWK, algorithm: str, settings: IdentityProvider, now: float) -> dict:
    """Signature by PyJWT; time claims here, against ``now`` with the IdP's skew (PyJWT reads the
    wall clock itself, and tests need a fixed one)."""
    claims = jwt.decode(
        token, key=key.key, algorithms=[algorithm], issuer=settings.issuer,
        options={"require": ["exp", "iss"], "verify_aud": False, "verify_exp": False, "verify_nbf": False,
                 "verify_iat": False},
    )
    skew = settings.max_skew_s
    for name in ("exp", "nbf", "iat"):
        if name in claims and not isinstance(claims[name], (int, float)):
            raise jwt.MissingRequiredClaimError(name)
    if claims["exp"] + skew < now:
        raise jwt.ExpiredSignatureError()
    if claims.get("nbf", now) - skew > now or claims.get("iat", now) - skew > now:
        raise jwt.ImmatureSignatureError()
    return claims
