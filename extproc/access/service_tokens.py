"""Service tokens: salted secret hashes, and a lockout for sources that keep guessing.

A secret is 32 random bytes (``extproc service-token new``), so a fast keyed hash is the right
store: a slow password hash buys nothing against 256 bits and would cost milliseconds on every
request. The salt makes each stored hash unique, so a leaked policy cannot be matched against
precomputed tables or across tokens. Offered secrets shorter than ``MIN_SECRET_CHARS`` never match,
so no short, guessable secret can be put into service by mistake.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections import OrderedDict
from dataclasses import dataclass

from extproc.core.durable import DURABLE

SCHEME = "hmac-sha256"
MIN_SECRET_CHARS = 32
SALT_BYTES = 16


@dataclass(frozen=True)
class SecretHash:
    salt: bytes
    digest: bytes

    def matches(self, secret: str) -> bool:
        offered = _digest(self.salt, secret)
        # Compared even for a short secret: its time says nothing about the stored one.
        return hmac.compare_digest(offered, self.digest) and len(secret) >= MIN_SECRET_CHARS


def new_secret() -> str:
    return secrets.token_urlsafe(32)  # 43 characters, 256 bits


def hash_secret(secret: str) -> str:
    """The stored form: ``hmac-sha256$<salt hex>$<digest hex>``."""
    if len(secret) < MIN_SECRET_CHARS:
        raise ValueError(f"a service-token secret needs at least {MIN_SECRET_CHARS} characters "
                         "(make one with `extproc service-token new`)")
    salt = secrets.token_bytes(SALT_BYTES)
    return f"{SCHEME}${salt.hex()}${_digest(salt, secret).hex()}"


def parse_hash(text: str) -> SecretHash:
    """ValueError with what is wrong, for check-config."""
    scheme, _, rest = text.strip().partition("$")
    salt_hex, _, digest_hex = rest.partition("$")
    if scheme != SCHEME:
        raise ValueError(f"not a service-token hash (expected '{SCHEME}$<salt>$<digest>' from "
                         "`extproc service-token new`)")
    try:
        salt, digest = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
    except ValueError:
        raise ValueError("salt and digest must be hex") from None
    if len(salt) < SALT_BYTES or len(digest) != 32:
        raise ValueError(f"the salt needs {SALT_BYTES} bytes and the digest 32")
    return SecretHash(salt, digest)


def _digest(salt: bytes, secret: str) -> bytes:
    return hmac.new(salt, secret.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()


class Lockout:
    """Failed service-token attempts per source; a source with too many in a window is locked out.

    Sources are grouped as attackers get them: one IPv4 address, one IPv6 /64 (a host is handed a
    whole /64). The table is bounded; the least recently failing source is forgotten first. The
    state is the process's and outlives policy reloads.
    """

    def __init__(self, max_sources: int = 65_536) -> None:
        self.max_sources = max_sources
        self.sources: OrderedDict[str, list[float]] = OrderedDict()  # key -> [window start, failures, locked until]

    def __len__(self) -> int:
        return len(self.sources)

    def locked(self, source_ip: str, now: float) -> bool:
        entry = self.sources.get(source_key(source_ip))
        return entry is not None and entry[2] > now

    def failed(self, source_ip: str, now: float, max_failures: int, window_s: float, lockout_s: float) -> bool:
        """Count one failure; True when it locks the source out."""
        key = source_key(source_ip)
        entry = self.sources.pop(key, None)
        if entry is None or now - entry[0] > window_s:
            entry = [now, 0, entry[2] if entry else 0.0]
        entry[1] += 1
        locks = entry[1] >= max_failures
        if locks:
            entry[:] = [now, 0, now + lockout_s]
        self.sources[key] = entry
        if len(self.sources) > self.max_sources:
            self.sources.popitem(last=False)
        return locks


def source_key(source_ip: str) -> str:
    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        return source_ip  # no address: all such requests share one key
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def lockout() -> Lockout:
    """The worker's one lockout table: a reload must not hand an attacker fresh attempts."""
    return DURABLE.get("service_token_lockout", (), Lockout, size=len)
