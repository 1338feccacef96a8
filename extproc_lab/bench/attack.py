"""Attack layer speed: normalisation + features + inference per request, with baselines.

    python -m extproc_lab.bench.attack [--n 3000] [--modsec]

Requests: a realistic mix up to 4 KB (generated benign traffic of 50 templates and attacks
placed into ordinary requests), the same set for every contender. Prints p50/p90/p99 of the
layer alone (extraction, normalisation, hashing, ONNX inference) without and with its value
memo, of a whole in-process transaction, and of a transaction with no layers (the baseline).
The memo is warmed on other requests of the same kind (another seed), never on the measured
ones, as a worker in steady state would be. With --modsec, the same requests go through
libmodsecurity + OWASP CRS (extproc_lab/bench/modsec) for the CPU-per-request ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from extproc_lab.attack import datagen, payloads
from extproc_lab.attack.placement import attack_records
from extproc_lab.bench.report import percentiles
from extproc.config.compile import parse_policy
from extproc.core.records import request_from_record
from extproc_lab.bench import timing

HERE = Path(__file__).resolve().parent
MAX_BYTES = 4096


def workload(n: int, seed: int = 11) -> list[dict]:
    """Generated benign requests plus a quarter as many placed attacks, each at most 4 KB."""
    benign = list(datagen.benign_records(n, seed))
    attacks = list(attack_records(payloads.generate_all(max(1, n // 50), seed), seed))[: n // 4]
    records = [r for r in benign + attacks if _size(r) <= MAX_BYTES]
    return records


def _size(record: dict) -> int:
    spec = record["request"]
    return len(spec.get("path", "")) + len(spec.get("query", "")) + len(spec.get("body") or "") + sum(
        len(k) + len(v) for k, v in spec.get("headers", ()))


def time_layer(records: list[dict], policy) -> list[float]:
    """CPU time (comparable with libmodsecurity's figure) of the policy's one layer."""
    return timing.layer(lambda: map(request_from_record, records), policy.default.slots[0].layer)


def time_transactions(records: list[dict], policy) -> list[float]:
    return timing.transactions(lambda: map(request_from_record, records), policy)


def modsec(records: list[dict]) -> dict | None:
    binary = HERE / "modsec" / "modsec_eval"
    if not binary.exists():
        subprocess.run(["sh", str(HERE / "modsec" / "build.sh")], check=False)
    if not binary.exists():
        print("libmodsecurity harness not built (see extproc_lab/bench/modsec/README.md); skipping", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        data, summary = Path(tmp) / "records.jsonl", Path(tmp) / "summary.json"
        data.write_text("".join(json.dumps(r) + "\n" for r in records))
        subprocess.run([sys.executable, str(HERE / "modsec" / "run.py"), str(data), "--json", str(summary)],
                       check=True, stdout=subprocess.DEVNULL)
        return json.loads(summary.read_text())


def print_traffic(path: Path, warm: int = 4000, measured: int = 4000) -> None:
    """Browser and crawler sessions in time order: values repeat as in real traffic."""
    from extproc.core.records import read_records

    records = [r for _, r in zip(range(warm + measured), read_records(path))]
    print(f"\n{path.name}: {measured} requests in time order after {warm} of warm-up (sessions repeat values)")
    for name, entries in (("attack layer, no memo", 0), ("attack layer, memo", 20_000)):
        policy = parse_policy(f"version: 1\ndefaults: {{layers: {{attack: {{memo_entries: {entries}}}}}}}\n")
        time_layer(records[:warm], policy)
        r = percentiles(time_layer(records[warm:], policy))
        print(f"{name:38} {r['p50_us']:>8} {r['p90_us']:>8} {r['p99_us']:>8} {r['mean_us']:>8}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000, help="benign requests (plus a quarter as many attacks)")
    parser.add_argument("--modsec", action="store_true", help="also run libmodsecurity + CRS on the same requests")
    parser.add_argument("--traffic", type=Path, default=HERE.parents[2] / "shared" / "data" / "bot" / "train.jsonl",
                        help="session-shaped traffic (request records in time order) for the memo's steady state")
    args = parser.parse_args()
    records, warm_up = workload(args.n), workload(args.n, seed=12)
    no_memo = parse_policy("version: 1\ndefaults: {layers: {attack: {memo_entries: 0}}}\n")
    with_memo = parse_policy("version: 1\ndefaults: {layers: {attack: {}}}\n")
    baseline_policy = parse_policy("version: 1\n")
    time_layer(warm_up[:300], no_memo)  # warm-up: CPU caches, onnxruntime arenas
    rows = {
        "baseline: transaction, no layers": percentiles(time_transactions(records, baseline_policy)),
        "attack layer, no memo": percentiles(time_layer(records, no_memo)),
    }
    time_layer(warm_up, with_memo)  # steady state: the memo holds other requests' values
    rows["attack layer, memo warm"] = percentiles(time_layer(records, with_memo))
    rows["transaction, attack layer (no memo)"] = percentiles(time_transactions(records, no_memo))
    print(f"{len(records)} requests up to {MAX_BYTES} bytes, CPU time per request (one core)")
    print(f"{'':38} {'p50 us':>8} {'p90 us':>8} {'p99 us':>8} {'mean us':>8}")
    for name, r in rows.items():
        print(f"{name:38} {r['p50_us']:>8} {r['p90_us']:>8} {r['p99_us']:>8} {r['mean_us']:>8}")
    if args.traffic.exists():
        print_traffic(args.traffic)
    if args.modsec:
        summary = modsec(records)
        if summary:
            cpu = summary["cpu_per_request"]
            print(f"{'libmodsecurity + CRS 3.3 (PL1)':38} {cpu['p50_us']:>8} {cpu['p90_us']:>8} "
                  f"{cpu['p99_us']:>8} {cpu['mean_us']:>8}")
            ratio = cpu["mean_us"] / rows["attack layer, no memo"]["mean_us"]
            print(f"libmodsecurity + CRS uses {ratio:.1f}x the CPU of the attack layer (no memo) per request (mean)")
    if os.environ.get("BENCH_JSON"):
        Path(os.environ["BENCH_JSON"]).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
