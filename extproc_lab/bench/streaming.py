"""The streaming scenario of ``extproc bench``: N concurrent SSE answers of M events at a token
rate, through the AI gateway route of a real Envoy, beside Envoy alone in the same run.

The upstream (extproc_lab/bench/sse_upstream.py, a process of its own) stamps each event with the
CLOCK_MONOTONIC time it sent it; the client (asyncio protocols, this process) reads each answer
as it comes and subtracts that stamp from the time it read the event. So an event's latency is
everything between the two: Envoy, and whatever Envoy waits for. Reported per setup: per-event
latency, statuses (504 is Envoy's message_timeout), streams cut after their 200 (ended before
``[DONE]`` and the last chunk), the upstream's own lateness and the CPU of each process. Setups:

- envoy alone: the same Envoy and route, no ext_proc filter;
- envoy + extproc: the shipped configuration, the route's answers read by the answer reader;
- envoy + extproc, answer held per event: the same route without that filter, so the request's own
  stream watches the answer and Envoy waits for the sidecar's reply to every chunk (before issue 22);
- envoy + do-nothing server, answer held per event: every chunk sent to a server that answers
  CONTINUE at once (extproc_lab/bench/noop.py): the least any design that holds each chunk costs;
- envoy + do-nothing server, answer observed per event: every chunk sent to it by a second ext_proc
  filter in ``observability_mode`` (Envoy does not wait): the least a per-chunk observer costs.
"""
from __future__ import annotations

import asyncio
import os
import resource
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from extproc_lab.bench.endtoend import NoopProcess, _server_pids, cpu_seconds
from extproc_lab.bench.sse_client import Totals, stream_calls
from extproc_lab.bench.report import percentiles
from extproc.local.envoy import (
    EXTPROC_FILTER,
    EXTPROC_PER_ROUTE,
    READER_FILTER,
    EnvoyProcess,
    find_route,
    free_port,
    http_connection_manager,
    remove_http_filter,
    render_envoy_config,
)
from extproc.local.observed_routes import observe_watched_routes
from extproc.local.stack import SidecarProcess

ROUTE = "llm"
POLICY = f"""\
version: 1
routes:
  - name: {ROUTE}
    match: {{path_prefix: /v1/}}
    layers:
      ai_gateway:
        budget_ms: 50
        groups: {{"*": {{models: ["gpt-4o*"]}}}}
        injection: {{action: log}}
"""


@dataclass(frozen=True)
class Plan:
    streams: int = 64
    events: int = 400
    rate: float = 200.0  # events per second per stream
    stagger: float = 0.25  # the streams start spread over this many seconds
    rounds: int = 1  # every setup this many times, in turn; the figures are medians over the rounds


@dataclass(frozen=True)
class Setup:
    name: str
    server: str | None  # None: Envoy alone; "extproc": the sidecar; "noop": the do-nothing server
    answers: str = "read"  # read: by Envoy's answer reader; held: each chunk for a reply; observed: observability_mode


SETUPS = (Setup("envoy alone", None), Setup("envoy + extproc", "extproc"),
          Setup("envoy + extproc, answer held per event", "extproc", "held"),
          Setup("envoy + do-nothing server, answer held per event", "noop", "held"),
          Setup("envoy + do-nothing server, answer observed per event", "noop", "observed"))
# What the do-nothing server is sent on the route: the answer, each chunk waiting for its reply.
HELD_PER_EVENT = {"request_header_mode": "SEND", "response_header_mode": "SEND", "request_body_mode": "NONE",
                  "response_body_mode": "STREAMED", "request_trailer_mode": "SKIP", "response_trailer_mode": "SKIP"}
OBSERVER = {"name": "bench.observe_answers", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
    "grpc_service": {"envoy_grpc": {"cluster_name": "extproc"}}, "observability_mode": True,
    "failure_mode_allow": True, "stat_prefix": "observe",
    "processing_mode": {"request_header_mode": "SKIP", "response_header_mode": "SEND", "response_body_mode": "STREAMED",
                        "request_trailer_mode": "SKIP", "response_trailer_mode": "SKIP"}}}


# -- the run ---------------------------------------------------------------------------------


