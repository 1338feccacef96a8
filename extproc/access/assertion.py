"""The identity assertion the upstream receives on allow: a short-lived JWT the sidecar signs.

Upstreams verify it with the sidecar's public JWKS (``extproc jwks --config FILE``, or
``/.well-known/jwks.json`` on the metrics address) instead of trusting plain headers.
"""
from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from extproc.access.identity import Identity
from extproc.access.settings import Assertion
from extproc.text import library_value


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

    def sign(self, identity: Identity, app: str, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        claims = {
            "iss": self.settings.issuer, "aud": app, "iat": issued, "exp": issued + self.settings.ttl_s,
            "sub": identity.subject or identity.name, "email": identity.email, "groups": sorted(identity.groups),
            "idp": identity.idp, "methods": sorted(identity.methods), "service_token": identity.service_token,
        }
        claims = {k: v for k, v in claims.items() if v not in ("", [])}
        # An identity from a client certificate header may hold bytes that were not UTF-8.
        return jwt.encode(library_value(claims), self.private_key, algorithm=self.algorithm, headers={"kid": self.kid})

    def jwks(self) -> dict:
        return {"keys": [self.jwk]}


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
