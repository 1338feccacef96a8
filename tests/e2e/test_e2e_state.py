"""Two sidecars behind one real Envoy (round robin: requests alternate between them) sharing a real
Redis: a token budget and a request rate are counted once, a client's behaviour is one summary, a
key that leaves the JWKS stops working in both, and a stopped store is each layer's on_error."""
from __future__ import annotations

import json

import pytest

from extproc.ai_gateway.calls import endpoint, parse_call
from extproc.local.envoy import find_cluster, free_port, sidecar_clusters
from extproc.local.stack import SidecarProcess, Stack
from extproc.state.events import RESYNC_S
from extproc.state.scripts import SUMMARY_FIELDS
from extproc_lab.keys import JwksServer, claims, jwks, new_key
from tests.support.e2e_support import (
    metric_value,
    register_log,
    register_stack,
    request,
    require_envoy,
    scrape,
    unregister,
    wait_for,
    write_policy,
)
from tests.support.redis_server import RedisServer, require_redis

ISSUER = "https://idp.state.test"
MIN_REFETCH_S = 1
# A key one worker saw leave the JWKS is refused by every worker within this: the fetch that saw
# it (min_refetch_s after a token named an unknown key), then pub/sub, or at worst the next resync.
REVOCATION_BOUND_S = MIN_REFETCH_S + 2 * RESYNC_S + 1
TOKENS_PER_MINUTE_CALLS = 3.5  # the budget, in calls of one size: the 4th is refused
REQUESTS_PER_MINUTE = 5


def policy_text(redis_url: str, jwks_url: str, budget: int) -> str:
    state = f"{{backend: redis, url: '{redis_url}', timeout_ms: 50, retry_s: 0.5"
    groups = f'{{"*": {{tokens_per_minute: {budget}, requests_per_minute: {REQUESTS_PER_MINUTE}}}}}'
    ai = "sensitive_data: {action: \"off\"}, injection: {action: \"off\"}, scan_tool_arguments: false, budget_ms: 500"
    return f"""
version: 1
access:
  idps:
    corp:
      issuer: {ISSUER}
      jwks: {{url: {jwks_url}, refresh_s: 3600, min_refetch_s: {MIN_REFETCH_S}}}
      algorithms: [ES256]
  apps:
    - name: llm
      routes: [llm, llm-closed, llm-open, site]
      audience: llm
      policies: [{{name: staff, include: [{{group: [staff]}}]}}]
  state: {state}, on_error: local}}
defaults:
  layers:
    access: {{}}
routes:
  - name: llm
    match: {{path_prefix: /v1/}}
    layers:
      ai_gateway: {{groups: {groups}, {ai}, state: {state}, on_error: local}}}}
  - name: llm-closed
    match: {{path_prefix: /closed/v1/}}
    layers:
      ai_gateway: {{groups: {groups}, {ai}, state: {state}, on_error: closed}}}}
  - name: llm-open
    match: {{path_prefix: /open/v1/}}
    layers:
      ai_gateway: {{groups: {groups}, {ai}, state: {state}, on_error: open}}}}
  - name: site
    match: {{path_prefix: /site/}}
    layers:
      bot: {{action: log, client_key: [ip, "header:x-client"], state: {state}, on_error: local}}}}
"""


def chat_body(tokens: int) -> bytes:
    return json.dumps({"model": "gpt-4o-mini", "max_tokens": tokens,
                       "messages": [{"role": "user", "content": "hello"}]}).encode()


def estimate(tokens: int) -> int:
    return parse_call(endpoint("/v1/chat/completions"), json.loads(chat_body(tokens))).estimated_tokens()


