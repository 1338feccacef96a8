"""Bot layer speed: features (user-agent, headers, client hints, behaviour) + inference per request.

    python -m extproc_lab.bench.bot [--traffic ../shared/data/bot/train.jsonl] [--n 20000]

Replays labelled sessions in time order (per-client state builds up as in production) and prints
p50/p90/p99 CPU time per request of the layer alone, of its parts, and of a whole in-process
transaction, next to the baseline: a transaction with no layers, on the same requests. A second
run gives every request a new client address, as a flood of new clients would, with a small cap
on remembered clients so eviction runs on every request. A third gives every request a valid
clearance cookie of the bot challenge, verified by the layer (key, client key and user agent).
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from extproc.bot.clearance import binding
from extproc.bot.features import client_key

from extproc.core.durable import DURABLE
from extproc.config.compile import parse_policy
from extproc.layers.base import Context
from extproc.core.transaction import Transaction
from extproc.core.records import read_records, request_from_record

HERE = Path(__file__).resolve().parent
from extproc_lab.bench.report import percentiles

DEFAULT_TRAFFIC = HERE.parents[2] / "shared" / "data" / "bot" / "train.jsonl"


def requests_of(records: list[dict], new_clients: bool = False) -> list:
    out = []
    for n, record in enumerate(records):
        if new_clients:
            record = {**record, "client": {**record.get("client", {}), "ip": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"}}
        out.append(request_from_record(record)[0])
    return out


def with_clearances(requests: list, layer) -> list:
    """The requests, each with a valid clearance cookie for its own client and user agent."""
    challenge, out = layer.challenge, []
    for request in requests:
        first = dict(reversed(request.headers))
        bound_to = binding(client_key(request, layer.featurizer.key_parts, first), first.get("user-agent", ""))
        cookie = f"{challenge.settings.cookie}={challenge.signer.clearance(bound_to, 3600)}"
        if "cookie" in first:  # where the client puts its cookies: its header order stays its own
            headers = tuple((n, f"{v}; {cookie}" if n == "cookie" else v) for n, v in request.headers)
        else:
            headers = request.headers + (("cookie", cookie),)
        out.append(replace(request, headers=headers))
    return out


def time_calls(items, call) -> list[float]:
    samples = []
    for item in items:
        start = time.thread_time_ns()
        call(item)
        samples.append((time.thread_time_ns() - start) / 1000)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--traffic", type=Path, default=DEFAULT_TRAFFIC)
    parser.add_argument("--n", type=int, default=20_000, help="requests measured (after as many of warm-up)")
    args = parser.parse_args()
    if not args.traffic.exists():
        print(f"{args.traffic}: no session records to replay (see ../shared/data/bot/README.md)", file=sys.stderr)
        return 2
    records = [r for _, r in zip(range(2 * args.n), read_records(args.traffic))]
    warm, measured = records[: len(records) // 2], records[len(records) // 2:]
    baseline = parse_policy("version: 1\n")
    policy = parse_policy("version: 1\ndefaults: {layers: {bot: {action: log}}}\n")
    layer = policy.default.slots[0].layer
    context = Context("bench", 0)
    time_calls(requests_of(warm), lambda r: layer.evaluate(r, context))  # clients seen, caches warm

    rows = {"baseline: transaction, no layers": time_calls(requests_of(measured), lambda r: Transaction(baseline, r).on_headers())}
    DURABLE.clear("bot_clients")
    time_calls(requests_of(warm), lambda r: layer.evaluate(r, context))
    facts = []
    rows["features (UA, headers, behaviour)"] = time_calls(requests_of(measured), lambda r: facts.append(layer.featurizer.facts(r)))
    rows[f"model inference ({layer.model.engine})"] = time_calls(facts, lambda f: layer.model.probability(f.vector))
    DURABLE.clear("bot_clients")
    time_calls(requests_of(warm), lambda r: layer.evaluate(r, context))
    rows["bot layer"] = time_calls(requests_of(measured), lambda r: layer.evaluate(r, context))
    rows["transaction, bot layer"] = time_calls(requests_of(measured), lambda r: Transaction(policy, r).on_headers())

    # With and without a clearance, request by request in turn, so that both see the same noise of a
    # shared machine; each layer keeps its own clients (max_clients differs: another tracker).
    cleared = parse_policy("version: 1\ndefaults: {layers: {bot: {action: log, max_clients: 50001, challenge: "
                           "{key: bench-only-key-0123456789abcdefghijklmnop}}}}\n")
    cleared_layer = cleared.default.slots[0].layer
    DURABLE.clear("bot_clients")
    plain_requests = requests_of(warm)
    for plain_request, cookie_request in zip(plain_requests, with_clearances(plain_requests, cleared_layer)):
        layer.evaluate(plain_request, context)
        cleared_layer.evaluate(cookie_request, context)
    pairs = list(zip(requests_of(measured), with_clearances(requests_of(measured), cleared_layer)))
    plain_times, cleared_times = [], []
    for plain_request, cookie_request in pairs:
        plain_times += time_calls([plain_request], lambda r: layer.evaluate(r, context))
        cleared_times += time_calls([cookie_request], lambda r: cleared_layer.evaluate(r, context))
    rows["bot layer, no cookie (in turn with the next)"] = plain_times
    rows["bot layer, a valid clearance on every request"] = cleared_times
    now, parts, challenge = time.time(), cleared_layer.featurizer.key_parts, cleared_layer.challenge
    rows["clearance check alone (cookie, key, HMAC)"] = time_calls(
        [p[1] for p in pairs], lambda r: challenge.cleared(r.headers, first := dict(reversed(r.headers)), client_key(r, parts, first), now))

    flood = parse_policy("version: 1\ndefaults: {layers: {bot: {action: log, max_clients: 1000}}}\n")
    flood_layer = flood.default.slots[0].layer
    rows["bot layer, every request a new client"] = time_calls(requests_of(measured, new_clients=True),
                                                               lambda r: flood_layer.evaluate(r, context))
    tracker = flood_layer.featurizer.tracker
    print(f"{len(measured)} requests of {args.traffic.name} in time order, after {len(warm)} of warm-up; "
          "CPU time per request (one core)")
    print(f"{'':40} {'p50 us':>8} {'p90 us':>8} {'p99 us':>8} {'mean us':>8}")
    for name, samples in rows.items():
        r = percentiles(samples)
        print(f"{name:40} {r['p50_us']:>8} {r['p90_us']:>8} {r['p99_us']:>8} {r['mean_us']:>8}")
    print(f"new-client flood: {len(tracker)} clients kept (cap 1000), {tracker.evicted} evicted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
