"""Rate limits and token budgets on a layer's state: the store's atomic scripts when the backend is
Redis, this worker's memory (extproc/mcp/ratelimit.py, extproc/ai_gateway/budget.py) otherwise,
and also when the store fails and on_error is ``local``."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from extproc.ai_gateway.budget import WINDOWS, TokenBudgets
from extproc.mcp.ratelimit import RateLimiter
from extproc.state.shared import PASSED, LayerState, Outcome, StoreUnavailable
from extproc.state.store import key_part


@dataclass(frozen=True)
class Bucket:
    """One rate limit a request is counted against: the limit's name (route, group, rate), the
    worker's own limiter for it and the caller's key."""

    name: str
    limiter: RateLimiter
    key: str


class SharedLimits:
    def __init__(self, state: LayerState, budgets: TokenBudgets | None = None) -> None:
        self.state = state
        self.budgets = budgets if budgets is not None else TokenBudgets()  # an empty one is falsy

    # -- rate limits ------------------------------------------------------------------------

    def take(self, buckets: list[Bucket]) -> Outcome:
        """A token from each bucket in order, stopping at the first that has none."""
        if not buckets:
            return PASSED
        if self.state.store is None:
            return _take_locally(buckets)
        keys, args = [], [_ttl_ms(max(b.limiter.capacity / b.limiter.refill_per_s for b in buckets)), time.time()]
        for bucket in buckets:
            keys.append(self.state.key("rate", key_part(bucket.name), key_part(bucket.key)))
            args += [bucket.limiter.capacity, bucket.limiter.refill_per_s]
        try:
            _index, wait = self.state.run("TAKE_TOKENS", keys, args)
        except StoreUnavailable:
            return self._fallback(lambda: _take_locally(buckets))
        return Outcome(float(wait))

    # -- both, for one call: one round trip ---------------------------------------------------

    def admit(self, buckets: list[Bucket], who: str, tokens: int, limits: dict[str, int]) -> Outcome:
        """A token from each bucket, then ``tokens`` reserved in each budget window: the rate
        first (a call refused by it reserves nothing), as two checks would, in one round trip."""
        if self.state.store is None:
            return self._admit_locally(buckets, who, tokens, limits, time.time())
        now = time.time()
        names = list(limits)
        keys = [self.state.key("rate", key_part(b.name), key_part(b.key)) for b in buckets]
        keys += [self._window_key(who, name, now) for name in names]
        longest = max((b.limiter.capacity / b.limiter.refill_per_s for b in buckets), default=0.0)
        args: list = [_ttl_ms(longest), now, len(buckets)]
        for bucket in buckets:
            args += [bucket.limiter.capacity, bucket.limiter.refill_per_s]
        args.append(tokens)
        for name in names:
            args += [limits[name], _window_ttl_ms(name, now)]
        try:
            refused, index, wait = self.state.run("ADMIT_CALL", keys, args)
        except StoreUnavailable:
            return self._fallback(lambda: self._admit_locally(buckets, who, tokens, limits, now))
        if refused == 1:
            return Outcome(float(wait), limit="rate")
        if refused == 2:
            return Outcome(_until_reset(names[int(index) - 1], now), limit="budget")
        return PASSED

    def _admit_locally(self, buckets: list[Bucket], who: str, tokens: int, limits: dict[str, int],
                       now: float) -> Outcome:
        rate = _take_locally(buckets)
        if rate.wait > 0:
            return Outcome(rate.wait, limit="rate")
        wait = self.budgets.reserve(who, tokens, limits, now)
        return Outcome(wait, limit="budget") if wait else PASSED

    # -- token budgets ----------------------------------------------------------------------

    def reserve(self, who: str, tokens: int, limits: dict[str, int]) -> Outcome:
        now = time.time()
        if self.state.store is None:
            return Outcome(self.budgets.reserve(who, tokens, limits, now))
        if not limits:
            return PASSED
        names = list(limits)
        keys = [self._window_key(who, name, now) for name in names]
        args: list = [tokens]
        for name in names:
            args += [limits[name], _window_ttl_ms(name, now)]
        try:
            full = int(self.state.run("RESERVE_TOKENS", keys, args))
        except StoreUnavailable:
            return self._fallback(lambda: Outcome(self.budgets.reserve(who, tokens, limits, now)))
        if not full:
            return PASSED
        return Outcome(_until_reset(names[full - 1], now))

    def correct(self, who: str, estimated: int, actual: int) -> Outcome:
        """The reservation made to the usage the answer reported (windows of now, as in memory)."""
        now = time.time()
        if self.state.store is None:
            self.budgets.correct(who, estimated, actual, now)
            return PASSED
        keys = [self._window_key(who, name, now) for name in WINDOWS]
        try:
            self.state.run("CORRECT_TOKENS", keys, [actual - estimated, *(_window_ttl_ms(n, now) for n in WINDOWS)])
        except StoreUnavailable:
            # The answer has gone already: nothing to refuse; local keeps this worker's count right.
            return self._fallback(lambda: self._correct_locally(who, estimated, actual, now))
        return PASSED

    def _correct_locally(self, who: str, estimated: int, actual: int, now: float) -> Outcome:
        self.budgets.correct(who, estimated, actual, now)
        return PASSED

    def _window_key(self, who: str, window: str, now: float) -> str:
        length = WINDOWS[window]
        return self.state.key("budget", key_part(who), window, str(int(now // length * length)))

    def _fallback(self, local) -> Outcome:
        on_error = self.state.on_error
        if on_error == "local":
            decided = local()
            return Outcome(decided.wait, "local", decided.limit)
        return Outcome(0.0, on_error)


def _until_reset(window: str, now: float) -> float:
    length = WINDOWS[window]
    return max(1.0, now // length * length + length - now)


def _take_locally(buckets: list[Bucket]) -> Outcome:
    for bucket in buckets:
        wait = bucket.limiter.take(bucket.key)
        if wait > 0:
            return Outcome(wait)
    return PASSED


def _ttl_ms(seconds: float) -> int:
    """A bucket untouched for its whole refill time is full, which is what a missing key means."""
    return int(math.ceil(seconds * 1000)) + 1000


def _window_ttl_ms(window: str, now: float) -> int:
    length = WINDOWS[window]
    return int((now // length * length + length - now) * 1000) + 60_000  # a minute's grace for skewed clocks
