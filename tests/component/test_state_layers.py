"""Each layer with its state on a store that is not there: on_error closed refuses in the layer's
own way, open and local let requests on, saying so in the verdict; and a key revoked by one worker
is dropped by another that only hears it through a real Redis."""
from __future__ import annotations

import json

import orjson
import pytest

from extproc.access.identity import Identity
from extproc.access.jwks import KeySource
from extproc.access.settings import Jwks
from extproc.config.compile import parse_policy
from extproc.core.durable import DURABLE
from extproc.core.request import Request
from extproc.core.transaction import Transaction
from extproc.local.envoy import free_port
from extproc.state.events import event_bus
from extproc_lab.keys import JwksServer, jwks, new_key
from tests.support.e2e_support import wait_for
from tests.support.redis_server import RedisServer, require_redis


@pytest.fixture
def nowhere():
    """A store URL nobody answers on (a free loopback port)."""
    DURABLE.clear("state_stores")
    yield f"redis://127.0.0.1:{free_port()}/0"
    DURABLE.clear("state_stores")


def state(url: str, on_error: str) -> str:
    return f"{{backend: redis, url: '{url}', timeout_ms: 20, on_error: {on_error}, retry_s: 30}}"


def bot_decision(url: str, on_error: str):
    policy = parse_policy(f"version: 1\ndefaults: {{layers: {{bot: {{action: log, state: {state(url, on_error)}}}}}}}\n")
    request = Request("GET", "/", headers=(("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"),
                                           ("accept", "text/html")), source_ip="198.51.100.7")
    return Transaction(policy, request).on_headers()


def test_bot_closed_refuses_with_its_error_status_and_local_scores_on_the_workers_own_behaviour(nowhere):
    closed = bot_decision(nowhere, "closed")
    assert not closed.allowed and closed.status == 503 and closed.denied_by == "bot"
    local = bot_decision(nowhere, "local")
    assert local.allowed and "bot:state_unavailable=local" in local.reasons


MCP = """
version: 1
defaults:
  layers:
    mcp:
      server: github
      groups: {{engineering: {{servers: [github], tools: {{allow: ["*"]}}}}}}
      rate_limit: {{requests: 3, per_s: 60}}
      scan_arguments: false
      audit: null
      state: {state}
"""


def mcp_call(url: str, on_error: str):
    policy = parse_policy(MCP.format(state=state(url, on_error)))
    body = orjson.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "search", "arguments": {}}})
    request = Request("POST", "/mcp", headers=(("content-type", "application/json"),), has_body=True, request_id="r")
    identity = Identity(methods=frozenset({"jwt"}), email="ana@corp.example", groups=frozenset({"engineering"}))
    transaction = Transaction(policy, request, identity=identity)
    assert transaction.on_headers() is None
    return transaction.on_body(body)


def test_mcp_closed_answers_a_json_rpc_error_and_open_lets_the_call_on(nowhere):
    from extproc.wire.convert import deny_reply, to_pb

    closed = mcp_call(nowhere, "closed")
    assert not closed.allowed and closed.denied_by == "mcp"
    error = json.loads(to_pb(deny_reply(closed)).immediate_response.body)
    assert error["id"] == 7 and error["error"]["code"] == -32603
    assert "state" not in error["error"]["message"]  # why stays in the audit record
    opened = mcp_call(nowhere, "open")
    assert opened.allowed and "mcp:state_unavailable=open" in opened.reasons


def test_ai_gateway_tokens_of_a_call_refused_after_admission_go_back():
    from extproc.layers.ai_gateway import shared_budgets

    DURABLE.clear("ai_budgets")
    policy = parse_policy("""
version: 1
defaults:
  layers:
    ai_gateway:
      groups: {"*": {tokens_per_minute: 100000}}
      sensitive_data: {action: deny}
      injection: {action: "off"}
""")
    request = Request("POST", "/v1/chat/completions", headers=(("content-type", "application/json"),), has_body=True)
    transaction = Transaction(policy, request)
    transaction.on_headers()
    body = {"model": "m", "messages": [{"role": "user", "content": "my card is 4111 1111 1111 1111"}]}
    assert not transaction.on_body(orjson.dumps(body)).allowed  # refused for the card number
    assert shared_budgets().used(f"anonymous@{request.source_ip}", "minute") == 0


def test_a_key_revoked_by_one_worker_is_dropped_by_another_through_the_store():
    require_redis()
    store = RedisServer().start()
    old, new = new_key("ec", "old"), new_key("ec", "new")
    idp = JwksServer(jwks(old, new))
    try:
        settings = Jwks(url=idp.url, refresh_s=3600, min_refetch_s=1)
        workers = []
        for _ in range(2):  # each its own bus and source, as two processes have
            DURABLE.clear("state_event_buses")
            source = KeySource("corp", settings)
            source.share_revocations(event_bus(store.url, "extproc", 200))
            workers.append(source)
        first, second = workers
        wait_for(lambda: all(source.bus is not None and source.bus.live for source in workers), 10, what="both listening")
        generation = second.generation
        idp.document = jwks(new)
        assert first.refresh()  # the first worker's own fetch: old is gone
        assert first.key("old") is None
        wait_for(lambda: second.key("old") is None, 5, what="the second worker dropping the old key")
        assert second.key("new") is not None and second.generation > generation
        idp.document = jwks(old, new)  # served again (a stale cache): still revoked where it was heard
        assert second.refresh() and second.key("old") is None
    finally:
        idp.close()
        store.close()
        DURABLE.clear("state_event_buses")