def run(plan: Plan, workdir: Path, setups: tuple[Setup, ...] = SETUPS) -> dict:
    """Every setup in turn, round after round, against one upstream: each setup's figures (medians
    over the rounds; counts summed), and its latency added over Envoy alone of the same round."""
    policy = workdir / "streaming-policy.yaml"
    policy.write_text(POLICY)
    rounds = []
    with upstream(plan) as (upstream_port, upstream_pid):
        for _ in range(plan.rounds):
            measured = {setup.name: measure(setup, plan, policy, workdir, upstream_port, upstream_pid)
                        for setup in setups}
            rounds.append({"load_1m": round(os.getloadavg()[0], 2), "setups": measured,
                           "added_over_envoy_alone": added(measured)})
    names = [setup.name for setup in setups]
    return {"plan": plan.__dict__, "rounds": rounds,
            "setups": {name: combined([r["setups"][name] for r in rounds]) for name in names},
            "added_over_envoy_alone": {name: {q: _median([r["added_over_envoy_alone"][name][q] for r in rounds])
                                              for q in QUANTILES}
                                       for name in rounds[0]["added_over_envoy_alone"]}}


def measure(setup: Setup, plan: Plan, policy: Path, workdir: Path, upstream_port: int, upstream_pid: int) -> dict:
    with running(setup, policy, workdir, upstream_port) as (envoy, server_pids):
        asyncio.run(stream_calls(envoy.listen_port, 2, 5, plan.rate))  # warm-up
        meter = Cpu({"envoy": [envoy.pid], "server": server_pids, "upstream": [upstream_pid]})
        started = time.monotonic()
        totals = asyncio.run(stream_calls(envoy.listen_port, plan.streams, plan.events, plan.rate, plan.stagger))
        row = summary(totals, meter.cores(time.monotonic() - started))
    print(f"streaming, {setup.name}: {row['latency']}", file=sys.stderr)
    return row


QUANTILES = ("p50_us", "p90_us", "p99_us")
COUNTS = ("streams", "completed", "cut", "failed", "status_504", "events")


