"""Token budgets per identity over fixed windows (a minute, a day), in bounded memory.

A call reserves its estimate before it goes upstream; when the response's ``usage`` arrives the
reservation is corrected to the real count. Windows are aligned to the clock, so ``Retry-After``
is the time until the window that ran out starts again.
"""
from __future__ import annotations

import time
from collections import OrderedDict

WINDOWS = {"minute": 60, "day": 86_400}


class TokenBudgets:
    def __init__(self, max_identities: int = 100_000) -> None:
        self.max_identities = max_identities
        self._used: OrderedDict[str, dict[str, tuple[int, int]]] = OrderedDict()  # who -> window -> (start, used)

    def __len__(self) -> int:
        return len(self._used)

    def reserve(self, who: str, tokens: int, limits: dict[str, int], now: float | None = None) -> float:
        """0.0 and the tokens are counted, or seconds until a window that cannot take them resets."""
        now = time.time() if now is None else now
        windows = self._windows(who, now)
        for name, limit in limits.items():
            start, used = windows[name]
            if used + tokens > limit:
                return max(1.0, start + WINDOWS[name] - now)
        for name in limits:
            start, used = windows[name]
            windows[name] = (start, used + tokens)
        return 0.0

    def correct(self, who: str, estimated: int, actual: int, now: float | None = None) -> None:
        windows = self._windows(who, time.time() if now is None else now)
        for name, (start, used) in windows.items():
            windows[name] = (start, max(0, used - estimated + actual))

    def used(self, who: str, window: str) -> int:
        return self._used.get(who, {}).get(window, (0, 0))[1]

    def _windows(self, who: str, now: float) -> dict[str, tuple[int, int]]:
        windows = self._used.pop(who, {})
        for name, length in WINDOWS.items():
            start = int(now // length * length)
            if windows.get(name, (None,))[0] != start:
                windows[name] = (start, 0)
        self._used[who] = windows
        if len(self._used) > self.max_identities:
            self._used.popitem(last=False)
        return windows
