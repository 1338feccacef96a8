"""Token buckets per key (identity and tool) in bounded memory: least recently used keys go first."""
from __future__ import annotations

import time
from collections import OrderedDict


class RateLimiter:
    def __init__(self, requests: int, per_s: float, max_keys: int = 100_000) -> None:
        self.capacity = float(requests)
        self.refill_per_s = requests / per_s
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, now: float | None = None) -> float:
        """0.0 when allowed (a token is spent), else seconds until the next token."""
        now = time.monotonic() if now is None else now
        tokens, at = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.refill_per_s)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / self.refill_per_s
        self._buckets[key] = (tokens - 1 if wait == 0.0 else tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait
