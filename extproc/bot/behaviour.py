"""What a client has done so far: per-client counters in bounded memory.

A client is whatever the configured key says (source address plus TLS fingerprint by default).
State lives in an LRU with a time-to-live and a hard cap on entries, so a flood of new clients
evicts the least recently seen ones instead of growing memory; every entry is a few fixed-size
counters and small capped sets.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import NamedTuple

ASSET_EXTENSIONS = frozenset({"css", "js", "mjs", "png", "jpg", "jpeg", "gif", "webp", "avif", "svg", "ico",
                              "woff", "woff2", "ttf", "otf", "map"})
CRAWL_CONTROL = ("/robots.txt", "/sitemap")
DISTINCT_CAP = 64  # distinct paths remembered per client; beyond it the ratio is computed on the cap
BURST_GAP_S = 0.1
# Gaps longer than loading a page's requisites: the client waited (read, typed, slept) before
# its next request. People wait irregularly and often long; scripts, driven browsers included,
# wait short and alike. Their statistics are taken in log space, where think times are normal.
IDLE_GAP_S = 0.5

# Names of the values `Behaviour.features` returns, in order.
FEATURES = (
    "client_requests_log", "client_age_log", "client_rate_log", "client_gap_mean_log", "client_gap_cv",
    "client_gap_min_log", "client_burst_fraction", "client_asset_fraction", "client_page_fraction",
    "client_distinct_path_ratio", "client_cookie_fraction", "client_cookie_values_ratio",
    "client_user_agents", "client_crawl_control", "client_referer_fraction", "client_first_is_page",
    "client_page_gap_mean_log", "client_page_gap_cv", "client_page_gap_min_log",
    "client_page_gap_log_mean", "client_page_gap_log_sd", "client_page_gap_log_max",
    "client_idle_gap_log_mean", "client_idle_gap_log_sd", "client_idle_gaps_log",
)


class Observation(NamedTuple):
    """The facts of one request that behaviour is built from."""

    path: str  # without query
    is_page: bool  # a document navigation
    cookie: str
    user_agent: str
    has_referer: bool


class ClientState:
    __slots__ = ("first", "last", "count", "gap_sum", "gap_square_sum", "gap_min", "bursts", "assets", "pages",
                 "paths", "with_cookie", "cookie_values", "user_agents", "crawl_control", "referers",
                 "first_is_page", "pages_gap", "page_logs", "idle_logs", "idle", "source")

    def __init__(self, now: float, first: Observation) -> None:
        self.first = self.last = now
        self.count = 0
        self.gap_sum = self.gap_square_sum = 0.0
        self.gap_min = math.inf
        self.bursts = self.assets = self.pages = self.with_cookie = self.referers = 0
        self.paths: set[int] = set()
        self.cookie_values: set[int] = set()
        self.user_agents: set[int] = set()
        self.crawl_control = False
        self.first_is_page = first.is_page
        # Think time between pages (requisites follow a page within milliseconds for everyone):
        # last page time, sum, sum of squares and minimum of the gaps between pages.
        self.pages_gap = [math.nan, 0.0, 0.0, math.inf]
        # Sums of log1p(gap) and of its squares, and the largest: between pages, and idle gaps.
        self.page_logs = [0.0, 0.0, 0.0]
        self.idle_logs = [0.0, 0.0, 0.0]
        self.idle = 0
        # memory: this worker's own; store: the summary every worker shares (extproc/state);
        # local: this worker's own because the store failed and on_error said so.
        self.source = "memory"

    def add(self, now: float, seen: Observation) -> None:
        if self.count:
            gap = max(0.0, now - self.last)
            self.gap_sum += gap
            self.gap_square_sum += gap * gap
            self.gap_min = min(self.gap_min, gap)
            self.bursts += gap < BURST_GAP_S
            if gap > IDLE_GAP_S:
                self.idle += 1
                _add_log(self.idle_logs, gap)
        self.count += 1
        self.last = max(self.last, now)
        self.assets += seen.path.rpartition(".")[2].lower() in ASSET_EXTENSIONS
        if seen.is_page:
            self._page_at(now)
        self.with_cookie += bool(seen.cookie)
        self.referers += seen.has_referer
        self.crawl_control = self.crawl_control or seen.path.startswith(CRAWL_CONTROL)
        _capped_add(self.paths, hash(seen.path))
        if seen.cookie:
            _capped_add(self.cookie_values, hash(seen.cookie))
        _capped_add(self.user_agents, hash(seen.user_agent))

    def _page_at(self, now: float) -> None:
        gaps = self.pages_gap
        if self.pages:
            gap = max(0.0, now - gaps[0])
            gaps[1] += gap
            gaps[2] += gap * gap
            gaps[3] = min(gaps[3], gap)
            _add_log(self.page_logs, gap)
        gaps[0] = now
        self.pages += 1

    def features(self) -> tuple[float, ...]:
        n = self.count
        gaps = n - 1
        age = self.last - self.first
        gap_features = (*_gap_stats(gaps, self.gap_sum, self.gap_square_sum, self.gap_min),
                        self.bursts / gaps if gaps else -1.0)
        _, page_sum, page_squares, page_min = self.pages_gap
        page_features = _gap_stats(self.pages - 1, page_sum, page_squares, page_min)
        page_logs = _log_stats(self.pages - 1, self.page_logs)
        idle_logs = _log_stats(self.idle, self.idle_logs)[:2]
        return (
            math.log1p(n), math.log1p(age), math.log1p(n / max(age, 1.0)), *gap_features,
            self.assets / n, self.pages / n, len(self.paths) / min(n, DISTINCT_CAP), self.with_cookie / n,
            len(self.cookie_values) / max(1, self.with_cookie), float(len(self.user_agents)),
            float(self.crawl_control), self.referers / n, float(self.first_is_page), *page_features,
            *page_logs, *idle_logs, math.log1p(self.idle),
        )


def _gap_stats(count: int, total: float, squares: float, smallest: float) -> tuple[float, float, float]:
    """log mean, coefficient of variation and log minimum of count gaps; -1 each before any gap."""
    if count <= 0:
        return -1.0, -1.0, -1.0
    mean = total / count
    variance = max(0.0, squares / count - mean * mean)
    return math.log1p(mean), math.sqrt(variance) / mean if mean > 0 else 0.0, math.log1p(smallest)


def _add_log(sums: list[float], gap: float) -> None:
    logged = math.log1p(gap)
    sums[0] += logged
    sums[1] += logged * logged
    sums[2] = max(sums[2], logged)


def _log_stats(count: int, sums: list[float]) -> tuple[float, float, float]:
    """Mean, standard deviation and maximum of count log1p(gap)s; -1 each before any gap."""
    if count <= 0:
        return -1.0, -1.0, -1.0
    mean = sums[0] / count
    return mean, math.sqrt(max(0.0, sums[1] / count - mean * mean)), sums[2]


def _capped_add(values: set[int], item: int) -> None:
    if len(values) < DISTINCT_CAP:
        values.add(item)


class ClientTracker:
    """LRU of client states with a TTL and a hard cap. Not thread-safe: one per worker loop."""

    def __init__(self, max_clients: int = 50_000, ttl_s: float = 1800.0) -> None:
        self.max_clients = max_clients
        self.ttl_s = ttl_s
        self._clients: OrderedDict[str, ClientState] = OrderedDict()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._clients)

    def observe(self, key: str, now: float, seen: Observation) -> ClientState:
        """Record one request of a client; its state then describes it with this request included."""
        state = self._clients.get(key)
        if state is None or now - state.last > self.ttl_s:
            state = ClientState(now, seen)
            self._clients[key] = state
            self._evict(now)
        self._clients.move_to_end(key)
        state.add(now, seen)
        return state

    def _evict(self, now: float) -> None:
        """Drop the least recently seen clients: over the cap, or expired (cheap: they are oldest)."""
        clients = self._clients
        while clients:
            oldest = next(iter(clients.values()))
            if len(clients) <= self.max_clients and now - oldest.last <= self.ttl_s:
                return
            clients.popitem(last=False)
            self.evicted += 1
