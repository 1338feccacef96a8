"""Real keys, JWKS documents and tokens for the benchmarks and the access tests: RSA, EC P-256 and Ed25519."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from extproc.access.service_tokens import hash_secret

ALGORITHM_OF = {"rsa": "RS256", "ec": "ES256", "ed": "EdDSA"}


@dataclass
class SigningKey:
    kid: str
    kind: str  # rsa | ec | ed
    private: object

    @property
    def algorithm(self) -> str:
        return ALGORITHM_OF[self.kind]

    def jwk(self) -> dict:
        public = self.private.public_key()
        algorithm = {"rsa": jwt.algorithms.RSAAlgorithm, "ec": jwt.algorithms.ECAlgorithm,
                     "ed": jwt.algorithms.OKPAlgorithm}[self.kind]
        return {**json.loads(algorithm.to_jwk(public)), "kid": self.kid, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)

    def token(self, claims: dict, algorithm: str | None = None, headers: dict | None = None) -> str:
        return jwt.encode(claims, self.private, algorithm=algorithm or self.algorithm,
                          headers={"kid": self.kid, **(headers or {})})


def new_key(kind: str, kid: str) -> SigningKey:
    private = {"rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
               "ec": lambda: ec.generate_private_key(ec.SECP256R1()),
               "ed": ed25519.Ed25519PrivateKey.generate}[kind]()
    return SigningKey(kid, kind, private)


def jwks(*keys: SigningKey) -> dict:
    return {"keys": [key.jwk() for key in keys]}


def claims(issuer: str, audience: str, email: str = "ana@corp.example", groups=("staff",), ttl: int = 300,
           now: float | None = None, **extra) -> dict:
    now = int(time.time() if now is None else now)
    return {"iss": issuer, "aud": audience, "sub": email.split("@")[0], "email": email, "groups": list(groups),
            "iat": now, "nbf": now, "exp": now + ttl, **extra}


def secret_hash(secret: str) -> str:
    """The policy's secret_hash of a service-token secret."""
    return hash_secret(secret)


def write_pem(path, private) -> str:
    path.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(path)


class JwksServer:
    """A JWKS endpoint on loopback whose key set can be rotated; counts fetches."""

    def __init__(self, document: dict) -> None:
        self.document = document
        self.fetches = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                server.fetches += 1
                body = json.dumps(server.document).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
