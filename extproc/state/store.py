"""One connection to the Redis store per worker and URL, with a deadline on every round trip and
a breaker: after a failure the request path does not touch the store again until a background
probe has reached it, so a store that is down costs each worker one timeout per ``retry_s``,
never one per request, and never a hang.

Layers run synchronously on the thread that serves the stream (grpc.aio's event loop, or the
native front's thread; extproc/wire/session.py), so the round trip is a blocking call bounded by
``timeout_ms``: connect and read each get half of it.
One script per decision (EVALSHA) is one round trip; on loopback that is about 0.1 ms, less than
an asyncio hand-off to a thread and back would cost (docs/state.md has the figures).
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
import weakref
from collections import Counter
from collections.abc import Sequence
from typing import Any

import hiredis  # the client's C parser (a dependency); its packer too, here
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from extproc.core.durable import DURABLE
from extproc.observability.redact import redact_url
from extproc.state import scripts

log = logging.getLogger(__name__)

# (layer, operation, outcome) -> count, read by the metrics at scrape time. Outcomes: ok; error
# (the store failed or timed out on this call); skipped (the breaker was open: not asked).
OPERATIONS: Counter[tuple[str, str, str]] = Counter()


class StoreUnavailable(Exception):
    """The store did not answer in time, or is known to be down; the caller's on_error decides."""


class RedisStore:
    def __init__(self, url: str, timeout_ms: float, retry_s: float, tls_ca_file: str | None = None) -> None:
        self.where = redact_url(url)
        self.retry_s = retry_s
        half = timeout_ms / 2000
        # No retries in the client: a retry would double the wait the policy bounded.
        tls = {"ssl_ca_certs": tls_ca_file} if tls_ca_file else {}
        self.client = redis.Redis.from_url(url, socket_timeout=half, socket_connect_timeout=half,
                                           retry=Retry(NoBackoff(), 0), health_check_interval=0, **tls)
        self.scripts = {name: self.client.register_script(getattr(scripts, name))
                        for name in ("TAKE_TOKENS", "RESERVE_TOKENS", "ADMIT_CALL", "CORRECT_TOKENS",
                                     "OBSERVE_CLIENT")}
        self._serving = threading.local()  # each serving thread's own connection (see _evalsha)
        self._down_until = 0.0
        self._probe: threading.Thread | None = None
        self._lock = threading.Lock()
        self.connected = self._try_ping()  # at compile time, off the request path

    @property
    def up(self) -> bool:
        return time.monotonic() >= self._down_until

    def run(self, layer: str, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """The script's result; StoreUnavailable when the store is down or too slow."""
        if not self.up:
            OPERATIONS[(layer, script, "skipped")] += 1
            raise StoreUnavailable(f"{self.where} unavailable (waiting to retry)")
        try:
            result = self._evalsha(self.scripts[script], keys, args)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            self.failed(exc)
            OPERATIONS[(layer, script, "error")] += 1
            raise StoreUnavailable(f"{self.where}: {exc}") from None
        except redis.ResponseError as exc:  # the store answered, refusing (OOM, READONLY, a key of another shape)
            OPERATIONS[(layer, script, "error")] += 1
            raise StoreUnavailable(f"{self.where}: {exc}") from None
        OPERATIONS[(layer, script, "ok")] += 1
        return result

    def _evalsha(self, script: Any, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """The script on this thread's own connection, packed by hiredis (C) and read directly: the
        client's command path (pool, retry wrapper, script object, its Python encoder) cost about
        55 us of the 160 us one call took on loopback here, more than the script itself."""
        connection = getattr(self._serving, "connection", None)
        if connection is None:
            connection = self._serving.connection = self.client.connection_pool.make_connection()
        try:
            try:
                connection.send_packed_command([hiredis.pack_command(("EVALSHA", script.sha, len(keys), *keys, *args))])
                return connection.read_response()
            except redis.exceptions.NoScriptError:  # a restarted or flushed store: EVAL caches it again
                connection.send_packed_command([hiredis.pack_command(("EVAL", script.script, len(keys), *keys, *args))])
                return connection.read_response()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            connection.disconnect()  # a reply may still be on its way: never read it as the next one's
            raise

    def failed(self, exc: BaseException) -> None:
        """Stop asking the store; a background probe lets the requests back in once it answers."""
        with self._lock:
            if self.up:
                log.warning("state store %s failed: %s; retrying in %.1fs", self.where, exc, self.retry_s)
            self._down_until = float("inf")
            if self._probe is None or not self._probe.is_alive():
                # Held weakly: a store no policy uses any more is not probed for ever.
                self._probe = threading.Thread(target=_reconnect, args=(weakref.ref(self), self.retry_s),
                                               name="state-store-probe", daemon=True)
                self._probe.start()

    def reconnected(self) -> bool:
        if not self._try_ping():
            return False
        log.info("state store %s reachable again", self.where)
        self._down_until = 0.0
        return True

    def _try_ping(self) -> bool:
        try:
            self.client.ping()
            return True
        except (redis.RedisError, OSError) as exc:
            if self._down_until == 0.0:
                self.failed(exc)
            return False


def _reconnect(ref: weakref.ReferenceType[RedisStore], retry_s: float) -> None:
    while True:
        time.sleep(retry_s)
        store = ref()
        if store is None or store.reconnected():
            return
        del store


def redis_store(url: str, timeout_ms: float, retry_s: float, tls_ca_file: str | None = None) -> RedisStore:
    """One store per worker, URL and timeouts, kept across policy reloads (its connection too)."""
    key = (hashlib.sha256(url.encode()).hexdigest(), timeout_ms, retry_s, tls_ca_file)  # the URL may hold a password
    return DURABLE.get("state_stores", key, lambda: RedisStore(url, timeout_ms, retry_s, tls_ca_file), weak=True)


def key_part(text: str) -> str:
    """A bounded, stable name for an identity or client key in the store: nobody's email address
    or IP sits in Redis, and Python's per-process hash() would differ between workers."""
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=12).hexdigest()
