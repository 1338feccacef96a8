"""End to end through a real Envoy: Envoy alone, with a do-nothing ext_proc server, with the sidecar
(each transport).

Every configuration runs the same Envoy bootstrap (deploy/envoy/envoy.yaml) changed only where a
benchmark must: the routes answer themselves (direct_response after the bootstrap's buffer filter,
which reads the whole request, as an app would) so that no upstream competes for the two cores;
Envoy trusts one X-Forwarded-For hop, so each simulated client has its own address as behind a load balancer; the
per-request stdout access log is off. "Envoy alone" also drops the ext_proc filter.
"""
from __future__ import annotations

import asyncio
import os
import resource
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from extproc_lab.bench import load
from extproc.local.envoy import (
    EXTPROC_FILTER,
    EnvoyProcess,
    free_port,
    http_connection_manager,
    remove_http_filter,
    render_envoy_config,
    routes,
)
from extproc.local.stack import SidecarProcess

@dataclass(frozen=True)
class Setup:
    name: str
    server: str | None  # None: Envoy alone; "noop": the do-nothing server; "extproc": the sidecar
    workers: int = 1
    transport: str = "auto"  # the sidecar's --transport


class NoopProcess(SidecarProcess):
    """The do-nothing server as a child process, started and health-checked like the sidecar."""

    def command(self) -> list[str]:
        return [sys.executable, "-m", "extproc_lab.bench.noop", "--address", self.address]


class NativeNoopProcess(NoopProcess):
    """The do-nothing C++ server (extproc_lab/bench/noop_server.cc), built by hand; its path in
    EXTPROC_NATIVE_NOOP (python -m extproc_lab.bench.transport_floor sets it)."""

    def command(self) -> list[str]:
        return [os.environ["EXTPROC_NATIVE_NOOP"], self.address]


def envoy_config(extproc_port: int, with_extproc: bool) -> dict:
    config = render_envoy_config(listen_port=free_port(), admin_port=free_port(), extproc_port=extproc_port,
                                 upstream_port=free_port())
    manager = http_connection_manager(config)
    manager.pop("access_log", None)
    manager["xff_num_trusted_hops"] = 1
    if not with_extproc:
        remove_http_filter(config, EXTPROC_FILTER)  # the bootstrap's buffer filter stays: it reads the whole request
    for route in routes(config):
        route.pop("route", None)
        route.pop("request_headers_to_remove", None)
        route["direct_response"] = {"status": 200, "body": {"inline_string": "ok\n"}}
    return config


@contextmanager
def running(setup: Setup, policy: Path, workdir: Path):
    """Yield (Envoy, the server's worker pids and metrics ports) for one setup; stop all after."""
    server = None
    metrics_port = free_port() if setup.workers == 1 else _free_port_run(setup.workers)
    if setup.server == "noop":
        server = NoopProcess(policy, workdir=workdir)
    elif setup.server == "native-noop":
        server = NativeNoopProcess(policy, workdir=workdir)
    elif setup.server == "extproc":
        server = SidecarProcess(policy, workdir=workdir, extra_args=[
            "--log-level", "warning", "--workers", str(setup.workers), "--transport", setup.transport,
            "--metrics-address", f"127.0.0.1:{metrics_port}", "--drain-seconds", "1"])
    envoy = None
    try:
        if server is not None:
            server.start(timeout=60)
        ports = [metrics_port + i for i in range(setup.workers)] if setup.server == "extproc" else []
        _wait_workers(ports)
        envoy = EnvoyProcess(envoy_config(server.port if server else free_port(), server is not None),
                             workdir=workdir).start()
        yield envoy, _server_pids(server), ports
    finally:
        if envoy is not None:
            envoy.stop()
        if server is not None:
            server.stop()


def _free_port_run(count: int) -> int:
    """A port p with p..p+count-1 free a moment ago (worker i serves metrics on p+i)."""
    while True:
        base = free_port()
        if base + count < 65536 and all(_port_free(base + i) for i in range(1, count)):
            return base


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _wait_workers(ports: list[int], timeout: float = 60.0) -> None:
    """Every worker serves its metrics once its policy (and models) are loaded."""
    deadline = time.monotonic() + timeout
    for port in ports:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"worker metrics on {port} not up after {timeout}s")
                time.sleep(0.1)


def _server_pids(server: SidecarProcess | None) -> list[int]:
    """The serving processes: the supervisor's children with --workers > 1, else the process."""
    if server is None:
        return []
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    pids = [int(pid) for pid in children.read_text().split()] if children.exists() else []
    return pids or [server.process.pid]


def decisions_per_worker(ports: list[int]) -> list[int]:
    """extproc_decisions_total summed over routes and actions, per worker."""
    counts = []
    for port in ports:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        counts.append(int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                              if line.startswith("extproc_decisions_total{"))))
    return counts


def memory(pid: int) -> dict:
    """Resident set now and at its peak, in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {"rss_mb": round(int(fields["VmRSS"].split()[0]) / 1024, 1),
            "peak_rss_mb": round(int(fields["VmHWM"].split()[0]) / 1024, 1)}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent outside idle and iowait since boot (first line of /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU used during a run, by Envoy, each server process, the load generator (this process's
    waited-for children) and the whole machine, to see which one ran out of cores."""

    def __init__(self, envoy_pid: int, server_pids: list[int]) -> None:
        self.pids = {"envoy": [envoy_pid], "server": server_pids}
        self.started = {name: [cpu_seconds(pid) for pid in pids] for name, pids in self.pids.items()}
        self.children, self.machine, self.wall = _children_cpu(), machine_busy_seconds(), time.monotonic()

    def report(self, requests: int) -> dict:
        wall, n = time.monotonic() - self.wall, max(1, requests)
        used = {name: [cpu_seconds(pid) - before for pid, before in zip(pids, self.started[name])]
                for name, pids in self.pids.items()}
        load_generator = _children_cpu() - self.children
        out = {f"{name}_cpu_us_per_request": round(sum(v) / n * 1e6, 1) for name, v in used.items() if v}
        out.update({"server_cores_per_process": [round(v / wall, 2) for v in used["server"]],
                    "envoy_cores": round(sum(used["envoy"]) / wall, 2),
                    "load_generator_cores": round(load_generator / wall, 2),
                    "machine_cores_busy": round((machine_busy_seconds() - self.machine) / wall, 2),
                    "all_cpu_us_per_request": round((sum(map(sum, used.values())) + load_generator) / n * 1e6, 1)})
        return out


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fixed_rate(envoy: EnvoyProcess, payloads: list[bytes], rate: float, seconds: float) -> dict:
    return asyncio.run(load.fixed_rate(envoy.listen_port, payloads, rate, seconds)).summary()
