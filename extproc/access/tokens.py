"""Strict verification of identity-provider tokens (JWT), with verified tokens cached.

Only the IdP's allowed asymmetric algorithms are accepted, and only with a key of the matching
type, so ``none`` and the HS256-with-a-public-key confusion cannot happen. The issuer picks the
IdP before anything else is trusted. A token that verified is cached by its digest until it
expires or its IdP's key set changes (a revoked key's tokens fail on their next request), so a
client's next requests cost a hash and a dictionary lookup. A token may live at most the IdP's
``max_token_lifetime_s``: a leaked token with ``exp`` years away is not a key for years.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
import time
from collections import OrderedDict
from dataclasses import dataclass

import jwt

from extproc.access.jwks import KeySource
from extproc.access.settings import IdentityProvider

KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
MAX_TOKEN_BYTES = 65_536  # the largest max_token_bytes an IdP may set
MAX_CLAIM_CHARS = 4_096
MAX_LIST_ITEMS = 1_024
MAX_NUMERIC_DATE = 1e11  # seconds: year 5138; beyond is no date, and floats lose the second


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
    key_generation: int  # of the IdP's key set that verified it


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
            issuer = self.by_issuer[cached.claims["iss"]]
            if issuer.keys.generation == cached.key_generation:
                if cached.expires + issuer.settings.max_skew_s < now:
                    del self.cache[digest]
                    raise TokenError("token_expired")
                return cached
            del self.cache[digest]  # the keys changed since: verify again against the current ones
        verified = self._verify(token, now)
        self.cache[digest] = verified
        if len(self.cache) > self.cache_entries:
            self.cache.popitem(last=False)
        return verified

    def _verify(self, token: str, now: float) -> Verified:
        header, claims = _peek(token)
        iss = claims.get("iss")
        issuer = self.by_issuer.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise TokenError("unknown_issuer")
        settings = issuer.settings
        if len(token) > settings.max_token_bytes:
            raise TokenError("token_too_large")
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in settings.algorithms:
            raise TokenError("algorithm_not_allowed")
        generation = issuer.keys.generation  # read before the keys: a change in between re-verifies later
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
        return Verified(issuer.name, verified, float(verified["exp"]), generation)


def _peek(token: str) -> tuple[dict, dict]:
    """Header and claims before any check, only to pick the IdP and key; nothing else is trusted.
    Every field read before the signature check has the type it must have, or the token is refused."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]) or not token.isascii():  # base64url and dots, nothing else
        raise TokenError("malformed_token")
    if len(token) > MAX_TOKEN_BYTES:  # before decoding: no IdP accepts more
        raise TokenError("token_too_large")
    try:
        header, claims = (json.loads(_b64(part)) for part in parts[:2])
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise TokenError("malformed_token") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenError("malformed_token")
    check_header(header)
    if not _is_text(claims.get("iss")):
        raise TokenError("malformed_claim")
    return header, claims


def check_header(header: dict) -> None:
    """alg, kid and typ are text; crit names extensions we must understand, and we know none."""
    if "crit" in header:
        raise TokenError("unsupported_header")
    if not _is_text(header.get("alg")):
        raise TokenError("malformed_header")
    for name in ("kid", "typ", "cty"):
        if name in header and not _is_text(header[name]):
            raise TokenError("malformed_header")


def check_claims(claims: dict, settings: IdentityProvider) -> None:
    """Types of every claim the layer reads, after the signature: a signed token of the wrong shape
    is refused with a reason, never half-read."""
    for name in ("exp", "nbf", "iat"):
        if name in claims and not _is_time(claims[name]):
            raise TokenError("malformed_claim")
    aud = claims.get("aud")
    if aud is not None and not (_is_text(aud) or _is_text_list(aud)):
        raise TokenError("malformed_claim")
    for name in ("sub", settings.email_claim):
        if name in claims and not _is_text(claims[name]):
            raise TokenError("malformed_claim")
    groups = claims.get(settings.groups_claim)
    if groups is not None and not (_is_text(groups) or _is_text_list(groups)):
        raise TokenError("malformed_claim")
    if "amr" in claims and not _is_text_list(claims["amr"]):
        raise TokenError("malformed_claim")


def _is_text(value: object) -> bool:
    """A string that is valid Unicode (JSON escapes can make lone surrogates) and not absurdly long."""
    if not isinstance(value, str) or len(value) > MAX_CLAIM_CHARS:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_text_list(value: object) -> bool:
    return isinstance(value, list) and len(value) <= MAX_LIST_ITEMS and all(_is_text(item) for item in value)


def _is_time(value: object) -> bool:
    """NumericDate: a finite number of seconds (bool is an int to Python, not to JSON)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and abs(value) < MAX_NUMERIC_DATE


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
    check_claims(claims, settings)  # TokenError: a claim of the wrong type
    skew = settings.max_skew_s
    if claims["exp"] + skew < now:
        raise jwt.ExpiredSignatureError()
    if claims.get("nbf", now) - skew > now or claims.get("iat", now) - skew > now:
        raise jwt.ImmatureSignatureError()
    if claims["exp"] - claims.get("iat", now) > settings.max_token_lifetime_s:
        raise TokenError("token_lifetime_too_long")
    return claims
