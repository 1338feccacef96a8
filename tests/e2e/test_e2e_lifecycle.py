"""Process lifecycle: SIGTERM drains and exits 0; ``--workers 2`` serves from both workers and
stops every process on SIGTERM to the supervisor."""
from __future__ import annotations

import http.client
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from extproc.local.envoy import BUFFER_FILTER, remove_http_filter
from extproc.wire import messages
from extproc.wire.pb import external_processor_pb2_grpc as pb_grpc
from extproc.local.stack import Stack
from tests.support.e2e_support import (
    BLOCKING_POLICY,
    LOOPBACK,
    free_port_pair,
    get,
    grpc_serving,
    marker,
    metric_value,
    parent_pid,
    pids_with_arg,
    register_stack,
    request,
    require_envoy,
    scrape,
    unregister,
    upstream_saw,
    wait_for,
    write_policy,
)

# Fault paths: every test here once through each transport (tests/e2e/conftest.py); the stack
# fixtures take `transport` too, so each transport gets stacks of its own.
pytestmark = pytest.mark.usefixtures("transport")

POLICY = BLOCKING_POLICY

DRAIN_SECONDS = 5.0
MSGS_RECEIVED = "http.ingress.ext_proc.stream_msgs_received"


def _stack(tmp_path, label: str, sidecar_args: list[str], **stack_options):
    require_envoy()
    # The policy file name is unique to this test: it finds the sidecar's processes in /proc.
    config = write_policy(tmp_path / f"policy-{label}-{marker()}.yaml", POLICY)
    s = Stack(config, workdir=tmp_path, sidecar_args=sidecar_args, **stack_options)
    register_stack(f"{label} stack", s)
    return s


@pytest.fixture
def drain_stack(transport, tmp_path):
    # Without the buffer filter, so that a request whose body is still on its way keeps its stream
    # open at the sidecar: the in-flight request below is held there as long as the test needs.
    s = _stack(tmp_path, "drain", ["--drain-seconds", str(DRAIN_SECONDS)],
               envoy_changes=lambda config: remove_http_filter(config, BUFFER_FILTER))
    try:
        s.start()
        yield s
    finally:
        s.stop()
        unregister(s)


