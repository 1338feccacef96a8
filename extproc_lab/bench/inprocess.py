"""In-process latency: each layer and the whole pipeline, protobuf in to reply out, no gRPC.

The total is what the server does per HTTP request besides the transport: convert Envoy's
messages, select the route, run the layers, build the replies and record the metrics. It is CPU
time of this thread (steady on a shared machine, where wall time also counts other processes);
layer times are the pipeline's own per-layer measurement, the one the metrics export.
"""
from __future__ import annotations

import time
from collections import defaultdict

from extproc_lab.bench.report import percentiles
from extproc_lab.bench.workload import Sample, messages
from extproc.observability.metrics import Metrics
from extproc.core.policy import Policy
from extproc.wire.stream import StreamProcessor

SMALL = 4096  # the latency bar is for requests up to this size


def measure(policy: Policy, samples: list[Sample], warmup: int) -> dict:
    """Percentiles per layer, per request kind and in total (all, and requests up to 4 KB)."""
    prepared = [(sample, messages(sample)) for sample in samples]
    metrics = Metrics()
    for _sample, wire in prepared[:warmup]:
        _run(policy, wire, metrics)
    totals, small, by_kind, layers = [], [], defaultdict(list), defaultdict(list)
    outcomes = defaultdict(int)
    for sample, wire in prepared[warmup:]:
        elapsed, stream = _run(policy, wire, metrics)
        totals.append(elapsed)
        if sample.size <= SMALL:
            small.append(elapsed)
        by_kind[sample.kind].append(elapsed)
        decision = stream.decision
        outcomes["allow" if decision is None or decision.allowed else f"deny by {decision.denied_by}"] += 1
        for result in decision.results if decision else ():
            layers[result.verdict.layer].append(result.elapsed_us)
    return {
        "requests": len(totals),
        "total": percentiles(totals),
        "total_up_to_4kb": percentiles(small),
        "by_kind": {kind: percentiles(values) for kind, values in sorted(by_kind.items())},
        "layers": {layer: percentiles(values) for layer, values in layers.items()},
        "outcomes": dict(outcomes),
    }


def _run(policy: Policy, wire: list, metrics: Metrics) -> tuple[float, StreamProcessor]:
    start = time.thread_time_ns()
    stream = StreamProcessor(policy, metrics.record)
    for message in wire:
        stream.handle(message)
    return (time.thread_time_ns() - start) / 1000, stream
