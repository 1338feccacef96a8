"""A layer's state as its policy configured it: the backend, and what the layer does when the store
fails (``on_error``). Built once per layer when the policy is compiled; immutable."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal, Sequence

from extproc.state.settings import StateSettings
from extproc.state.store import RedisStore, StoreUnavailable, redis_store

log = logging.getLogger(__name__)
Fallback = Literal["", "open", "closed", "local"]  # "": the store answered (or memory is the backend)


@dataclass(frozen=True)
class Outcome:
    """What a shared check decided: seconds to wait (0: passed), and the on_error taken, if any."""

    wait: float = 0.0
    fallback: Fallback = ""
    limit: str = ""  # which limit refused: "rate" or "budget" (admit)

    @property
    def refused(self) -> bool:
        return self.wait > 0 or self.fallback == "closed"


PASSED = Outcome()


@dataclass(frozen=True)
class LayerState:
    layer: str
    on_error: Literal["open", "closed", "local"]
    prefix: str
    store: RedisStore | None  # None: this worker's memory is the state

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, self.layer, *parts))

    def run(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        assert self.store is not None
        return self.store.run(self.layer, script, keys, args)


MEMORY_ONLY = "memory"


def layer_state(settings: StateSettings, layer: str) -> LayerState:
    """ValueError (a config error) when the store's URL cannot be had."""
    store = None
    if settings.backend == "redis":
        store = redis_store(settings.resolved_url(), settings.timeout_ms, settings.retry_s, settings.tls_ca_file)
        if not store.connected:
            log.warning("state store %s for %s unreachable at start: on_error %s applies until it answers",
                        store.where, layer, settings.on_error)
    return LayerState(layer, settings.on_error, settings.key_prefix, store)


__all__ = ["LayerState", "Outcome", "PASSED", "StoreUnavailable", "layer_state"]
