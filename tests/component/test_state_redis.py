"""The Redis state backend against a real redis-server: rate limits, token budgets and client
behaviour decide as one worker's memory does, counted once however many workers share the store;
a stopped store is on_error's decision, off the request path until it answers again."""
from __future__ import annotations

import random

import pytest

from extproc.ai_gateway.budget import TokenBudgets
from extproc.bot.behaviour import ClientTracker, Observation
from extproc.config.compile import ConfigError, parse_policy
from extproc.core.durable import DURABLE
from extproc.mcp.ratelimit import RateLimiter
from extproc.state.behaviour import SharedTracker
from extproc.state.limits import Bucket, SharedLimits
from extproc.state.settings import StateSettings
from extproc.state.shared import Outcome, layer_state
from extproc.state.store import OPERATIONS, RedisStore, StoreUnavailable
from tests.support.e2e_support import wait_for
from tests.support.redis_server import RedisServer, require_redis


@pytest.fixture(scope="module")
def server():
    require_redis()
    server = RedisServer(password="test-password-for-the-store").start()
    yield server
    server.close()


@pytest.fixture
def fresh(server):
    server.client().flushall()
    DURABLE.clear("state_stores")
    yield server
    DURABLE.clear("state_stores")


def workers(url: str, on_error: str = "closed", count: int = 2, layer: str = "ai_gateway") -> list[SharedLimits]:
    """``count`` layers' limits as separate workers would hold them: each its own connection."""
    settings = StateSettings(backend="redis", url=url, timeout_ms=200, on_error=on_error)
    limits = []
    for _ in range(count):
        DURABLE.clear("state_stores")  # a new store each: as in another process
        limits.append(SharedLimits(layer_state(settings, layer)))
    return limits


def test_a_rate_limit_refuses_the_same_request_across_workers_as_one_worker_alone(fresh):
    shared = workers(fresh.url)
    alone = RateLimiter(5, 60.0)
    limiter_of = [RateLimiter(5, 60.0), RateLimiter(5, 60.0)]  # each worker's own, unused while the store answers
    picks = random.Random(7).choices([0, 1], k=12)
    decisions = [shared[w].take([Bucket("route\x1fgroup\x1f5", limiter_of[w], "alice")]).wait > 0 for w in picks]
    expected = [alone.take("alice", now=0.0) > 0 for _ in picks]
    assert decisions == expected == [False] * 5 + [True] * 7
    assert len(limiter_of[0]) == len(limiter_of[1]) == 0  # counted in the store, not in the workers
    assert shared[0].take([Bucket("route\x1fgroup\x1f5", limiter_of[0], "bob")]).wait == 0  # per key


def test_a_refused_bucket_stops_the_ones_after_it_and_says_how_long_to_wait(fresh):
    (limits,) = workers(fresh.url, count=1)
    tight, loose = RateLimiter(1, 60.0), RateLimiter(100, 60.0)
    buckets = [Bucket("tight", tight, "k"), Bucket("loose", loose, "k")]
    assert limits.take(buckets).wait == 0
    refused = limits.take(buckets)
    assert 55 < refused.wait <= 60  # a token a minute: about a minute until the next
    store = fresh.client()
    (loose_key,) = [k for k in store.keys("*rate*") if float(store.hget(k, "t")) > 50]
    assert float(store.hget(loose_key, "t")) == pytest.approx(99)  # taken once: the refusal stopped before it
    assert 0 < store.pttl(loose_key) <= 61_000


