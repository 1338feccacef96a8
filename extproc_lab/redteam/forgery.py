"""Forged variants of a test identity's credential, for ``redteam reach``: each must reach no route
beyond what a request without any credential reaches.

The classes are those an attacker holding one real credential tries: a token re-signed with
``alg: none``, with the signature stripped, signed by a key of the attacker's own embedded in the
header, with fields of the wrong JSON type (``kid`` or ``iss`` an array: they once raised before
any check), with a lifetime stretched to the year 3000, and a forged token sent beside the good one
(only the first credential used to be verified). For service tokens: a wrong secret, and a wrong
secret repeated beside the right one. A service-token forgery is a failed guess the sidecar
counts towards its lockout, so each is sent once, to one route.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

YEAR_3000 = 32_503_680_000


@dataclass(frozen=True)
class Forgery:
    name: str
    headers: tuple[tuple[str, str], ...]
    guess: bool = False  # a failed service-token attempt: sent to one route only


def forgeries(token: str | None, service_token: str | None, id_header: str, secret_header: str) -> list[Forgery]:
    found = []
    if token and token.count(".") == 2:
        found += [Forgery(name, (("authorization", f"Bearer {forged}"),)) for name, forged in _token_forgeries(token)]
        found.append(Forgery("forged-beside-good", (("authorization", f"Bearer {token}"),
                                                    ("authorization", f"Bearer {_alg_none(token)}"))))
    if service_token:
        client_id, _, secret = service_token.partition(":")
        wrong = secret[:-1] + ("x" if secret[-1:] != "x" else "y")
        found += [Forgery("wrong-secret", ((id_header, client_id), (secret_header, wrong)), guess=True),
                  Forgery("second-secret", ((id_header, client_id), (secret_header, secret), (secret_header, wrong)),
                          guess=True)]
    return found


def _token_forgeries(token: str) -> list[tuple[str, str]]:
    header, claims = _part(token, 0), _part(token, 1)
    signature = token.rsplit(".", 1)[1]
    return [
        ("alg-none", _alg_none(token)),
        ("signature-stripped", token.rsplit(".", 1)[0] + "."),
        ("kid-array", _join({**header, "kid": [header.get("kid")]}, claims, signature)),
        ("iss-array", _join(header, {**claims, "iss": [claims.get("iss")]}, signature)),
        ("lifetime-year-3000", _join(header, {**claims, "exp": YEAR_3000}, signature)),
        ("attacker-key-in-header", _self_signed(header, {**claims, "exp": YEAR_3000})),
    ]


def _alg_none(token: str) -> str:
    return _join({"alg": "none", "typ": "JWT"}, _part(token, 1), "")


def _self_signed(header: dict, claims: dict) -> str:
    """Signed by a fresh key whose public half rides in the header (``jwk``), under the real kid."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": header.get("kid"), "jwk": public})


def _part(token: str, index: int) -> dict:
    try:
        value = json.loads(_unb64(token.split(".")[index]))
    except (ValueError, IndexError):
        return {}
    return value if isinstance(value, dict) else {}


def _join(header: dict, claims: dict, signature: str) -> str:
    return f"{_b64(header)}.{_b64(claims)}.{signature}"


def _b64(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode().rstrip("=")


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