def test_sigterm_finishes_the_in_flight_request_then_exits_zero(drain_stack):
    stack = drain_stack
    process = stack.sidecar.process

    def replies_from_sidecar() -> int:
        return stack.envoy.stats(MSGS_RECEIVED).get(MSGS_RECEIVED, 0)

    mark = marker()
    body = b"name=drain&comment=hello"
    before = replies_from_sidecar()
    sock = socket.create_connection((LOOPBACK, stack.listen_port), timeout=15)
    try:
        # Headers only: the sidecar answers them (asking for the body) and waits for the body.
        sock.sendall((f"POST /in-flight?m={mark} HTTP/1.1\r\nHost: e2e\r\n"
                      f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n").encode())
        wait_for(lambda: replies_from_sidecar() > before, 5, what="the sidecar's reply to the request headers")

        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        wait_for(lambda: "draining" in stack.sidecar.log_text(), 5, what="'draining' in the sidecar log")
        assert process.poll() is None, "the sidecar exited with a request in flight"

        sock.sendall(body)  # the rest of the in-flight request, after SIGTERM
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        data = resp.read()
    finally:
        sock.close()
    assert resp.status == 200, (resp.status, data)
    (record,) = upstream_saw(stack, mark)
    assert record["body"] == body

    code = process.wait(timeout=DRAIN_SECONDS + 5)
    assert code == 0
    log = stack.sidecar.log_text()
    assert log.index("draining") < log.index("stopped"), log[-2000:]
    assert time.monotonic() - signalled < DRAIN_SECONDS + 3


def test_sigterm_on_an_idle_sidecar_exits_zero_quickly(drain_stack):
    stack = drain_stack
    assert get(stack.listen_port, "/warm").status == 200
    start = time.monotonic()
    code = stack.sidecar.stop()
    assert code == 0
    assert time.monotonic() - start < DRAIN_SECONDS, "an idle sidecar waited out its whole drain period"
    log = stack.sidecar.log_text()
    assert "draining" in log and "stopped" in log, log[-2000:]


# -- --workers 2 -------------------------------------------------------------------------------


def _direct_check(address: str, path: str) -> None:
    """One ext_proc stream on a new TCP connection, straight to the sidecar port (not via Envoy:
    Envoy multiplexes everything over one HTTP/2 connection, which the kernel gives to one worker)."""
    message = messages.request_headers("GET", path, authority="e2e")
    with grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        replies = list(pb_grpc.ExternalProcessorStub(channel).Process(iter([message]), timeout=5))
    assert len(replies) == 1 and replies[0].HasField("request_headers"), replies


@pytest.fixture(scope="module")
def workers_stack(transport, tmp_path_factory):
    metrics_port = free_port_pair()  # worker i serves /metrics on metrics_port + i
    stack = _stack(tmp_path_factory.mktemp("workers"), "workers",
                   ["--workers", "2", "--drain-seconds", "2", "--metrics-address", f"127.0.0.1:{metrics_port}"])
    stack.metrics_port = metrics_port
    config = str(stack.policy)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        unregister(stack)
        for pid in pids_with_arg(config):  # never leave a worker behind, even on failure
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def _decisions(stack, index: int) -> float:
    try:
        text = scrape(stack.metrics_port + index)
    except OSError:
        return 0.0  # this worker is still starting
    return metric_value(text, "extproc_decisions_total", route="default")


def test_traffic_through_envoy_reaches_both_workers(workers_stack):
    stack = workers_stack
    wait_for(lambda: _decisions(stack, 0) is not None and grpc_serving(stack.sidecar.address), 10, what="workers")
    time.sleep(1.0)  # both workers listening
    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(lambda i: get(stack.listen_port, f"/spread/{i}").status, range(300)))
    assert statuses == [200] * 300
    assert _decisions(stack, 0) > 0 and _decisions(stack, 1) > 0, (_decisions(stack, 0), _decisions(stack, 1))


def test_two_workers_both_serve_and_sigterm_to_the_supervisor_stops_all(workers_stack):
    stack = workers_stack
    config = str(stack.policy)
    supervisor = stack.sidecar.process.pid

    def worker_pids() -> list[int] | None:
        pids = [pid for pid in pids_with_arg(config) if pid != supervisor]
        return pids if len(pids) == 2 else None

    workers = wait_for(worker_pids, 10, what="two worker processes")
    assert all(parent_pid(pid) == supervisor for pid in workers)

    # Through Envoy: every request succeeds (or is denied) as the policy says.
    for i in range(10):
        mark = marker()
        assert get(stack.listen_port, f"/w/{i}?m={mark}").status == 200
        assert len(upstream_saw(stack, mark)) == 1
    assert get(stack.listen_port, "/blocked").status == 403
    assert request(stack.listen_port, "POST", "/w", body=b"a=EVIL-PAYLOAD",
                   headers=[("content-type", "application/x-www-form-urlencoded")]).status == 403

    # Directly, on fresh connections, until the kernel has spread them over both workers.
    def both_served() -> bool:
        for _ in range(4):
            _direct_check(stack.sidecar.address, "/direct")
        return _decisions(stack, 0) > 0 and _decisions(stack, 1) > 0

    wait_for(both_served, 15, interval=0.1, what="decisions recorded by both workers")

    # A worker that dies is replaced; the service comes back without operator action.
    os.kill(workers[0], signal.SIGKILL)
    replaced = wait_for(lambda: (pids := worker_pids()) and workers[0] not in pids and pids, 15,
                        what="the supervisor to restart the killed worker")
    assert workers[1] in replaced
    # The replacement is a new process that needs a moment to import and bind (third "serving").
    wait_for(lambda: stack.sidecar.log_text().count('"msg":"serving"') >= 3, 15, what="the replacement to serve")
    wait_for(lambda: get(stack.listen_port, "/after-crash").status == 200, 10, what="service after the crash")
    for i in range(5):
        assert get(stack.listen_port, f"/after-crash/{i}").status == 200

    code = stack.sidecar.stop()  # SIGTERM to the supervisor only
    assert code == 0
    wait_for(lambda: pids_with_arg(config) == [], 5, what="all sidecar processes to exit")
    assert not grpc_serving(stack.sidecar.address, timeout=0.5)
    log = stack.sidecar.log_text()
    assert log.count('"msg":"draining"') == 2 and log.count('"msg":"stopped"') == 2, log[-3000:]
    assert get(stack.listen_port, "/after").status == 500  # fail closed once all are gone
