"""What the layer benchmarks share: CPU time per request of whole transactions and of one layer,
and the table they print (p50/p90/p99/mean in microseconds)."""
from __future__ import annotations

import time
from typing import Callable, Iterable

from extproc_lab.bench.report import percentiles
from extproc.layers.base import Context
from extproc.core.transaction import Transaction
from extproc.core.request import Request

Requests = Callable[[], Iterable[tuple[Request, bytes]]]  # fresh requests on each call (they cache parses)


def transactions(requests: Requests, policy) -> list[float]:
    samples = []
    for request, body in requests():
        start = time.thread_time_ns()
        transaction = Transaction(policy, request)
        if transaction.on_headers() is None:
            transaction.on_body(body)
        samples.append((time.thread_time_ns() - start) / 1000)
    return samples


def layer(requests: Requests, evaluated) -> list[float]:
    """The layer alone, the body already attached (as it is when a body layer runs)."""
    samples, context = [], Context("bench", 0)
    for request, body in requests():
        if body:
            request.attach_body(body)
        start = time.thread_time_ns()
        evaluated.evaluate(request, context)
        samples.append((time.thread_time_ns() - start) / 1000)
    return samples


def print_table(rows: dict[str, list[float]]) -> None:
    width = max(36, *(len(name) for name in rows))
    print(f"{'':{width}} {'p50 us':>8} {'p90 us':>8} {'p99 us':>8} {'mean us':>8}")
    for name, samples in rows.items():
        r = percentiles(samples)
        print(f"{name:{width}} {r['p50_us']:>8} {r['p90_us']:>8} {r['p99_us']:>8} {r['mean_us']:>8}")


def print_layer_against_baseline(requests: Requests, policy, name: str) -> None:
    """The usual three rows: no layers, the whole transaction with the policy, its one layer alone."""
    from extproc.config.compile import parse_policy

    print_table({"baseline: transaction, no layers": transactions(requests, parse_policy("version: 1\n")),
                 f"transaction, {name}": transactions(requests, policy),
                 f"{name} layer": layer(requests, policy.default.slots[0].layer)})
