"""Client behaviour summaries in the store: every worker adds its requests to one summary per
client, updated atomically (scripts.OBSERVE_CLIENT, ClientState.add's arithmetic), expiring after
the client's TTL. The model reads the summary as it reads a worker's own ClientState."""
from __future__ import annotations

import math
import time
from collections.abc import Callable

from extproc.bot import behaviour
from extproc.bot.behaviour import ClientState, ClientTracker, Observation
from extproc.state.scripts import SUMMARY_FIELDS
from extproc.state.shared import LayerState, StoreUnavailable
from extproc.state.store import key_part


class SharedTracker:
    """ClientTracker's ``observe`` on the store; this worker's tracker when the store fails and
    on_error is open or local (behaviour is evidence for a score, not a count to enforce, so both
    mean: judge on what this worker saw). closed: StoreUnavailable, which the layer refuses."""

    def __init__(self, state: LayerState, local: ClientTracker, clock: Callable[[], float] = time.time) -> None:
        self.state = state
        self.local = local
        self.ttl_s = local.ttl_s
        # Wall time, not the request's monotonic clock: replicas on other hosts add to one summary.
        self.clock = clock

    def __len__(self) -> int:
        return len(self.local)

    @property
    def evicted(self) -> int:
        return self.local.evicted

    def observe(self, key: str, now: float, seen: Observation) -> ClientState:
        if self.state.store is None:
            return self.local.observe(key, now, seen)
        client = self.state.key("client", key_part(key))
        keys = (client, f"{client}:seen")
        try:
            fields = self.state.run("OBSERVE_CLIENT", keys, self._arguments(seen))
        except StoreUnavailable:
            if self.state.on_error == "closed":
                raise
            state = self.local.observe(key, now, seen)
            state.source = "local"
            return state
        return summary_state(fields)

    def _arguments(self, seen: Observation) -> list:
        ttl_ms = int(self.ttl_s * 1000)
        return [repr(self.clock()), repr(self.ttl_s), ttl_ms,
                int(seen.path.rpartition(".")[2].lower() in behaviour.ASSET_EXTENSIONS), int(seen.is_page),
                int(bool(seen.cookie)), int(seen.has_referer), int(seen.path.startswith(behaviour.CRAWL_CONTROL)),
                key_part(seen.path), key_part(seen.cookie) if seen.cookie else "", key_part(seen.user_agent),
                behaviour.DISTINCT_CAP, behaviour.BURST_GAP_S, behaviour.IDLE_GAP_S]


def summary_state(fields: list) -> ClientState:
    """The store's summary as a ClientState whose features() the model reads."""
    values = dict(zip(SUMMARY_FIELDS, (float(v) for v in fields)))
    state = ClientState.__new__(ClientState)
    state.first, state.last = values["first"], values["last"]
    state.count = int(values["count"])
    state.gap_sum, state.gap_square_sum = values["gap_sum"], values["gap_square_sum"]
    state.gap_min = _minimum(values["gap_min"])
    for name in ("bursts", "assets", "pages", "with_cookie", "referers", "idle"):
        setattr(state, name, int(values[name]))
    state.crawl_control = bool(values["crawl_control"])
    state.first_is_page = bool(values["first_is_page"])
    state.pages_gap = [values["page_last"], values["page_sum"], values["page_squares"], _minimum(values["page_min"])]
    state.page_logs = [values["page_log_sum"], values["page_log_squares"], values["page_log_max"]]
    state.idle_logs = [values["idle_log_sum"], values["idle_log_squares"], values["idle_log_max"]]
    # Only the sets' sizes are read by features(): stand-ins of the right size.
    paths, cookies, agents = (int(values[name]) for name in ("paths", "cookie_values", "user_agents"))
    state.paths, state.cookie_values, state.user_agents = set(range(paths)), set(range(cookies)), set(range(agents))
    state.source = "store"
    return state


def _minimum(value: float) -> float:
    return math.inf if value < 0 else value  # the script's -1: no gap yet
