"""Policy-wide events every worker and replica must hear: a signing key that left its IdP's JWKS.

The worker that sees it (its JWKS refresh found a key gone) writes it to a hash in the store, with
an expiry, and publishes it. Every worker listens (Redis pub/sub, in a thread of its own, never
on the request path) and reads the whole hash again every ``RESYNC_S`` and on every reconnect, so
a message lost while a worker was cut off still arrives. The bound: a published event reaches a
connected worker in milliseconds (pub/sub); any worker within RESYNC_S of the store answering it.

Events only take trust away (a key is dropped, never added): a store anyone could write to can
make tokens fail, not pass.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import weakref
from typing import Callable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from extproc.core.durable import DURABLE
from extproc.observability.redact import redact_url
from extproc.state.store import OPERATIONS

log = logging.getLogger(__name__)
RESYNC_S = 2.0
Handler = Callable[[str, str, str], None]  # (idp, kid, thumbprint of the key that went)


class EventBus:
    def __init__(self, url: str, prefix: str, timeout_ms: float, tls_ca_file: str | None = None) -> None:
        self.where = redact_url(url)
        self.channel, self.revoked = f"{prefix}:events", f"{prefix}:revoked_keys"
        seconds = timeout_ms / 1000
        tls = {"ssl_ca_certs": tls_ca_file} if tls_ca_file else {}
        self.client = redis.Redis.from_url(url, socket_timeout=seconds, socket_connect_timeout=seconds,
                                           retry=Retry(NoBackoff(), 0), decode_responses=True, **tls)
        self._handlers: list[weakref.WeakMethod] = []
        self.heard_at = 0.0  # monotonic time of the last resync or message: the feed is live
        self._lock = threading.Lock()
        # The thread holds the bus weakly: once no policy uses it (a reload named another store),
        # the bus is collected and its listener ends.
        threading.Thread(target=_listen_while_used, args=(weakref.ref(self),), name="state-events",
                         daemon=True).start()

    @property
    def live(self) -> bool:
        """The worker has heard the store within the bound: it knows every revocation published."""
        return time.monotonic() - self.heard_at <= 2 * RESYNC_S + 1

    def subscribe(self, handler: Handler) -> None:
        """``handler`` is a bound method, held weakly: its object goes when no policy uses it."""
        with self._lock:
            self._handlers.append(weakref.WeakMethod(handler))

    def publish_revoked_key(self, idp: str, kid: str, thumbprint: str, keep_s: float) -> bool:
        """From a JWKS refresh thread: the key is revoked in every worker. False: the store failed."""
        event = json.dumps({"kind": "key_revoked", "idp": idp, "kid": kid, "thumbprint": thumbprint,
                            "until": time.time() + keep_s})
        try:
            with self.client.pipeline(transaction=True) as pipe:
                pipe.hset(self.revoked, f"{idp}\x1f{kid}\x1f{thumbprint}", event)
                pipe.publish(self.channel, event)
                pipe.execute()
        except (redis.RedisError, OSError) as exc:
            OPERATIONS[("access", "publish", "error")] += 1
            log.warning("revoked key %s of %s not published to %s: %s", kid, idp, self.where, exc)
            return False
        OPERATIONS[("access", "publish", "ok")] += 1
        return True

    # -- the listener thread ----------------------------------------------------------------

    def subscribed(self):
        """A pub/sub connection on the events channel, and the store read whole after it."""
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(self.channel)
            self._resync()  # after subscribing: nothing published in between is missed
        except BaseException:
            pubsub.close()
            raise
        return pubsub

    def interrupted(self, exc: BaseException, first: bool) -> None:
        OPERATIONS[("access", "events", "error")] += 1
        if first:  # once per outage, not every second of it
            log.warning("state events from %s interrupted: %s", self.where, exc)

    def heard(self, text: str | bytes) -> None:
        self._apply(text)
        self.heard_at = time.monotonic()

    def resync(self) -> None:
        self._resync()

    def _resync(self) -> None:
        now = time.time()
        for field, event in self.client.hgetall(self.revoked).items():
            if not self._apply(event, now):
                self.client.hdel(self.revoked, field)  # expired: every worker has refetched its JWKS since
        self.heard_at = time.monotonic()
        OPERATIONS[("access", "resync", "ok")] += 1

    def _apply(self, text: str | bytes, now: float | None = None) -> bool:
        """Hand a revocation to the handlers; False when it is expired or not one."""
        try:
            event = json.loads(text)
            idp, kid, thumbprint, until = event["idp"], event["kid"], event["thumbprint"], float(event["until"])
        except (ValueError, KeyError, TypeError):
            return False
        if until < (time.time() if now is None else now):
            return False
        with self._lock:
            handlers = [ref() for ref in self._handlers]
            self._handlers = [ref for ref, handler in zip(self._handlers, handlers) if handler is not None]
        for handler in handlers:
            if handler is not None:
                handler(idp, kid, thumbprint)
        return True


def _listen_while_used(ref: weakref.ReferenceType[EventBus]) -> None:
    failing = False
    while (bus := ref()) is not None:
        try:
            pubsub = bus.subscribed()
            del bus
            failing = False
            _follow(ref, pubsub)
            return  # the bus is no longer used
        except (redis.RedisError, OSError) as exc:
            bus = ref()
            if bus is not None:
                bus.interrupted(exc, first=not failing)
            failing = True
        del bus
        time.sleep(1.0)


def _follow(ref: weakref.ReferenceType[EventBus], pubsub) -> None:
    """Messages as they come, and the whole store every RESYNC_S, while the bus is used."""
    try:
        resynced = time.monotonic()
        while True:
            message = pubsub.get_message(timeout=min(0.5, RESYNC_S))
            bus = ref()
            if bus is None:
                return
            if message is not None and message.get("type") == "message":
                bus.heard(message["data"])
            if time.monotonic() - resynced >= RESYNC_S:
                bus.resync()
                resynced = time.monotonic()
            del bus
    finally:
        pubsub.close()


def event_bus(url: str, prefix: str, timeout_ms: float, tls_ca_file: str | None = None) -> EventBus:
    """One bus (one listener thread) per worker and store."""
    key = (hashlib.sha256(url.encode()).hexdigest(), prefix, tls_ca_file)
    return DURABLE.get("state_event_buses", key, lambda: EventBus(url, prefix, max(timeout_ms, 1000.0), tls_ca_file),
                       weak=True)


def thumbprint(jwk: dict) -> str:
    """The key itself, not only its kid: an IdP may reuse a kid for a new key."""
    return hashlib.sha256(json.dumps(jwk, sort_keys=True).encode()).hexdigest()[:32]
