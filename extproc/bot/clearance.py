"""Signed tokens of the bot challenge: the nonce a challenge page carries and the clearance cookie
a passed challenge earns.

Both are HMAC-SHA256 over what they are bound to: the client key (address and fingerprint, as the
bot layer keys behaviour) and the user agent. A token copied to another client, or edited, fails
its MAC; an old one fails its expiry. Keys come as a ring: the first signs, every one verifies, so
a rotated-out key keeps its tokens valid until they expire. A key is named in the token by a short
id (the start of its SHA-256), so verifying costs one HMAC, a few microseconds.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

VERSION = "1"
MIN_KEY_CHARS = 32
MAC_BYTES = 16
KEY_FILE_CHECK_S = 10.0  # how often a mounted key file is checked for a rotation


class KeyRingError(ValueError):
    """A key ring that cannot be used (too short, empty, unreadable)."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def parse_keys(keys: list[str], where: str) -> tuple[bytes, ...]:
    """Keys as bytes, each at least MIN_KEY_CHARS long: the first signs, all verify."""
    if not keys:
        raise KeyRingError(f"{where}: no key")
    short = [i for i, key in enumerate(keys) if len(key) < MIN_KEY_CHARS]
    if short:
        raise KeyRingError(f"{where}: key(s) at position {short} shorter than {MIN_KEY_CHARS} characters")
    return tuple(key.encode() for key in keys)


def read_key_file(path: Path) -> tuple[bytes, ...]:
    """One key a line (a mounted Secret): blank lines and '#' comments skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyRingError(f"key file {path}: {exc}") from None
    lines = [line.strip() for line in text.splitlines()]
    return parse_keys([line for line in lines if line and not line.startswith("#")], f"key file {path}")


class KeyRing:
    """The signing key and the keys still accepted, by id. With a file, re-read when it changes
    (checked at most every KEY_FILE_CHECK_S): a rotated Secret takes effect without a reload."""

    def __init__(self, keys: tuple[bytes, ...] = (), path: str | None = None) -> None:
        self.path = Path(path) if path else None
        self._stamp = self._mtime()
        self._checked = time.monotonic()
        self._use(read_key_file(self.path) if self.path else keys)

    def _use(self, keys: tuple[bytes, ...]) -> None:
        self.signing = (key_id(keys[0]), keys[0])
        self.by_id = {key_id(key): key for key in reversed(keys)}  # the first wins a shared id

    def _mtime(self) -> int:
        try:
            return self.path.stat().st_mtime_ns if self.path else -1
        except OSError:
            return -1

    def refresh(self, now: float) -> None:
        if self.path is None or now - self._checked < KEY_FILE_CHECK_S:
            return
        self._checked = now
        stamp = self._mtime()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self._use(read_key_file(self.path))
        except KeyRingError as exc:  # keep the keys we have; say why the new ones are ignored
            log.error("challenge keys not rotated: %s", exc)


def _mac(key: bytes, text: str) -> str:
    digest = hmac.new(key, text.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()[:MAC_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def binding(client: str, user_agent: str) -> str:
    """What a token is bound to: the client key and the user agent."""
    return f"{client}\x1e{user_agent}"


@dataclass(frozen=True, slots=True)
class Nonce:
    token: str  # what the page carries
    ident: str  # the random part: the replay memory's key
    difficulty: int
    expires: int


class Signer:
    """Mints and verifies nonces and clearances with one key ring."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    def nonce(self, bound_to: str, difficulty: int, ttl_s: float, now: float | None = None) -> Nonce:
        now = time.time() if now is None else now
        self.ring.refresh(time.monotonic())
        kid, key = self.ring.signing
        expires, ident = int(now + ttl_s), secrets.token_urlsafe(12)
        body = f"{VERSION}.{kid}.{expires}.{difficulty}.{ident}"
        return Nonce(f"{body}.{_mac(key, 'n|' + body + '|' + bound_to)}", ident, difficulty, expires)

    def open_nonce(self, token: str, bound_to: str, now: float | None = None) -> Nonce | None:
        """The nonce if ``token`` is one this ring signed for ``bound_to`` and still fresh; else None."""
        parts = token.split(".")
        if len(parts) != 6 or parts[0] != VERSION:
            return None
        _, kid, expires, difficulty, ident, mac = parts
        key = self.ring.by_id.get(kid)
        if key is None or not (expires.isdigit() and difficulty.isdigit()):
            return None
        body = token.rpartition(".")[0]
        if not hmac.compare_digest(mac, _mac(key, "n|" + body + "|" + bound_to)):
            return None
        if int(expires) < (time.time() if now is None else now):
            return None
        return Nonce(token, ident, int(difficulty), int(expires))

    def clearance(self, bound_to: str, ttl_s: float, now: float | None = None) -> str:
        now = time.time() if now is None else now
        self.ring.refresh(time.monotonic())
        kid, key = self.ring.signing
        body = f"{VERSION}.{kid}.{int(now + ttl_s)}"
        return f"{body}.{_mac(key, 'c|' + body + '|' + bound_to)}"

    def cleared(self, value: str, bound_to: str, now: float) -> bool:
        """Whether ``value`` is a clearance this ring signed for ``bound_to``, not yet expired."""
        parts = value.split(".")
        if len(parts) != 4 or parts[0] != VERSION:
            return False
        _, kid, expires, mac = parts
        key = self.ring.by_id.get(kid)
        if key is None or not expires.isdigit() or int(expires) < now:
            return False
        return hmac.compare_digest(mac, _mac(key, f"c|{VERSION}.{kid}.{expires}|{bound_to}"))


class UsedNonces:
    """Nonces already answered, until they expire: a solved challenge is good for one clearance
    (per worker: with several workers, at most one per worker within the nonce's lifetime).
    Bounded: past ``cap`` the oldest are forgotten; each nonce is bound to its client anyway."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._seen: OrderedDict[str, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def first_use(self, nonce: Nonce, now: float) -> bool:
        seen = self._seen
        while seen and (len(seen) >= self.cap or next(iter(seen.values())) < now):
            seen.popitem(last=False)
        if nonce.ident in seen:
            return False
        seen[nonce.ident] = nonce.expires
        return True


def leading_zero_bits(digest: bytes) -> int:
    bits = 0
    for byte in digest:
        if byte:
            return bits + 8 - byte.bit_length()
        bits += 8
    return bits


def proof_holds(token: str, counter: object, difficulty: int) -> bool:
    """SHA-256 of 'token:counter' starts with ``difficulty`` zero bits."""
    if difficulty == 0:
        return True
    if not isinstance(counter, int) or isinstance(counter, bool) or not 0 <= counter < 2**53:
        return False
    return leading_zero_bits(hashlib.sha256(f"{token}:{counter}".encode()).digest()) >= difficulty


def random_key() -> str:
    """A fresh key of the right length (for `extproc`'s docs and tests)."""
    return base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
