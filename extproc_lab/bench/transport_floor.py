"""The transport's floor, before choosing one: Envoy alone, with the do-nothing grpc.aio server,
and with a do-nothing C++ server on the system gRPC library (extproc_lab/bench/noop_server.cc).

    python -m extproc_lab.bench.transport_floor --binary /path/to/noop_server [--seconds 10] [--rounds 3]

Each setup runs the same Envoy and load as ``extproc bench``'s end-to-end part; the setups take
turns, round after round, so a neighbour's job on the shared cores touches them all alike.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from extproc_lab.bench import endtoend, load, workload


def measure(setup: endtoend.Setup, policy: Path, workdir: Path, payloads: list[bytes], seconds: float) -> dict:
    with endtoend.running(setup, policy, workdir) as (envoy, pids, _ports):
        endtoend.fixed_rate(envoy, payloads, 300.0, 1.0)
        fixed = endtoend.fixed_rate(envoy, payloads, 300.0, seconds)
        meter = endtoend.CpuMeter(envoy.pid, pids)
        saturation = load.saturate(envoy.listen_port, payloads, seconds, 16)
        cpu = meter.report(saturation["requests"])
    return {"requests_per_s": round(saturation["requests_per_s"]), "server_cpu_us": cpu.get("server_cpu_us_per_request"),
            "envoy_cpu_us": cpu["envoy_cpu_us_per_request"], "machine_cores_busy": cpu["machine_cores_busy"],
            "fixed_p50_us": fixed["latency"]["p50_us"], "fixed_p99_us": fixed["latency"]["p99_us"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m extproc_lab.bench.transport_floor")
    parser.add_argument("--binary", required=True, help="the built noop_server")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ["EXTPROC_NATIVE_NOOP"] = args.binary
    setups = (endtoend.Setup("envoy alone", None), endtoend.Setup("python do-nothing", "noop"),
              endtoend.Setup("c++ do-nothing", "native-noop"))
    payloads = [workload.http_request(sample) for sample in workload.mix(2000, seed=8)]
    results: dict[str, list[dict]] = {setup.name: [] for setup in setups}
    with tempfile.TemporaryDirectory(prefix="extproc-floor-") as tmp:
        policy = workload.write_policy(Path(tmp))
        for _round in range(args.rounds):
            for setup in setups:
                row = measure(setup, policy, Path(tmp), payloads, args.seconds)
                results[setup.name].append(row)
                print(setup.name, json.dumps(row), file=sys.stderr)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
