"""State a worker keeps across policy reloads, in one registry.

A reload compiles a new policy and swaps it in; what must not start over with it (token budgets,
rate-limit windows, bot behaviour, JWKS key sources, service-token lockouts, loaded models, attack
memos) is fetched from here by kind and key, so the new policy's layers find the same objects the
old ones used. Each kind says how to measure its size, and metrics read every kind from here
(``extproc_state_entries{state}``). A kind made ``weak`` lets go of an object once no policy holds
it (a feed's background refresh stops with its last user).
"""
from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable, MutableMapping
from typing import TypeVar

T = TypeVar("T")


class DurableState:
    def __init__(self) -> None:
        self._lock = threading.RLock()  # a maker may itself fetch a durable object
        self._kinds: dict[str, MutableMapping[Hashable, object]] = {}
        self._sizes: dict[str, Callable[[object], int]] = {}

    def get(self, kind: str, key: Hashable, make: Callable[[], T], *, size: Callable[[T], int] | None = None,
            weak: bool = False) -> T:
        """The object of this kind and key, made on first use."""
        with self._lock:
            objects = self._kinds.get(kind)
            if objects is None:
                made: MutableMapping[Hashable, object] = weakref.WeakValueDictionary() if weak else {}
                objects = self._kinds[kind] = made
                if size is not None:
                    self._sizes[kind] = size  # type: ignore[assignment]
            found = objects.get(key)
            if found is None:
                found = objects[key] = make()
            return found  # type: ignore[return-value]

    def sizes(self) -> dict[str, int]:
        """Entries held, per kind that said how to count them."""
        with self._lock:
            kinds = {kind: list(self._kinds.get(kind, {}).values()) for kind in self._sizes}
        return {kind: sum(self._sizes[kind](obj) for obj in objects) for kind, objects in kinds.items()}

    def values(self, kind: str) -> list:
        with self._lock:
            return list(self._kinds.get(kind, {}).values())

    def clear(self, kind: str) -> None:
        """Forget every object of a kind (tests start from nothing)."""
        with self._lock:
            self._kinds.pop(kind, None)


DURABLE = DurableState()