def test_a_token_budget_is_reserved_once_across_workers_and_corrected_to_the_usage(fresh):
    first, second = workers(fresh.url)
    alone = TokenBudgets()
    limits = {"minute": 1000}
    sequence = [(first, 300), (second, 300), (first, 300), (second, 300), (first, 50)]
    got = [worker.reserve("carol@corp", tokens, limits).wait > 0 for worker, tokens in sequence]
    expected = [alone.reserve("carol@corp", tokens, limits, now=30.0) > 0 for _, tokens in sequence]
    assert got == expected == [False, False, False, True, False]  # 950 reserved; 300 more would pass 1000
    second.correct("carol@corp", 300, 10)  # one call used 10 of its 300: 660 counted
    assert first.reserve("carol@corp", 340, limits).wait == 0  # 1000 exactly
    refused = second.reserve("carol@corp", 1, limits)
    assert refused.refused and 1 <= refused.wait <= 60  # until the minute turns
    assert first.reserve("dave@corp", 1000, limits).wait == 0  # per identity
    assert not any("carol" in key for key in fresh.client().keys("*"))  # identities hashed, not stored in clear


def observations(seed: int, count: int) -> list[tuple[float, Observation]]:
    rng = random.Random(seed)
    now, seen = 1_700_000_000.0, []
    for i in range(count):
        now += rng.choice([0.01, 0.05, 0.3, 0.8, 4.0, 30.0])
        path = rng.choice(["/", "/a", "/b.css", "/c.js", "/robots.txt", f"/item/{i % 9}"])
        page = not path.endswith((".css", ".js"))
        cookie = rng.choice(["", "sid=1", "sid=2"])
        seen.append((now, Observation(path, page, cookie, rng.choice(["ua-1", "ua-2"]), rng.random() < 0.5)))
    return seen


def test_behaviour_summaries_in_the_store_give_the_features_one_worker_would(fresh):
    settings = StateSettings(backend="redis", url=fresh.url, timeout_ms=200)
    sequence = observations(3, 40)
    clock = iter([when for when, _ in sequence])
    trackers = []
    for _ in range(2):  # two workers, alternating
        DURABLE.clear("state_stores")
        trackers.append(SharedTracker(layer_state(settings, "bot"), ClientTracker(), clock=lambda: next(clock)))
    alone = ClientTracker()
    for index, (when, seen) in enumerate(sequence):
        shared_state = trackers[index % 2].observe("203.0.113.9\x1fja4", when, seen)
        local_state = alone.observe("203.0.113.9\x1fja4", when, seen)
        assert shared_state.source == "store"
        assert shared_state.features() == pytest.approx(local_state.features(), rel=1e-9, abs=1e-9)
    assert shared_state.count == 40 and len(trackers[0]) == len(trackers[1]) == 0
    ttl = fresh.client().pttl(next(k for k in fresh.client().keys("*client*") if k.count(":") == 3))
    assert 0 < ttl <= 1_800_000


def test_a_client_idle_past_its_ttl_starts_over_in_the_store(fresh):
    settings = StateSettings(backend="redis", url=fresh.url, timeout_ms=200)
    times = iter([100.0, 101.0, 5000.0])
    tracker = SharedTracker(layer_state(settings, "bot"), ClientTracker(ttl_s=1800.0), clock=lambda: next(times))
    seen = Observation("/", True, "", "ua", False)
    tracker.observe("c", 0, seen)
    assert tracker.observe("c", 0, seen).count == 2
    assert tracker.observe("c", 0, seen).count == 1


@pytest.mark.parametrize("on_error", ["open", "closed", "local"])
def test_a_stopped_store_is_on_errors_decision_and_the_store_is_used_again_when_it_returns(on_error):
    require_redis()
    server = RedisServer().start()
    try:
        DURABLE.clear("state_stores")
        (limits,) = workers(server.url, on_error=on_error, count=1)
        store = limits.state.store
        own = RateLimiter(1, 60.0)
        bucket = [Bucket("b", own, "eve")]
        assert limits.take(bucket).wait == 0
        server.stop()
        outcomes = [limits.take(bucket) for _ in range(3)]
        assert [o.fallback for o in outcomes] == [on_error] * 3
        refused = [o.refused for o in outcomes]
        assert refused == {"open": [False] * 3, "closed": [True] * 3, "local": [False, True, True]}[on_error]
        assert OPERATIONS[("ai_gateway", "TAKE_TOKENS", "skipped")] >= 2  # after the first failure: not asked
        budget = limits.reserve("eve", 10, {"minute": 100})
        assert budget.fallback == on_error
        server.start()  # same port, empty store
        wait_for(lambda: store.up, 10, what="the store's probe to reconnect")
        assert limits.take(bucket) == Outcome(0.0, "")  # the store's bucket, fresh: the store restarted empty
        assert limits.take(bucket).wait > 0 and len(own) == (1 if on_error == "local" else 0)
    finally:
        server.close()
        DURABLE.clear("state_stores")


