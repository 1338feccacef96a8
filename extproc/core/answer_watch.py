"""Reading an answer for the layers that only watch it, after it has passed.

The request's own stream decided it and handed over, by layer, what reading its answer needs
(``Transaction.watch_handoff``). Envoy's answer reader brings that back with what it kept of the
answer (extproc/wire/answers.py), and this resumes each layer on a stand-in request and feeds it
that. Nothing here can change or delay the answer: a layer that fails is logged, counted and
dropped.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from extproc.core.policy import LayerSlot, Policy
from extproc.core.request import Request
from extproc.layers.base import Headers, WatchesResponse

log = logging.getLogger(__name__)


class AnswerWatch:
    def __init__(self, policy: Policy, handoff: Mapping[str, Any]) -> None:
        self.request = Request("", "", request_id=str(handoff.get("request_id", ""))[:128])
        self.faults: list[str] = []  # layers that raised on this answer
        self._headers: Headers = ()
        self._slots: list[LayerSlot] = []
        route = policy.route_named(str(handoff.get("route", "")))  # None: a reload removed it
        layers = handoff.get("layers")
        if route is None or not isinstance(layers, Mapping):
            return
        for slot in route.slots:
            state = layers.get(slot.name)
            if slot.only_watches and isinstance(state, Mapping) and self._guarded(slot, self._resume(dict(state))):
                self._slots.append(slot)

    @property
    def watching(self) -> bool:
        return bool(self._slots)

    def on_headers(self, status: str, headers: Headers) -> bool:
        """Whether a layer reads this answer's body."""
        self._headers = headers
        self._slots = [slot for slot in self._slots
                       if self._guarded(slot, lambda watcher: watcher.response_wanted(self.request, status, headers))]
        return self.watching

    def on_chunk(self, chunk: bytes, end_of_stream: bool) -> None:
        def read(watcher: WatchesResponse) -> bool:
            watcher.on_response_chunk(self.request, self._headers, chunk, end_of_stream)
            return True

        self._slots = [slot for slot in self._slots if self._guarded(slot, read)]

    def _resume(self, state: dict[str, Any]) -> Callable[[WatchesResponse], bool]:
        def resume(watcher: WatchesResponse) -> bool:
            watcher.resume_watch(self.request, state)
            return True

        return resume

    def _guarded(self, slot: LayerSlot, hook: Callable[[WatchesResponse], object]) -> object:
        """What the hook returns, or False once the layer failed (it is not called again)."""
        assert slot.watcher is not None  # only slots that watch get here
        try:
            return hook(slot.watcher)
        except Exception:  # noqa: BLE001 - the answer is never touched, whatever a layer does
            log.exception("layer %s failed watching the answer", slot.name,
                          extra={"request_id": self.request.request_id})
            self.faults.append(slot.name)
            return False
