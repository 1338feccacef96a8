"""What tracing costs: the real sidecar process, tracing off vs 1% vs 100% sampled, in one run.

    python -m extproc_lab.bench.tracing [--requests 4000] [--rounds 3] [--concurrency 8]

Each configuration runs ``extproc serve`` as a child process and sends it ext_proc streams (one
GET headers message each) over gRPC from this process. Every stream carries a ``traceparent``
as Envoy's would; its sampled flag is set on the configured share of streams, which is how
Envoy's ``random_sampling`` reaches the sidecar (its default sampler follows the parent). The
spans go to an OTLP receiver in this process. Reported: throughput, and the sidecar's CPU time
per request (from /proc), the median over the rounds; configurations alternate within a round.
On a shared 2-core machine both swing by tens of percent between runs, so the tracing code's own
CPU per request is also measured in-process (start + finish of a request span, export included),
which is steady.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import grpc

from extproc.observability import tracing
from extproc.config.compile import parse_policy
from extproc.local.otlp_receiver import OtlpReceiver
from extproc.wire.pb import external_processor_pb2_grpc as pb_grpc
from extproc.local.stack import SidecarProcess
from extproc.wire.stream import StreamProcessor
from extproc_lab.bench.core import headers_message

CONFIGS = {"off": None, "on, 0%": 0.0, "sampled 1%": 0.01, "sampled 100%": 1.0}
RULES = "version: 1\ndefaults:\n  layers:\n    rules:\n      rules:\n" \
        "        - {id: deny-admin, match: {path: {prefix: /admin}}, action: deny}\n"
POLICIES = {"rules": RULES, "rules + attack": RULES + "    attack: {}\n"}


def traceparent(sampled: bool) -> str:
    return f"00-{random.getrandbits(128):032x}-{random.getrandbits(64):016x}-{'01' if sampled else '00'}"


async def drive(address: str, requests: int, concurrency: int, share: float) -> float:
    """Send the streams; return the wall time in seconds."""
    message = headers_message("GET", "/products/trail-boot-41?color=blue&size=42", [], False)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.ExternalProcessorStub(channel)

        async def one() -> None:
            metadata = (("traceparent", traceparent(random.random() < share)),)
            call = stub.Process(metadata=metadata)
            await call.write(message)
            await call.read()
            await call.done_writing()
            await call.code()

        async def worker(count: int) -> None:
            for _ in range(count):
                await one()

        await asyncio.gather(*(worker(50) for _ in range(concurrency)))  # warm-up
        start = time.perf_counter()
        await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
        return time.perf_counter() - start


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_one(policy: Path, workdir: Path, receiver: OtlpReceiver, share: float | None, args) -> tuple[float, float]:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_EXPORTER_OTLP_INSECURE": "true"}
    sidecar = SidecarProcess(policy, workdir=workdir, env=env if share is not None else {},
                             extra_args=["--log-level", "warning"]).start()
    try:
        before = cpu_seconds(sidecar.process.pid)
        elapsed = asyncio.run(drive(sidecar.address, args.requests, args.concurrency, share or 0.0))
        cpu = cpu_seconds(sidecar.process.pid) - before
    finally:
        sidecar.stop()
    sent = args.requests // args.concurrency * args.concurrency
    return sent / elapsed, cpu / sent * 1e6


def in_process_cost(receiver: OtlpReceiver, share: float, n: int = 20000) -> float:
    """CPU microseconds per request of Tracing.start + finish (this process, export thread included)."""
    os.environ.update(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_EXPORTER_OTLP_INSECURE="true")
    traced = tracing.configure(force=True)
    stream = StreamProcessor(parse_policy(POLICIES["rules + attack"]))
    stream.handle(headers_message("GET", "/products/trail-boot-41?color=blue&size=42", [], False))
    decision, request = stream.decision, stream.transaction.request
    parents = [(("traceparent", traceparent(random.random() < share)), ("x-envoy-internal", "true"))
               for _ in range(n)]
    start = time.process_time()
    for metadata in parents:
        traced.finish(traced.start(metadata), decision, request, "0" * 64)
    traced.shutdown()  # the export of what is still batched counts too
    return (time.process_time() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-tracing-") as tmp, OtlpReceiver() as receiver:
        workdir = Path(tmp)
        print(f"{'policy':<15} {'tracing':<14} {'req/s':>8} {'vs off':>8} {'sidecar CPU us/req':>19}")
        for policy_name, text in POLICIES.items():
            policy = workdir / "policy.yaml"
            policy.write_text(text)
            results = {name: [] for name in CONFIGS}
            for _ in range(args.rounds):
                for name, share in CONFIGS.items():
                    results[name].append(run_one(policy, workdir, receiver, share, args))
            base = statistics.median(r[0] for r in results["off"])
            for name, runs in results.items():
                rate = statistics.median(r[0] for r in runs)
                cpu = statistics.median(r[1] for r in runs)
                print(f"{policy_name:<15} {name:<14} {rate:>8.0f} {rate / base - 1:>+8.1%} {cpu:>19.0f}")
        print(f"spans received: {len(receiver.spans())}")
        for name, share in CONFIGS.items():
            if share is not None:
                print(f"tracing code in-process, {name}: {in_process_cost(receiver, share):.1f} us CPU per request")


if __name__ == "__main__":
    main()