def test_a_store_that_is_not_there_at_start_costs_no_request_a_connection_attempt():
    require_redis()
    port_holder = RedisServer()  # a free port nobody listens on
    store = RedisStore(f"redis://127.0.0.1:{port_holder.port}", timeout_ms=50, retry_s=30)
    assert not store.connected and not store.up
    with pytest.raises(StoreUnavailable):
        store.run("test", "TAKE_TOKENS", ["k"], [1000, 0, 1, 1])
    assert OPERATIONS[("test", "TAKE_TOKENS", "skipped")] == 1


@pytest.mark.parametrize(("state", "message"), [
    ("{backend: redis}", "backend: redis needs exactly one of 'url' or 'url_env'"),
    ("{backend: redis, url: 'http://store:6379'}", "state.url must start with redis://, rediss:// (TLS) or unix://"),
    ("{backend: memory, url: 'redis://store'}", "url and url_env are for backend: redis"),
    ("{backend: redis, url_env: EXTPROC_TEST_UNSET_URL}", "the environment variable EXTPROC_TEST_UNSET_URL is not set"),
    ("{backend: redis, url: 'redis://store', on_error: maybe}", "on_error: Input should be 'open', 'closed' or 'local'"),
    ("{backend: redis, url: 'redis://store', timeout_ms: 0}", "timeout_ms: Input should be greater than 0"),
])
def test_a_broken_state_section_is_a_config_error_that_says_what_is_wrong(state, message):
    policy = f"version: 1\ndefaults: {{layers: {{bot: {{state: {state}}}}}}}\n"
    with pytest.raises(ConfigError) as raised:
        parse_policy(policy, "p.yaml")
    assert message in str(raised.value), str(raised.value)


def test_admitting_a_call_takes_the_rate_then_reserves_the_budget_as_one_worker_would(fresh):
    shared = workers(fresh.url)
    alone = SharedLimits(layer_state(StateSettings(), "ai_gateway"))  # memory: one worker
    limits = {"minute": 250}
    got, expected = [], []
    for index, tokens in enumerate([100, 100, 100, 10, 10, 10]):
        bucket = [Bucket("r", RateLimiter(5, 60.0), "frank")]
        got.append(shared[index % 2].admit(bucket, "frank", tokens, limits))
        expected.append(alone.admit([Bucket("r", alone_limiter, "frank")], "frank", tokens, limits))
    assert [(o.refused, o.limit) for o in got] == [(o.refused, o.limit) for o in expected] == [
        (False, ""), (False, ""), (True, "budget"), (False, ""), (False, ""), (True, "rate")]


alone_limiter = RateLimiter(5, 60.0)


def test_a_store_that_lost_its_scripts_gets_them_again_without_a_failed_request(fresh):
    # Calls go straight to EVALSHA on the serving thread's connection; a restarted or flushed
    # store answers NOSCRIPT, and the call must load the script and decide, not fail open/closed.
    shared = workers(fresh.url, count=1)[0]
    alone = RateLimiter(3, 60.0)
    limiter = RateLimiter(3, 60.0)
    take = lambda: shared.take([Bucket("route\x1fgroup\x1f3", limiter, "carol")]).wait > 0  # noqa: E731
    first = [take(), take()]
    fresh.client().script_flush()
    after = [take(), take()]
    assert first + after == [alone.take("carol", now=0.0) > 0 for _ in range(4)] == [False, False, False, True]
    assert len(limiter) == 0  # every decision came from the store
