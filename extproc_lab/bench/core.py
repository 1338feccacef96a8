"""In-process latency of the decision core, with a do-nothing policy as the baseline.

    python -m extproc_lab.bench.core [--n 20000]

Measures StreamProcessor.handle() on real protobuf messages (conversion, route selection,
layers, reply building), so it is the sidecar's per-request CPU cost without gRPC.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Callable

from extproc.config.compile import load_policy, parse_policy
from extproc.wire import messages
from extproc.wire.pb import external_processor_pb2 as pb
from extproc.wire.stream import StreamProcessor

DEMO = Path(__file__).resolve().parents[2] / "deploy" / "policy" / "demo.yaml"
BASELINE = parse_policy("version: 1\n")  # no layers: conversion and reply only

# Chrome 135 on Linux as it sends a navigation over HTTP/2: client hints with its GREASE brand,
# fetch metadata, and its header and pseudo-header order (the bot layer checks all of that).
CHROME_PSEUDO_ORDER = (":method", ":authority", ":scheme", ":path")
BROWSER_HEADERS = [
    ("sec-ch-ua", '"Google Chrome";v="135", "Not-A.Brand";v="8", "Chromium";v="135"'), ("sec-ch-ua-mobile", "?0"),
    ("sec-ch-ua-platform", '"Linux"'), ("upgrade-insecure-requests", "1"),
    ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/135.0.0.0 Safari/537.36"),
    ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"),
    ("sec-fetch-site", "same-origin"), ("sec-fetch-mode", "navigate"), ("sec-fetch-dest", "document"),
    ("referer", "https://shop.example/"), ("accept-encoding", "gzip, deflate, br, zstd"),
    ("accept-language", "en-US,en;q=0.9"), ("cookie", "sid=3f9a0c1e7b; consent=1; _ga=GA1.2.1234567890.1700000000"),
    ("priority", "u=0, i"), ("x-forwarded-proto", "https"), ("x-request-id", "2b0a8f5e-8a4f-4f0e-9e55-1f4d1f7e0c11"),
]


def headers_message(method: str, path: str, extra: list[tuple[str, str]], has_body: bool,
                    client: int = 7) -> pb.ProcessingRequest:
    address = f"10.{client >> 16 & 255}.{client >> 8 & 255}.{client & 255}:40000"  # a new visitor each time
    attributes = {"source.address": address, "xds.route_name": "api" if path.startswith("/api/") else "default"}
    return messages.request_headers(method, path, BROWSER_HEADERS + extra, authority="shop.example", scheme="https",
                                    pseudo_order=CHROME_PSEUDO_ORDER, end_of_stream=not has_body,
                                    attributes=attributes)


def json_body(size: int) -> bytes:
    items, body = [], b""
    while len(body) < size:
        items.append({"sku": f"SKU-{len(items):05d}", "qty": len(items) % 7 + 1, "note": "gift wrap, please"})
        body = json.dumps({"customer": {"id": 1234, "email": "ana@example.com"}, "items": items}).encode()
    return body


def cases() -> dict[str, Callable[[int], list[pb.ProcessingRequest]]]:
    out = {"GET page": lambda client: [headers_message("GET", "/products/trail-boot-41?color=blue&size=42", [], False,
                                                       client)]}
    for size in (1024, 4096):
        body = json_body(size)
        json_headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
        out[f"POST JSON {size // 1024} KB"] = lambda client, body=body, headers=json_headers: [
            headers_message("POST", "/api/orders", headers, True, client),
            messages.request_body(body),
        ]
    return out


def measure(policy, make_messages, n: int, outcomes: Counter | None = None) -> list[float]:
    samples = []
    for client in range(n):
        messages = make_messages(client)
        start = time.perf_counter_ns()
        stream = StreamProcessor(policy)
        for message in messages:
            stream.handle(message)
        samples.append((time.perf_counter_ns() - start) / 1000)
        if outcomes is not None:
            decision = stream.decision
            outcomes["allow" if decision.allowed else f"deny by {decision.denied_by}"] += 1
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]
    return {"p50_us": round(pick(0.5), 1), "p99_us": round(pick(0.99), 1),
            "req_per_s": round(1e6 / statistics.fmean(samples))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    policies = {"baseline (no layers)": BASELINE, "demo (every layer)": load_policy(DEMO)}
    results = []
    for case, make_messages in cases().items():
        for name, policy in policies.items():
            measure(policy, lambda client: make_messages(client + 1_000_000), 500)  # warm-up, other clients
            outcomes: Counter = Counter()
            samples = measure(policy, make_messages, args.n, outcomes)
            results.append({"case": case, "policy": name, **summary(samples), "outcomes": dict(outcomes)})
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'case':<16} {'policy':<22} {'p50 us':>8} {'p99 us':>8} {'req/s':>9}  outcomes")
    for r in results:
        print(f"{r['case']:<16} {r['policy']:<22} {r['p50_us']:>8} {r['p99_us']:>8} {r['req_per_s']:>9}  {r['outcomes']}")


if __name__ == "__main__":
    main()
