"""Signing keys of an identity provider, from a JWKS file or URL, cached and kept current.

Keys are fetched when the policy is compiled, re-fetched every ``refresh_s`` in a background
thread (key rotation without restart), a JWKS file also within a second of it changing (a key
removed from the file is revoked at once), and a URL re-fetched early when a token names a key we
do not have, at most once per ``min_refetch_s`` (so a flood of made-up key ids cannot turn the sidecar
into a load generator against the IdP). Fetching never happens on the request path: a token
whose key is still unknown is rejected, and the next one after the refresh passes.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import weakref
import urllib.request
from pathlib import Path

import jwt

from extproc.access.settings import Jwks
from extproc.core.durable import DURABLE
from extproc.state.events import EventBus, thumbprint

log = logging.getLogger(__name__)
MAX_JWKS_BYTES = 1 << 20
MIN_RSA_BITS = 2048
FILE_POLL_S = 1.0  # a JWKS file is a stat() a second: a key taken out of it stops working this soon


class KeySource:
    def __init__(self, name: str, settings: Jwks) -> None:
        self.name = name
        self.settings = settings
        self.keys: dict[str | None, jwt.PyJWK] = {}  # replaced whole, never mutated: readers need no lock
        self.generation = 0  # bumped when the key set changes: verified tokens cached before are re-checked
        self._fingerprint = ""
        self._file_stamp: tuple = ()
        self.last_error = ""
        self._last_fetch = 0.0
        self._kick = threading.Event()
        self._lock = threading.Lock()
        # Keys revoked by another worker (extproc/state/events.py): (kid, thumbprint) -> until
        # (monotonic), kept out of this worker's fetches until its own JWKS has caught up.
        self._revoked: dict[tuple[str | None, str], float] = {}
        self.bus: EventBus | None = None
        self.refresh()
        # The thread holds the source weakly: once no policy names it (a reload changed the IdP's
        # settings), the source is collected and its thread ends instead of fetching forever.
        threading.Thread(target=_refresh_while_used, args=(weakref.ref(self),), name=f"jwks-{name}",
                         daemon=True).start()

    def key(self, kid: str | None) -> jwt.PyJWK | None:
        keys = self.keys
        if kid is None and len(keys) == 1:
            return next(iter(keys.values()))
        found = keys.get(kid)
        if found is None and not self.settings.file:  # a file is watched already
            self._kick.set()  # maybe rotated: refetch soon (rate-limited in the thread)
        return found

    def refresh(self) -> bool:
        with self._lock:
            self._last_fetch = time.monotonic()
            try:
                document = json.loads(self._read())
                keys = parse_jwks(document)
            except (OSError, ValueError) as exc:
                self.last_error = str(exc)
                log.error("JWKS of %s not refreshed: %s", self.name, exc)
                return False
            keys = self._without_revoked(keys)
            gone = _gone(self.keys, keys)
            fingerprint = json.dumps({str(kid): key._jwk_data for kid, key in keys.items()}, sort_keys=True)  # noqa: SLF001
            self.keys, self.last_error = keys, ""
            if fingerprint != self._fingerprint:
                self._fingerprint = fingerprint
                self.generation += 1  # after the keys: a reader that sees the new generation sees the new keys
        if self.bus is not None:
            for kid, print_ in gone:  # every other worker drops them now, not at its own next fetch
                self.bus.publish_revoked_key(self.name, str(kid), print_, self._keep_s)
        return True

    # -- revocation shared with every worker (extproc/state/events.py) -------------------------

    def share_revocations(self, bus: EventBus) -> None:
        if self.bus is None:
            self.bus = bus
            bus.subscribe(self.revoke)

    @property
    def _keep_s(self) -> float:
        """How long a revocation is kept: until every worker has fetched the JWKS itself."""
        return self.settings.refresh_s + 60

    def revoke(self, idp: str, kid: str, print_: str) -> None:
        """Another worker saw this key leave the JWKS: drop it here too (tokens it signed fail on
        their next request: the generation changes), and fetch the keys that replace it."""
        if idp != self.name:
            return
        with self._lock:
            self._revoked[(kid, print_)] = time.monotonic() + self._keep_s
            kept = self._without_revoked(self.keys)
            if len(kept) == len(self.keys):
                return
            self.keys = kept
            self.generation += 1
        log.warning("JWKS key %s of %s revoked by another worker", kid, self.name)
        self._kick.set()

    def _without_revoked(self, keys: dict[str | None, jwt.PyJWK]) -> dict[str | None, jwt.PyJWK]:
        now = time.monotonic()
        self._revoked = {entry: until for entry, until in self._revoked.items() if until > now}
        if not self._revoked:
            return keys
        return {kid: key for kid, key in keys.items()
                if (str(kid), thumbprint(key._jwk_data)) not in self._revoked}  # noqa: SLF001

    def _read(self) -> bytes:
        file, url = self.settings.file, self.settings.url
        if file:
            self._file_stamp = self._stamp()
            return Path(file).read_bytes()[:MAX_JWKS_BYTES]
        assert url is not None  # the schema wants a file or a URL
        request = urllib.request.Request(url, headers={"accept": "application/json"})
        with urllib.request.urlopen(request, timeout=self.settings.timeout_s) as response:  # noqa: S310 - https or loopback only
            return response.read(MAX_JWKS_BYTES)

    def _stamp(self) -> tuple:
        if not self.settings.file:
            return ()
        try:
            stat = Path(self.settings.file).stat()
        except OSError:
            return ()
        return stat.st_mtime_ns, stat.st_size, stat.st_ino

    @property
    def poll_s(self) -> float:
        return FILE_POLL_S if self.settings.file else self.settings.refresh_s

    def step(self, kicked: bool) -> None:
        """One round of the refresher: a file when it changed (or is due), a URL when due or kicked."""
        if self.settings.file:  # never kicked: made-up kids cannot delay the watch
            if self._file_due():
                self.refresh()
            return
        if kicked:
            wait = self.settings.min_refetch_s - (time.monotonic() - self._last_fetch)
            if wait > 0:
                time.sleep(wait)
        self._kick.clear()
        self.refresh()

    def _file_due(self) -> bool:
        return (time.monotonic() - self._last_fetch >= self.settings.refresh_s
                or self._stamp() != self._file_stamp)


def _gone(before: dict[str | None, jwt.PyJWK], after: dict[str | None, jwt.PyJWK]) -> list[tuple[str | None, str]]:
    """(kid, thumbprint) of each key of ``before`` that ``after`` no longer has."""
    now = {(kid, thumbprint(key._jwk_data)) for kid, key in after.items()}  # noqa: SLF001
    return [(kid, p) for kid, key in before.items() if (kid, p := thumbprint(key._jwk_data)) not in now]  # noqa: SLF001


def _refresh_while_used(ref: weakref.ReferenceType[KeySource]) -> None:
    while True:
        source = ref()
        if source is None:
            return
        poll, kick = source.poll_s, source._kick  # noqa: SLF001 - the source's own thread
        del source  # not held while waiting: a source no policy uses can go
        kicked = kick.wait(poll)
        source = ref()
        if source is None:
            return
        source.step(kicked)
        del source


def parse_jwks(document: object) -> dict[str | None, jwt.PyJWK]:
    """Usable public keys by kid; private parts and symmetric keys are refused."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document (no 'keys' list)")
    keys: dict[str | None, jwt.PyJWK] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid", ""), str):
            continue  # a kid that is not text could never be named by a token's (text) kid
        if entry.get("kty") == "oct" or "d" in entry:
            continue  # symmetric or private key material has no place in a JWKS
        if entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(entry)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as exc:
            log.warning("JWKS key %r skipped: %s", entry.get("kid"), exc)
            continue
        if too_weak(key):
            log.warning("JWKS key %r refused: RSA keys need at least %d bits", entry.get("kid"), MIN_RSA_BITS)
            continue
        keys[entry.get("kid")] = key
    return keys


def too_weak(key: jwt.PyJWK) -> bool:
    """RSA under 2048 bits (NIST SP 800-131A); tokens naming such a key get unknown_key."""
    return key.key_type == "RSA" and key.key.key_size < MIN_RSA_BITS


def key_source(name: str, settings: Jwks) -> KeySource:
    """One source per IdP and JWKS settings, shared by every policy that names them: a reload
    keeps the keys (and its thread) instead of fetching again."""
    return DURABLE.get("jwks_sources", (name, settings.model_dump_json()), lambda: KeySource(name, settings),
                       weak=True)
