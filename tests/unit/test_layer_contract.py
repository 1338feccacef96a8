"""The layer contract (extproc/layers/base.py): every layer declares what it does besides judging,
its optional hooks are found once when a route is compiled, identity reaches only the layers that
read it and only from the layer that provides it, and state kept across reloads lives in one
registry that metrics read."""
from __future__ import annotations

import ast

import orjson

from extproc.access.identity import Identity
from extproc.config.compile import parse_policy
from extproc.core.durable import DURABLE
from extproc.layers import REGISTRY
from extproc.layers.base import Capabilities
from extproc.observability.metrics import Metrics
from extproc.core.transaction import Transaction
from extproc.config.store import PolicyStore
from extproc.core.request import Request
from tests.support import REPO

SERVING = REPO / "extproc"
ANA = Identity(methods=frozenset({"jwt"}), email="ana@corp.example", groups=frozenset({"engineering"}))
MCP_POLICY = """
version: 1
defaults:
  layers:
    mcp:
      server: github
      groups: {engineering: {servers: [github], tools: {allow: ["*"]}}}
      rate_limit: {requests: 2, per_s: 3600}
      audit: null
      scan_arguments: false
"""


def test_every_layer_declares_its_capabilities_and_identity_flows_forward():
    order = list(REGISTRY)
    capabilities = {name: spec.build.capabilities for name, spec in REGISTRY.items()}
    assert all(isinstance(c, Capabilities) for c in capabilities.values())
    providers = [order.index(n) for n, c in capabilities.items() if c.provides_identity]
    readers = [order.index(n) for n, c in capabilities.items() if c.reads_identity]
    assert providers == [order.index("access")] and readers  # mcp and ai_gateway
    assert all(reader > providers[0] for reader in readers)  # the registry runs access first
    assert [n for n, c in capabilities.items() if c.reads_verdicts] == ["late_rules"] == order[-1:]


def test_response_hooks_are_found_once_per_slot_when_a_route_is_compiled():
    policy = parse_policy(MCP_POLICY.replace("    mcp:", "    attack: {}\n    ai_gateway: {}\n    mcp:"), "p")
    slots = {slot.name: slot for slot in policy.default.slots}
    assert slots["mcp"].rewriter is slots["mcp"].layer and slots["mcp"].watcher is None
    assert slots["ai_gateway"].watcher is slots["ai_gateway"].layer and slots["ai_gateway"].rewriter is None
    assert slots["attack"].watcher is slots["attack"].rewriter is None
    assert policy.default.watches_response and policy.default.rewrites_body  # ai_gateway redacts by default
    denying = parse_policy(MCP_POLICY.replace("    mcp:", "    ai_gateway: {sensitive_data: {action: deny}}\n    mcp:"), "p")
    assert not denying.default.rewrites_body


def test_no_module_probes_a_layer_for_attributes():
    """hasattr/getattr on a layer is the contract going around itself; the slots carry the hooks."""
    probes = []
    for path in SERVING.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("hasattr", "getattr") and node.args:
                target = ast.unparse(node.args[0])
                if "layer" in target or "slot" in target:
                    probes.append(f"{path.relative_to(SERVING)}:{node.lineno}: {ast.unparse(node)}")
    assert probes == []


def mcp_call(policy, identity, tool="search_code"):
    request = Request("POST", "/mcp", headers=(("content-type", "application/json"),), has_body=True)
    transaction = Transaction(policy, request, identity=identity)
    assert transaction.on_headers() is None
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": {}}}
    return transaction.on_body(orjson.dumps(body))


def test_identity_reaches_a_layer_only_when_it_declares_reading_it():
    policy = parse_policy(MCP_POLICY, "p")
    assert mcp_call(policy, ANA).allowed
    refused = mcp_call(policy, None)  # anonymous@address has no group: the tool is not granted
    assert orjson.loads(refused.reply.body)["error"]["message"] == "Forbidden by policy"


def test_a_reload_keeps_rate_limit_windows_and_metrics_count_them(tmp_path):
    first = parse_policy(MCP_POLICY, "p")
    assert mcp_call(first, ANA).allowed and mcp_call(first, ANA).allowed
    reloaded = parse_policy(MCP_POLICY, "p")  # the same settings, compiled again by a reload
    limited = mcp_call(reloaded, ANA)
    assert orjson.loads(limited.reply.body)["error"]["message"] == "Rate limit exceeded"
    assert mcp_call(parse_policy(MCP_POLICY.replace("requests: 2", "requests: 5"), "p"), ANA).allowed  # new limit
    metrics = Metrics()
    metrics.watch_state(PolicyStore(reloaded))
    assert metrics.registry.get_sample_value("extproc_state_entries", {"state": "rate_limiters"}) == 2
    assert DURABLE.sizes()["rate_limiters"] == 2  # one caller, in the limiters of two settings
