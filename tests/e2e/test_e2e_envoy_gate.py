"""``serve --ready-when-envoy-filter``: the sidecar is ready only while the Envoy whose admin it
polls runs the ext_proc filter, fail closed. A real Envoy on a loopback admin port, started with
and without the filter, and stopped (a pod without its proxy); liveness stays SERVING throughout,
so the kubelet never restarts the sidecar for what its proxy lacks."""
from __future__ import annotations

import subprocess
import sys

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from extproc.local.envoy import EXTPROC_FILTER, EnvoyProcess, extproc_filter, free_port, remove_http_filter, \
    render_envoy_config
from extproc.wire.server import LIVENESS_SERVICE
from tests.support.e2e_support import BLOCKING_POLICY, register_log, require_envoy, unregister, wait_for, write_policy

DEADLINE_S = 60  # the gate polls every 5 s: generous for a loaded machine, never a speed claim


def health(address: str, service: str = "") -> str:
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service),
                                                              timeout=2)
        except grpc.RpcError as exc:
            return exc.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


class GatedSidecar:
    def __init__(self, tmp_path, admin_port: int) -> None:
        self.address = f"127.0.0.1:{free_port()}"
        self.log_path = tmp_path / "sidecar.log"
        policy = write_policy(tmp_path / "policy.yaml", BLOCKING_POLICY)
        command = [sys.executable, "-m", "extproc", "serve", "--config", str(policy), "--address", self.address,
                   "--drain-seconds", "0", "--ready-when-envoy-filter", f"http://127.0.0.1:{admin_port}"]
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
        register_log("gated sidecar", self, self.log)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ready(self) -> str:
        return health(self.address)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        unregister(self)


def envoy(tmp_path, admin_port: int, sidecar: GatedSidecar, variant: str) -> EnvoyProcess:
    config = render_envoy_config(listen_port=free_port(), admin_port=admin_port,
                                 extproc_port=int(sidecar.address.rpartition(":")[2]), upstream_port=free_port())
    if variant == "without the filter":
        remove_http_filter(config, EXTPROC_FILTER)
    elif variant == "failing open":
        extproc_filter(config)["failure_mode_allow"] = True
    workdir = tmp_path / variant.replace(" ", "-")
    workdir.mkdir(exist_ok=True)
    return EnvoyProcess(config, workdir=workdir).start()


@pytest.fixture
def gated(tmp_path):
    require_envoy()
    admin_port = free_port()
    sidecar = GatedSidecar(tmp_path, admin_port)
    try:
        wait_for(lambda: health(sidecar.address, LIVENESS_SERVICE) == "SERVING", DEADLINE_S, what="liveness")
        yield sidecar, admin_port
    finally:
        sidecar.stop()


def reason_logged(sidecar: GatedSidecar, reason: str, after: int) -> bool:
    return reason in sidecar.log()[after:]


def test_ready_only_while_the_envoy_runs_the_filter_fail_closed(gated, tmp_path):
    sidecar, admin_port = gated
    # No proxy in the pod (no injection): no admin answers.
    wait_for(lambda: reason_logged(sidecar, "Envoy admin", 0), DEADLINE_S, what="the missing admin to be seen")
    assert sidecar.ready() == "NOT_SERVING"

    for variant, reason in (("without the filter", f"no {EXTPROC_FILTER} filter"),
                            ("failing open", "fails open (failure_mode_allow)")):
        mark = len(sidecar.log())
        proxy = envoy(tmp_path, admin_port, sidecar, variant)
        try:
            wait_for(lambda: reason_logged(sidecar, reason, mark), DEADLINE_S, what=f"Envoy {variant} to be seen")
            assert sidecar.ready() == "NOT_SERVING"
        finally:
            proxy.stop()

    proxy = envoy(tmp_path, admin_port, sidecar, "with the filter")
    try:
        wait_for(lambda: sidecar.ready() == "SERVING", DEADLINE_S, what="ready with the filter")
    finally:
        proxy.stop()
    # The proxy goes away (or loses its filter) later: not ready again, still alive.
    wait_for(lambda: sidecar.ready() == "NOT_SERVING", DEADLINE_S, what="not ready once the proxy is gone")
    assert health(sidecar.address, LIVENESS_SERVICE) == "SERVING"
    assert sidecar.process.poll() is None
