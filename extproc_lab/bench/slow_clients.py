"""Idle uploads against Envoy configurations: which of them keep serving a normal client.

    python -m extproc_lab.bench.slow_clients [--idle 1100] [--protocol http1|http2]

Each configuration is deploy/envoy/envoy.yaml with one change (or none), in front of the real
sidecar on the demo policy and the echo upstream. The flood is issue 18's: POSTs that announce
`Content-Length: 7` and never send it, opened 50 at a time and renewed whenever Envoy ends some, as
an attacker would. After 10 s of it, while it goes on, a normal client sends JSON POSTs to the api
route (their body is inspected) and GETs; then the flood stops. Reported per
configuration: sidecar streams held, what the normal client got, the sidecar's and Envoy's memory
and the sidecar's open files.
"""
from __future__ import annotations

import argparse
import http.client
import os
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from extproc.local import envoy as harness
from extproc.local.stack import DEMO_POLICY, SidecarProcess
from extproc.local.upstream import EchoUpstream
from extproc_lab.bench.idle_uploads import Http1IdleUploads, Http2IdleUploads

BATCH = 50
FLOOD_SECONDS = 10
NORMAL_REQUESTS = 10


def without_buffer_filter(config: dict) -> None:
    harness.remove_http_filter(config, harness.BUFFER_FILTER)


def breakers(limit: int):
    def change(config: dict) -> None:
        without_buffer_filter(config)
        (threshold,) = harness.find_cluster(config, harness.EXTPROC_CLUSTER)["circuit_breakers"]["thresholds"]
        threshold.update(max_connections=limit, max_requests=limit, max_pending_requests=limit)
    return change


def multiplexed(streams: int):
    def change(config: dict) -> None:
        without_buffer_filter(config)
        options = harness.find_cluster(config, harness.EXTPROC_CLUSTER)["typed_extension_protocol_options"]
        http_options = options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
        http_options["explicit_http_config"]["http2_protocol_options"]["max_concurrent_streams"] = streams
    return change


CONFIGURATIONS = {
    "shipped (buffer filter before ext_proc)": lambda config: None,
    "no buffer filter (before the fix)": without_buffer_filter,
    "no buffer filter, circuit breakers 10,000": breakers(10_000),
    "no buffer filter, 100 streams per sidecar connection": multiplexed(100),
}


def rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0])


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def normal_request(port: int, method: str, path: str, body: bytes | None) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers={"content-type": "application/json"} if body else {})
        response = connection.getresponse()
        response.read()
        return str(response.status)
    except OSError as exc:
        return type(exc).__name__
    finally:
        connection.close()


def normal_client(port: int) -> Counter:
    answers = Counter()
    for _ in range(NORMAL_REQUESTS // 2):
        answers["POST /api " + normal_request(port, "POST", "/api/orders", b'{"sku": "AB-12", "quantity": 2}')] += 1
        answers["GET / " + normal_request(port, "GET", "/hello", None)] += 1
    return answers


class Flood:
    """Holds count idle uploads as an attacker would, from a thread: whenever Envoy has ended some
    (a 504 when the sidecar answered too late, a 500 on overflow), it opens as many again, BATCH
    at a time, until stop()."""

    def __init__(self, envoy: harness.EnvoyProcess, protocol: str, count: int) -> None:
        port = envoy.listen_port
        self.opener = Http1IdleUploads(port) if protocol == "http1" else Http2IdleUploads(port, 100)
        self.envoy, self.count = envoy, count
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._renew, name="flood", daemon=True)
        self.thread.start()

    def _renew(self) -> None:
        while not self.stopped.is_set():
            missing = self.count - held_requests(self.envoy)
            if missing > 0:
                self.opener.open("/form", min(BATCH, missing))
            self.stopped.wait(0.1)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()
        self.opener.close()


def held_requests(envoy: harness.EnvoyProcess) -> int:
    name = "http.ingress.downstream_rq_active"
    return envoy.stats(name).get(name, 0)


def measure(name: str, change, protocol: str, count: int) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="slow-clients-"))
    upstream = EchoUpstream().start()
    sidecar = SidecarProcess(DEMO_POLICY, workdir=workdir, extra_args=["--log-level", "warning"]).start()
    config = harness.render_envoy_config(listen_port=harness.free_port(), admin_port=harness.free_port(),
                                         extproc_port=sidecar.port, upstream_port=upstream.port)
    change(config)
    envoy = harness.EnvoyProcess(config, workdir=workdir).start()
    try:
        sidecar_pid, envoy_pid = sidecar.process.pid, envoy.pid
        assert normal_client(envoy.listen_port)  # warm: pooled connections, first-request costs
        before = {"sidecar": rss_kb(sidecar_pid), "envoy": rss_kb(envoy_pid)}
        flood = Flood(envoy, protocol, count)
        time.sleep(FLOOD_SECONDS)  # the attacker's renewals settle
        held = envoy.stats("cluster.extproc.upstream_rq_active").get("cluster.extproc.upstream_rq_active", 0)
        result = {
            "configuration": name,
            "sidecar streams held": held,
            "normal client": dict(normal_client(envoy.listen_port)),
            "sidecar RSS +MB": round((rss_kb(sidecar_pid) - before["sidecar"]) / 1024, 1),
            "sidecar open files": open_files(sidecar_pid),
            "Envoy RSS +MB": round((rss_kb(envoy_pid) - before["envoy"]) / 1024, 1),
        }
        flood.stop()
        return result
    finally:
        envoy.stop()
        sidecar.stop()
        upstream.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=1100, help="idle uploads to hold")
    parser.add_argument("--protocol", choices=["http1", "http2"], default="http1")
    args = parser.parse_args()
    print(f"{args.idle} idle uploads over {args.protocol}, then {NORMAL_REQUESTS} normal requests")
    for name, change in CONFIGURATIONS.items():
        result = measure(name, change, args.protocol, args.idle)
        print(" | ".join(f"{key}: {value}" for key, value in result.items()), flush=True)


if __name__ == "__main__":
    main()
