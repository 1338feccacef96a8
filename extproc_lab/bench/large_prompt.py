"""Large prompts through a real Envoy: a 1 MB chat completion on the AI gateway route, beside
Envoy alone in the same run.

    python -m extproc_lab.bench.large_prompt [--prompt-size 1000000] [--prompt-requests 20] [--prompt-clients 1,2,4]
    extproc bench --large-prompt-only [same options]

Two Envoys run side by side from the benchmark bootstrap (extproc_lab.bench.endtoend: routes answer
themselves after the buffer filter, which reads the whole request as an upstream would): one
alone, one with the sidecar and a policy whose only route is the AI gateway with its defaults
(injection scan, sensitive-data redaction, tool-argument scan). Requests alternate between them,
so whatever else the machine does weighs on both alike. The prompt is this project's own
documentation, repeated to the size asked: prose, tables and code, allowed by the gateway and
with nothing to redact (the table shows every status, so a denied prompt would show).

Added latency is the sidecar setup's median minus Envoy alone's, per concurrency; the bar of
issue 22 is +20 ms for 1 MB at concurrency 1.
"""
from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from extproc.ai_gateway import sensitive
from extproc_lab.bench import endtoend

REPO = Path(__file__).resolve().parents[2]
POLICY = """version: 1
routes:
  - name: llm
    match: {path_prefix: /v1/}
    public: true
    layers:
      ai_gateway:
        groups: {"*": {}}
"""
BAR_MS = 20.0
SETUPS = (endtoend.Setup("envoy alone", None), endtoend.Setup("envoy + extproc (ai_gateway)", "extproc"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompt-size", dest="prompt_size", type=int, default=1_000_000,
                        help="large prompt: characters (the body is ~60 bytes more)")
    parser.add_argument("--prompt-requests", dest="prompt_requests", type=int, default=20,
                        help="large prompt: measured requests per setup and number of clients")
    parser.add_argument("--prompt-clients", dest="prompt_clients", default="1,2,4",
                        help="large prompt: comma-separated numbers of clients at once")


def prompt(size: int) -> str:
    """This project's documentation, repeated and cut to size characters, without what the
    sensitive-data scan would redact (its examples' addresses and keys): the body passes unchanged,
    as most prompts do."""
    pages = [path.read_text(encoding="utf-8") for path in sorted((REPO / "docs").glob("*.md"))]
    text = "\n\n".join(pages)
    text = sensitive.redact(text, sensitive.find(text, frozenset(sensitive.KINDS))).replace("[REDACTED:", "[")
    return (text * (size // len(text) + 1))[:size]


def chat_body(text: str) -> bytes:
    return json.dumps({"model": "gpt-4o", "max_tokens": 64, "messages": [{"role": "user", "content": text}]}).encode()


def post(port: int, body: bytes) -> tuple[int, float]:
    """(status, seconds) of one POST on a fresh connection, from sending to the whole answer."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", "/v1/chat/completions", body=body, headers={"content-type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status, time.perf_counter() - started
    finally:
        connection.close()


def burst(port: int, body: bytes, clients: int) -> list[tuple[int, float]]:
    """clients requests at once, each on its own connection."""
    results: list[tuple[int, float]] = []
    lock = threading.Lock()

    def one() -> None:
        result = post(port, body)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=one) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def measure(ports: dict[str, int], body: bytes, requests: int, clients: int) -> dict[str, dict]:
    """Bursts of `clients` requests, alternating between the setups, until each has `requests`."""
    for port in ports.values():  # warm-up: connections, the sidecar's first parse
        burst(port, body, clients)
    samples: dict[str, list[tuple[int, float]]] = {name: [] for name in ports}
    while min(len(s) for s in samples.values()) < requests:
        for name, port in ports.items():
            samples[name] += burst(port, body, clients)
    return {name: {"statuses": dict(Counter(status for status, _ in results)),
                   "latency_ms": _milliseconds([seconds for _, seconds in results])} for name, results in samples.items()}


def _milliseconds(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)  # noqa: E731
    return {"n": len(ordered), "p50": pick(0.5), "p90": pick(0.9), "max": round(ordered[-1] * 1000, 2),
            "mean": round(statistics.fmean(ordered) * 1000, 2)}


def run(args: argparse.Namespace) -> int:
    body = chat_body(prompt(args.prompt_size))
    levels = [int(n) for n in args.prompt_clients.split(",")]
    results: dict = {"prompt_chars": args.prompt_size, "body_bytes": len(body), "by_concurrency": {}}
    with tempfile.TemporaryDirectory(prefix="extproc-bench-prompt-") as tmp, ExitStack() as running:
        policy = Path(tmp) / "policy.yaml"
        policy.write_text(POLICY)
        ports = {}
        for setup in SETUPS:
            envoy, _, _ = running.enter_context(endtoend.running(setup, policy, Path(tmp)))
            ports[setup.name] = envoy.listen_port
        for clients in levels:
            results["by_concurrency"][clients] = measure(ports, body, args.prompt_requests, clients)
            print(f"concurrency {clients}: done", file=sys.stderr)
    results["bar"] = bar(results)
    print(report(results))
    if getattr(args, "json", None):
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def added_ms(row: dict) -> float:
    alone, sidecar = (row[setup.name]["latency_ms"]["p50"] for setup in SETUPS)
    return round(sidecar - alone, 2)


def bar(results: dict) -> dict:
    single = results["by_concurrency"].get(1)
    if single is None:
        return {}
    value = added_ms(single)
    return {"value_ms": value, "limit_ms": BAR_MS, "met": value <= BAR_MS}


def report(results: dict) -> str:
    lines = [f"{results['prompt_chars']:,}-character prompt ({results['body_bytes']:,}-byte body), "
             "latency in ms from sending to the whole answer",
             f"{'clients':>7} {'setup':<30} {'n':>4} {'p50':>8} {'p90':>8} {'max':>8} {'mean':>8}  statuses"]
    for clients, row in results["by_concurrency"].items():
        for name, measured in row.items():
            latency = measured["latency_ms"]
            lines.append(f"{clients:>7} {name:<30} {latency['n']:>4} {latency['p50']:>8} {latency['p90']:>8} "
                         f"{latency['max']:>8} {latency['mean']:>8}  {measured['statuses']}")
        lines.append(f"{'':>7} {'added by the sidecar (p50)':<30} {added_ms(row):>8}")
    if results["bar"]:
        check = results["bar"]
        lines.append(f"\nbar: {'ok  ' if check['met'] else 'MISS'} 1 client, added p50 <= {check['limit_ms']} ms: "
                     f"{check['value_ms']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m extproc_lab.bench.large_prompt", description=__doc__.split("\n")[0])
    add_arguments(parser)
    parser.add_argument("--json", metavar="FILE", help="also write the results here as JSON")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