def combined(rows: list[dict]) -> dict:
    """One setup over the rounds: counts summed, latencies and cores the median of the rounds'."""
    statuses: dict[int, int] = {}
    for row in rows:
        for status, count in row["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    latency, lateness, cores = (_medians([row[part] for row in rows]) for part in ("latency", "upstream_lateness", "cores"))
    return {**{key: sum(row[key] for row in rows) for key in COUNTS}, "statuses": statuses,
            "latency": latency, "upstream_lateness": lateness, "cores": cores}


def _medians(parts: list[dict]) -> dict:
    """Key by key, the median of the values every part has (a round without events has no p50)."""
    keys = [key for key in parts[0] if all(key in part for part in parts)]
    return {key: _median([part[key] for part in parts]) for key in keys}


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def summary(totals: Totals, cores: dict) -> dict:
    return {"streams": sum(totals.statuses.values()) + totals.failed, "completed": totals.completed,
            "cut": totals.cut, "failed": totals.failed, "statuses": totals.statuses,
            "status_504": totals.statuses.get(504, 0), "events": len(totals.latencies_us),
            "latency": percentiles(totals.latencies_us) | {"max_us": round(max(totals.latencies_us, default=0), 1)},
            "upstream_lateness": percentiles(totals.lateness_us), "cores": cores}


def added(setups: dict) -> dict:
    """Per setup, its per-event latency minus Envoy alone's, at each percentile."""
    alone = setups.get("envoy alone")
    if alone is None:
        return {}
    return {name: {q: round(row["latency"][q] - alone["latency"][q], 1) for q in QUANTILES}
            for name, row in setups.items() if name != "envoy alone" and row["latency"].get("n")}


def bars(result: dict) -> dict:
    """The issue's bar for the shipped setup: no 504, no cut stream, at most +2 ms p99 per event."""
    shipped = result["setups"].get("envoy + extproc")
    if shipped is None:
        return {}
    added_p99 = result["added_over_envoy_alone"].get("envoy + extproc", {}).get("p99_us")
    plan = result["plan"]
    size = f"{plan['streams']} streams x {plan['events']} events at {plan['rate']:g}/s"
    if plan["rounds"] > 1:
        size += f", median of {plan['rounds']} rounds"
    return {f"streaming ({size}): 504s == 0": {"value": shipped["status_504"], "met": shipped["status_504"] == 0},
            f"streaming ({size}): cut streams == 0": {"value": shipped["cut"] + shipped["failed"],
                                                      "met": shipped["cut"] + shipped["failed"] == 0},
            f"streaming ({size}): added p99 per event us <= 2000": {
                "value": added_p99, "met": added_p99 is not None and added_p99 <= 2000}}


def print_result(result: dict) -> str:
    lines = [f"{'streaming':<54} {'done':>5} {'cut':>4} {'504':>4} {'events':>7} {'p50 us':>9} {'p90 us':>9} "
             f"{'p99 us':>9} {'max us':>9} {'late p99':>9}  cores (envoy, server, upstream, client)"]
    for name, row in result["setups"].items():
        lat, cores = row["latency"], row["cores"]
        lines.append(f"{name:<54} {row['completed']:>5} {row['cut'] + row['failed']:>4} {row['status_504']:>4} "
                     f"{row['events']:>7} {lat.get('p50_us', '-'):>9} {lat.get('p90_us', '-'):>9} "
                     f"{lat.get('p99_us', '-'):>9} {lat.get('max_us', '-'):>9} "
                     f"{row['upstream_lateness'].get('p99_us', '-'):>9}  "
                     f"{cores['envoy']}, {cores.get('server', '-')}, {cores['upstream']}, {cores['client']}")
    for name, delta in result["added_over_envoy_alone"].items():
        lines.append(f"  added over envoy alone, {name}: p50 {delta['p50_us']} us, p90 {delta['p90_us']} us, "
                     f"p99 {delta['p99_us']} us")
    return "\n".join(lines)


class Cpu:
    """Cores each process used during a run; the client is this process."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.pids = {name: found for name, found in pids.items() if found}
        self.before = {name: sum(map(cpu_seconds, found)) for name, found in self.pids.items()}
        self.client = _own_cpu()

    def cores(self, seconds: float) -> dict:
        used = {name: round((sum(map(cpu_seconds, pids)) - self.before[name]) / seconds, 2)
                for name, pids in self.pids.items()}
        return used | {"client": round((_own_cpu() - self.client) / seconds, 2)}


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def upstream(plan: Plan):
    port = free_port()
    command = [sys.executable, "-m", "extproc_lab.bench.sse_upstream", "--port", str(port),
               "--events", str(plan.events), "--rate", str(plan.rate)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        ready = process.stdout.readline() if process.stdout else b""
        if ready.strip() != b"ready":
            raise RuntimeError(f"the SSE upstream did not start: {ready!r}")
        yield port, process.pid
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running(setup: Setup, policy: Path, workdir: Path, upstream_port: int):
    """Yield (Envoy, the server's pids) for one setup; stop both after."""
    sidecar = envoy = None
    try:
        if setup.server == "extproc":
            sidecar = SidecarProcess(policy, workdir=workdir, extra_args=["--log-level", "warning",
                                                                          "--drain-seconds", "1"]).start(timeout=60)
        elif setup.server == "noop":
            sidecar = NoopProcess(policy, workdir=workdir).start(timeout=60)
        config = envoy_config(setup, policy, sidecar.port if sidecar else free_port(), upstream_port)
        envoy = EnvoyProcess(config, workdir=workdir).start()
        yield envoy, _server_pids(sidecar)
    finally:
        if envoy is not None:
            envoy.stop()
        if sidecar is not None:
            sidecar.stop()


def envoy_config(setup: Setup, policy: Path, sidecar_port: int, upstream_port: int) -> dict:
    """The shipped bootstrap with the policy's route for the answers (as Stack makes it), without
    the per-request access log; without the sidecar's filters for Envoy alone."""
    config = render_envoy_config(listen_port=free_port(), admin_port=free_port(), extproc_port=sidecar_port,
                                 upstream_port=upstream_port)
    http_connection_manager(config).pop("access_log", None)
    observed = observe_watched_routes(config, policy)
    assert observed.routes == (ROUTE,), observed
    route = find_route(config, ROUTE)
    if setup.answers != "read":  # the same route without the reader
        route.pop("typed_per_filter_config")
    if setup.answers == "held" and setup.server == "noop":  # it asks for nothing: the route sends it the answer
        route["typed_per_filter_config"] = {EXTPROC_FILTER: {
            "@type": EXTPROC_PER_ROUTE, "overrides": {"processing_mode": HELD_PER_EVENT}}}
    if setup.answers == "observed":  # a second ext_proc filter, just before the router
        filters = http_connection_manager(config)["http_filters"]
        filters.insert(len(filters) - 1, OBSERVER)
    if setup.server is None:
        remove_http_filter(config, EXTPROC_FILTER)
        remove_http_filter(config, READER_FILTER)
    return config
