"""``extproc bench --state-only``: what the Redis state backend adds per request that touches
shared state, beside the memory backend in the same run.

Two policies alike but for ``state.backend``: an LLM call through the AI gateway (a request-rate
bucket and a token budget: one round trip for both) and a page through the bot layer (a behaviour
summary: one round trip). Wall time per request (the round trip is time waiting on a socket,
which CPU time would not show), the two backends interleaved request by request so that the
machine's other load falls on both alike. Redis is a redis-server this run starts on loopback,
or ``--redis-url``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from extproc.config.compile import parse_policy
from extproc.core.durable import DURABLE
from extproc.core.request import Request
from extproc.core.transaction import Transaction
from extproc.local.envoy import free_port
from extproc_lab.bench.report import percentiles, table

BAR_MS = 0.2
BODY = json.dumps({"model": "gpt-4o-mini", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}).encode()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-only", action="store_true",
                        help="only the state scenario: the Redis backend's added latency beside memory")
    parser.add_argument("--state-requests", type=int, default=3000, help="state: requests measured per kind and backend")
    parser.add_argument("--redis-url", help="state: an existing Redis (default: start redis-server on loopback)")


def policy(state: str) -> str:
    ai = ('sensitive_data: {action: "off"}, injection: {action: "off"}, scan_tool_arguments: false, '
          'groups: {"*": {tokens_per_minute: 1000000000, requests_per_minute: 100000000}}')
    return f"""
version: 1
routes:
  - name: llm
    match: {{path_prefix: /v1/}}
    layers: {{ai_gateway: {{{ai}, state: {state}}}}}
  - name: site
    match: {{path_prefix: /}}
    layers: {{bot: {{action: log, state: {state}}}}}
"""


def llm_call(policy_, index: int) -> None:
    request = Request("POST", "/v1/chat/completions", headers=(("content-type", "application/json"),),
                      source_ip=f"10.{index % 250}.{index // 250 % 250}.1", has_body=True)
    transaction = Transaction(policy_, request)
    transaction.on_headers()
    assert transaction.on_body(BODY).allowed


def page(policy_, index: int) -> None:
    request = Request("GET", f"/page/{index % 40}", headers=(("user-agent", "Mozilla/5.0 bench"), ("accept", "text/html")),
                      source_ip=f"10.1.{index % 200}.2")
    assert Transaction(policy_, request).on_headers() is not None


def measure(url: str, count: int) -> dict:
    DURABLE.clear("state_stores")
    policies = {"memory": parse_policy(policy("{backend: memory}")),
                "redis": parse_policy(policy(f"{{backend: redis, url: '{url}', timeout_ms: 50, on_error: local}}"))}
    results: dict = {}
    for kind, send in (("ai_gateway call (rate + budget: 1 round trip)", llm_call),
                       ("bot page (behaviour summary: 1 round trip)", page)):
        samples: dict[str, list[float]] = {name: [] for name in policies}
        for index in range(count + count // 4):
            for name, compiled in policies.items():
                start = time.perf_counter_ns()
                send(compiled, index)
                if index >= count // 4:  # the first quarter warms up
                    samples[name].append((time.perf_counter_ns() - start) / 1000)
        rows = {name: percentiles(values) for name, values in samples.items()}
        rows["added by redis"] = {"p50_us": round(rows["redis"]["p50_us"] - rows["memory"]["p50_us"], 1)}
        results[kind] = rows
    return results


def run(args: argparse.Namespace) -> int:
    server, url = None, args.redis_url
    directory = tempfile.mkdtemp(prefix="extproc-bench-redis-")
    try:
        if url is None:
            if shutil.which("redis-server") is None:
                print("redis-server not found (apt-get install redis-server) and no --redis-url: skipped")
                return 0
            port = free_port()
            server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", directory,
                                       "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
            url = f"redis://127.0.0.1:{port}/0"
            _wait_for(url)
        results = measure(url, args.state_requests)
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        shutil.rmtree(directory, ignore_errors=True)
    print(f"Shared state: wall time per request, in process, memory and Redis backends interleaved "
          f"({args.state_requests} requests each)")
    for kind, rows in results.items():
        print(table(kind, rows))
        added_ms = rows["added by redis"]["p50_us"] / 1000
        print(f"  added p50 {added_ms:.3f} ms (bar: at most {BAR_MS} ms): {'met' if added_ms <= BAR_MS else 'NOT met'}")
    from extproc.state.store import OPERATIONS

    failed = sum(count for (_, _, outcome), count in OPERATIONS.items() if outcome != "ok")
    print(f"  store round trips: {sum(OPERATIONS.values())}, of which failed or skipped (on_error local decided): {failed}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _wait_for(url: str) -> None:
    client = redis.Redis.from_url(url, socket_timeout=1)
    for _ in range(200):
        try:
            client.ping()
            return
        except redis.RedisError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not answer")