def round_robin_over(sidecars: list[SidecarProcess]):
    """Envoy's sidecar clusters get every sidecar as an endpoint, taken in turn per stream."""
    def change(config: dict) -> None:
        for name in sidecar_clusters(config):
            cluster = find_cluster(config, name)
            cluster["lb_policy"] = "ROUND_ROBIN"
            (group,) = cluster["load_assignment"]["endpoints"]
            (first,) = group["lb_endpoints"]
            group["lb_endpoints"] = [first] + [
                {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": s.port}}}}
                for s in sidecars]
    return change


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    require_envoy()
    require_redis()
    workdir = tmp_path_factory.mktemp("state")
    store = RedisServer().start()
    old, new = new_key("ec", "old-key"), new_key("ec", "new-key")
    idp = JwksServer(jwks(old))
    budget = int(estimate(100) * TOKENS_PER_MINUTE_CALLS)
    policy = write_policy(workdir / "policy.yaml", policy_text(store.url, idp.url, budget))
    metrics = [free_port(), free_port()]
    second_dir = workdir / "second"
    second_dir.mkdir()
    second = SidecarProcess(policy, workdir=second_dir, extra_args=["--metrics-address", f"127.0.0.1:{metrics[1]}"])
    stack = Stack(policy, workdir=workdir, sidecar_args=["--metrics-address", f"127.0.0.1:{metrics[0]}"],
                  envoy_changes=round_robin_over([second]))
    register_stack("state stack", stack)
    register_log("second sidecar", second, second.log_text)
    register_log("redis", store, store.log_text)
    try:
        second.start()
        stack.start()
        yield {"stack": stack, "store": store, "idp": idp, "old": old, "new": new, "metrics": metrics}
    finally:
        stack.stop()
        second.stop()
        idp.close()
        store.close()
        for owner in (stack, second, store):
            unregister(owner)


def token(world, who: str, key: str = "old") -> list[tuple[str, str]]:
    signed = world[key].token(claims(ISSUER, "llm", email=f"{who}@corp.example", ttl=600))
    return [("authorization", f"Bearer {signed}")]


def chat(world, who: str, tokens: int = 100, prefix: str = "", key: str = "old"):
    return request(world["stack"].listen_port, "POST", f"{prefix}/v1/chat/completions",
                   headers=[*token(world, who, key), ("content-type", "application/json")], body=chat_body(tokens))


def decisions(world, route: str) -> list[float]:
    """Per sidecar: decisions on the route so far."""
    return [metric_value(scrape(port), "extproc_decisions_total", route=route) for port in world["metrics"]]


def test_requests_alternate_between_the_two_sidecars(world):
    before = decisions(world, "site")
    for _ in range(4):
        assert request(world["stack"].listen_port, "GET", "/site/warm", headers=token(world, "warm")).status == 200
    after = decisions(world, "site")
    assert [a - b for a, b in zip(after, before)] == [2, 2]


def test_a_token_budget_refuses_the_same_call_one_worker_would(world):
    statuses = [chat(world, "budget-user").status for _ in range(5)]
    # 3.5 calls' worth of tokens: the 4th and 5th are refused, though each sidecar saw at most 3.
    assert statuses == [200, 200, 200, 429, 429]


def test_a_request_rate_limit_refuses_the_same_request_one_worker_would(world):
    before = decisions(world, "llm")
    statuses = [chat(world, "rate-user", tokens=1).status for _ in range(REQUESTS_PER_MINUTE + 3)]
    assert statuses == [200] * REQUESTS_PER_MINUTE + [429] * 3  # each sidecar alone would allow 5
    assert [a - b for a, b in zip(decisions(world, "llm"), before)] == [4, 4]


def test_a_clients_behaviour_is_one_summary_across_the_sidecars(world):
    client = world["store"].client()
    sent = 9
    for i in range(sent):
        headers = [*token(world, "browser"), ("x-client", "behaviour-client"), ("accept", "text/html")]
        assert request(world["stack"].listen_port, "GET", f"/site/page/{i}", headers=headers).status == 200
    summaries = [key for key in client.keys("extproc:bot:client:*") if key.count(":") == 3]
    counted = {field: [summary_field(client, key, field) for key in summaries] for field in ("count", "pages")}
    # One summary counted all nine, though each sidecar saw four or five of them.
    assert (sent, sent) in zip(counted["count"], counted["pages"]), counted


def summary_field(client, key: str, field: str) -> int:
    """A number of a behaviour summary (packed by the store's script)."""
    index = SUMMARY_FIELDS.index(field) + 1
    return int(client.eval(f"return cmsgpack.unpack(redis.call('GET', KEYS[1]))[{index}]", 1, key))


def test_a_key_that_leaves_the_jwks_stops_working_in_both_sidecars(world):
    site = world["stack"].listen_port
    assert [request(site, "GET", "/site/a", headers=token(world, "kim")).status for _ in range(4)] == [200] * 4
    world["idp"].document = jwks(world["new"])  # the IdP rotated: old-key is gone
    # One token of the new key reaches one sidecar (refused: its key is not known there yet), which
    # refetches the JWKS (no sooner than min_refetch_s) and sees old-key gone. The other sidecar
    # never sees the new key: it only hears of the revocation through the store.
    assert request(site, "GET", "/site/b", headers=token(world, "kim", "new")).status == 401
    old_refused_everywhere = lambda: all(  # noqa: E731 - four in a row: two per sidecar
        request(site, "GET", "/site/c", headers=token(world, "kim")).status == 401 for _ in range(4))
    wait_for(old_refused_everywhere, REVOCATION_BOUND_S, interval=0.2, what="the old key refused by both sidecars")
    assert world["idp"].fetches <= 6  # the other sidecar did not fetch its own way there (refresh_s is an hour)
    world["idp"].document = jwks(world["old"], world["new"])  # for the tests after this one (kept revoked)


def test_a_stopped_store_is_each_layers_on_error_and_recovery_follows(world):
    store, site = world["store"], world["stack"].listen_port
    store.stop()
    try:
        # local: the sidecar's own budgets decide; open: not counted; closed: refused (503).
        assert [chat(world, "outage", key="new").status for _ in range(2)] == [200, 200]
        assert [chat(world, "outage", prefix="/open", key="new").status for _ in range(2)] == [200, 200]
        assert [chat(world, "outage", prefix="/closed", key="new").status for _ in range(2)] == [503, 503]
        # bot (local: the sidecar's own behaviour) and access (local) keep serving
        headers = [*token(world, "kim", "new"), ("x-client", "outage")]
        assert [request(site, "GET", "/site/d", headers=headers).status for _ in range(4)] == [200] * 4
        text = "".join(scrape(port) for port in world["metrics"])
        assert metric_value(text, "extproc_state_store_operations_total", layer="ai_gateway", outcome="error") >= 1
        assert metric_value(text, "extproc_state_store_operations_total", layer="ai_gateway", outcome="skipped") >= 1
    finally:
        store.start()
    wait_for(lambda: all(chat(world, f"back-{i}", prefix="/closed", key="new").status == 200 for i in range(2)),
             10, interval=0.3, what="both sidecars using the store again")
    summaries = store.client().keys("extproc:ai_gateway:budget:*")
    assert summaries  # counted in the store again
