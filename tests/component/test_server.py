"""The real server in-process, through both transports (grpc.aio and the native front, each
test once per transport): health, bidi exchanges, errors, cancels, reload, stop.

pytest-asyncio is not a dependency: each test runs its body with ``asyncio.run``. Every server
is started by ``running()``, which always sets the stop event and waits for ``serve()``.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import orjson
from grpc_health.v1 import health_pb2, health_pb2_grpc

from extproc.config.compile import load_policy, parse_policy
from extproc.local.envoy import free_port
from extproc.observability.metrics import Metrics
from extproc.wire import messages
from extproc.wire.pb import processing_mode_pb2
from extproc.wire.pb import external_processor_pb2 as pb
from extproc.wire.pb import external_processor_pb2_grpc as pb_grpc
from extproc.config.store import PolicyStore
from extproc.wire.server import SERVICE_NAME, ServeOptions, serve
from tests.support import REPO
from tests.support.transports import TRANSPORTS, using

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
Mode = processing_mode_pb2.ProcessingMode.BodySendMode
TIMEOUT = 5.0  # per RPC / wait; the whole file runs in well under that

# Policy A denies /a on headers and bodies containing "evil-a"; B does the same for "b".
# Both read the body, so a POST waits for it; the policy that decides is visible in the result.
# deadline_ms: see test_body_sent_a_little_after_headers_is_not_503 for the default deadline.
POLICY_TEMPLATE = """\
version: 1
defaults:
  deadline_ms: 60000
  layers:
    rules:
      rules:
        - id: deny-path-{x}
          match: {{path: {{prefix: /{x}}}}}
          action: deny
        - id: deny-body-{x}
          match: {{any_arg: {{contains: evil-{x}}}}}
          action: deny
        - id: tag-curl
          match: {{headers: {{user-agent: {{prefix: 'curl/'}}}}}}
          action: tag
          tags: [automation]
"""
POLICY_A = POLICY_TEMPLATE.format(x="a")
POLICY_B = POLICY_TEMPLATE.format(x="b") + "# policy B\n"  # a different size as well


# -- helpers --------------------------------------------------------------------------------


@pytest.fixture(autouse=True, params=TRANSPORTS)
def transport(request):
    """Every test here once per transport; the servers they start read EXTPROC_TRANSPORT."""
    with using(request.param):
        yield request.param


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 15))


def write_policy(path: Path, text: str) -> None:
    """Replace the file atomically (a new inode), as a kubelet ConfigMap update does."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def store_for(path: Path, text: str) -> PolicyStore:
    write_policy(path, text)
    return PolicyStore(load_policy(path), path)


def headers_msg(method="GET", path="/", headers=(("user-agent", "curl/8.5"),), *, route="test", **options):
    """A request_headers message from this file's client, on the route named `route`."""
    return messages.request_headers(method, path, headers,
                                    attributes={"source.address": "1.2.3.4:5555", "xds.route_name": route}, **options)


def form_post(path="/submit", **kwargs):
    headers = (("user-agent", "test"), ("content-type", "application/x-www-form-urlencoded"))
    return headers_msg("POST", path, headers, **kwargs)


@dataclass
class Running:
    address: str
    channel: grpc.aio.Channel
    stop: asyncio.Event
    task: asyncio.Task
    metrics: Metrics

    @property
    def stub(self) -> pb_grpc.ExternalProcessorStub:
        return pb_grpc.ExternalProcessorStub(self.channel)

    @property
    def health(self) -> health_pb2_grpc.HealthStub:
        return health_pb2_grpc.HealthStub(self.channel)

    def events(self, event: str) -> float:
        return self.metrics.registry.get_sample_value("extproc_stream_events_total", {"event": event}) or 0.0

    def reloads(self, result: str) -> float:
        return self.metrics.registry.get_sample_value("extproc_config_reloads_total", {"result": result}) or 0.0

    async def check(self, service: str = "") -> int:
        reply = await self.health.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT)
        return reply.status

    async def exchange(self, *messages: pb.ProcessingRequest) -> tuple[list[pb.ProcessingResponse], grpc.StatusCode]:
        """Send each message and read its reply (none after a deny), then half-close."""
        call = self.stub.Process(timeout=TIMEOUT)
        replies = []
        for message in messages:
            await call.write(message)
            reply = await call.read()
            assert reply is not grpc.aio.EOF
            replies.append(reply)
            if reply.WhichOneof("response") == "immediate_response":
                break
        await call.done_writing()
        assert await call.read() is grpc.aio.EOF
        return replies, await call.code()


@contextlib.asynccontextmanager
async def running(store: PolicyStore, metrics: Metrics | None = None, observers=None, **options):
    metrics = metrics or Metrics()
    address = f"127.0.0.1:{free_port()}"
    options.setdefault("drain_seconds", 1.0)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(store, metrics, ServeOptions(address=address, **options), stop=stop,
                                     observers=observers))
    channel = grpc.aio.insecure_channel(address)
    try:
        ready = asyncio.create_task(channel.channel_ready())
        done, _ = await asyncio.wait({ready, task}, timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            ready.cancel()
            raise AssertionError(f"serve() returned {task.result()} before serving on {address}")
        assert ready in done, f"server on {address} not ready"
        yield Running(address, channel, stop, task, metrics)
    finally:
        stop.set()
        await channel.close()
        if not task.done():
            assert await asyncio.wait_for(task, TIMEOUT) == 0


async def poll(predicate, timeout: float = 3.0, interval: float = 0.02):
    """Await until predicate() (sync or async) is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(interval)


def policy_store(tmp_path: Path, text: str = POLICY_A) -> PolicyStore:
    return store_for(tmp_path / "policy.yaml", text)


# -- health ---------------------------------------------------------------------------------


def test_health_serving_for_server_and_ext_proc_service(tmp_path):
    async def body():
        async with running(policy_store(tmp_path)) as srv:
            assert await srv.check("") == SERVING
            assert await srv.check(SERVICE_NAME) == SERVING
            assert SERVICE_NAME == "envoy.service.ext_proc.v3.ExternalProcessor"

    run(body())


# -- full exchanges -------------------------------------------------------------------------


def test_allow_exchange_with_header_mutations(tmp_path):
    async def body():
        async with running(policy_store(tmp_path)) as srv:
            replies, code = await srv.exchange(headers_msg(path="/ok"))
            assert code is grpc.StatusCode.OK
            (reply,) = replies
            assert reply.WhichOneof("response") == "request_headers"
            options = reply.request_headers.response.header_mutation.set_headers
            assert {o.header.key: o.header.raw_value for o in options}["x-extproc-tags"] == b"automation"
            assert srv.metrics.registry.get_sample_value(
                "extproc_decisions_total", {"route": "default", "action": "allow"}
            ) == 1

    run(body())


def test_deny_exchange_on_headers(tmp_path):
    async def body():
        async with running(policy_store(tmp_path)) as srv:
            replies, code = await srv.exchange(headers_msg(path="/a/secret", headers=(("x-request-id", "rid-1"),)))
            assert code is grpc.StatusCode.OK
            immediate = replies[-1].immediate_response
            assert immediate.status.code == 403
            assert orjson.loads(immediate.body) == {"error": "forbidden", "request_id": "rid-1"}
            assert srv.metrics.registry.get_sample_value(
                "extproc_decisions_total", {"route": "default", "action": "deny"}
            ) == 1

    run(body())


def test_body_exchange_mode_override_then_deny_and_allow(tmp_path):
    async def body():
        async with running(policy_store(tmp_path)) as srv:
            replies, code = await srv.exchange(form_post(), messages.request_body(b"q=evil-a"))
            assert code is grpc.StatusCode.OK
            assert replies[0].mode_override.request_body_mode == Mode.BUFFERED_PARTIAL
            assert replies[1].immediate_response.status.code == 403

            replies, code = await srv.exchange(form_post(), messages.request_body(b"q=fine"))
            assert code is grpc.StatusCode.OK
            kinds = [r.WhichOneof("response") for r in replies]
            assert kinds == ["request_headers", "request_body"]

    run(body())


def test_many_concurrent_streams(tmp_path):
    async def body():
        async with running(policy_store(tmp_path)) as srv:
            results = await asyncio.gather(
                *(srv.exchange(headers_msg(path="/a" if i % 2 else "/ok")) for i in range(20))
            )
            kinds = [replies[-1].WhichOneof("response") for replies, _ in results]
            assert kinds == ["request_headers", "immediate_response"] * 10
            assert all(code is grpc.StatusCode.OK for _, code in results)

    run(body())


# -- protocol errors and cancels ------------------------------------------------------------


def test_protocol_error_is_invalid_argument_and_server_keeps_serving(tmp_path):
    async def body():
        async with running(policy_store(tmp_path)) as srv:
            call = srv.stub.Process(timeout=TIMEOUT)
            await call.write(messages.request_body(b"first"))
            try:
                reply = await call.read()
            except grpc.aio.AioRpcError as exc:
                reply = exc
            assert not isinstance(reply, pb.ProcessingResponse), reply
            assert await call.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert srv.events("out_of_order") == 1
            # The next stream on the same server works.
            replies, code = await srv.exchange(headers_msg(path="/ok"))
            assert code is grpc.StatusCode.OK and replies[0].WhichOneof("response") == "request_headers"
            assert await srv.check() == SERVING

    run(body())


def test_empty_message_is_invalid_argument(tmp_path):
    async def body():
        async with running(policy_store(tmp_path)) as srv:
            call = srv.stub.Process(timeout=TIMEOUT)
            await call.write(pb.ProcessingRequest())
            assert await call.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert srv.events("empty_message") == 1

    run(body())


def test_spurious_messages_after_deny_are_counted(tmp_path):
    async def body():
        async with running(policy_store(tmp_path)) as srv:
            call = srv.stub.Process(timeout=TIMEOUT)
            await call.write(headers_msg(path="/a"))
            assert (await call.read()).WhichOneof("response") == "immediate_response"
            await call.write(messages.response_headers())
            await call.done_writing()
            assert await call.read() is grpc.aio.EOF  # the late message got no reply
            assert await call.code() is grpc.StatusCode.OK
            assert srv.events("spurious_message") == 1

    run(body())


async def _cancel_mid_stream(srv: Running) -> None:
    call = srv.stub.Process(timeout=TIMEOUT)
    await call.write(form_post())  # the server now waits for a body that never comes
    assert (await call.read()).HasField("mode_override")
    call.cancel()
    # The handler has finished once its stream-end bookkeeping ran (one event or another).
    assert await poll(lambda: srv.events("cancelled") + srv.events("ended_awaiting_body") >= 1)


def test_client_cancel_mid_stream_leaves_server_healthy(tmp_path):
    async def body():
        async with running(policy_store(tmp_path)) as srv:
            await _cancel_mid_stream(srv)
            assert srv.events("internal_error") == 0
            assert await srv.check() == SERVING
            replies, code = await srv.exchange(headers_msg(path="/a"))
            assert code is grpc.StatusCode.OK and replies[0].HasField("immediate_response")

    run(body())


def test_stream_closed_while_awaiting_body_is_counted(tmp_path):
    # Envoy half-closes without sending the body when allow_mode_override is off.
    async def body():
        async with running(policy_store(tmp_path)) as srv:
            replies, code = await srv.exchange(form_post())
            assert code is grpc.StatusCode.OK and replies[0].HasField("mode_override")
            assert await poll(lambda: srv.events("ended_awaiting_body") == 1)

    run(body())


# -- hot reload -----------------------------------------------------------------------------


def _decided_status(replies: list[pb.ProcessingResponse]) -> int:
    last = replies[-1]
    return last.immediate_response.status.code if last.HasField("immediate_response") else 200


def test_hot_reload_swaps_policy_and_keeps_last_good_on_error(tmp_path):
    path = tmp_path / "policy.yaml"

    async def body():
        async with running(store_for(path, POLICY_A), reload_interval=0.05) as srv:
            replies, _ = await srv.exchange(headers_msg(path="/b"))
            assert _decided_status(replies) == 200  # A does not deny /b

            write_policy(path, POLICY_B)

            async def b_serves():
                replies, _ = await srv.exchange(headers_msg(path="/b"))
                return _decided_status(replies) == 403

            assert await poll(b_serves), "policy B never served"
            assert srv.reloads("ok") == 1
            replies, _ = await srv.exchange(headers_msg(path="/a"))
            assert _decided_status(replies) == 200  # A's rule is gone

            write_policy(path, POLICY_B.replace("action: deny", "action: explode", 1))
            assert await poll(lambda: srv.reloads("error") == 1), "invalid policy not counted"
            replies, _ = await srv.exchange(headers_msg(path="/b"))
            assert _decided_status(replies) == 403  # B, the last good policy, still serves
            await asyncio.sleep(0.2)  # several more polls: the bad file is not re-counted
            assert srv.reloads("error") == 1
            assert await srv.check() == SERVING

            write_policy(path, POLICY_A)  # recovery after the error
            assert await poll(lambda: srv.reloads("ok") == 2)
            replies, _ = await srv.exchange(headers_msg(path="/a"))
            assert _decided_status(replies) == 403

    run(body())


def test_hot_reload_of_deleted_file_keeps_serving(tmp_path):
    path = tmp_path / "policy.yaml"

    async def body():
        async with running(store_for(path, POLICY_A), reload_interval=0.05) as srv:
            path.unlink()
            assert await poll(lambda: srv.reloads("error") == 1)
            replies, _ = await srv.exchange(headers_msg(path="/a"))
            assert _decided_status(replies) == 403

    run(body())


def test_in_place_rewrite_is_reloaded(tmp_path):
    # Editors and `cp` rewrite the same inode; size differs here, so the signature changes.
    path = tmp_path / "policy.yaml"

    async def body():
        async with running(store_for(path, POLICY_A), reload_interval=0.05) as srv:
            path.write_text(POLICY_B)
            assert await poll(lambda: srv.reloads("ok") == 1)

    run(body())


def test_stream_opened_before_reload_finishes_on_its_policy(tmp_path):
    path = tmp_path / "policy.yaml"

    async def body():
        async with running(store_for(path, POLICY_A), reload_interval=0.05) as srv:
            call = srv.stub.Process(timeout=TIMEOUT)
            await call.write(form_post())
            assert (await call.read()).HasField("mode_override")  # A needs the body

            write_policy(path, POLICY_B)
            assert await poll(lambda: srv.reloads("ok") == 1), "reload did not happen"

            await call.write(messages.request_body(b"q=evil-a"))
            reply = await call.read()
            assert reply.immediate_response.status.code == 403  # decided by A, the old policy
            await call.done_writing()
            assert await call.code() is grpc.StatusCode.OK

            # A new stream gets B: evil-a passes, evil-b is denied.
            replies, _ = await srv.exchange(form_post(), messages.request_body(b"q=evil-a"))
            assert _decided_status(replies) == 200
            replies, _ = await srv.exchange(form_post(), messages.request_body(b"q=evil-b"))
            assert _decided_status(replies) == 403

    run(body())


# -- what the store compiles ------------------------------------------------------------------


def test_a_file_caught_mid_write_is_not_compiled_until_it_settles(tmp_path):
    path = tmp_path / "policy.yaml"
    store = store_for(path, POLICY_A)
    serving = store.current
    # B's first part is a valid policy that denies /b but not bodies with evil-b.
    cut = POLICY_B.index("        - id: deny-body-b")
    path.write_text(POLICY_B[:cut])  # in place, as an editor saves
    assert not store.changed()  # first sight of a change: wait one poll
    path.write_text(POLICY_B)  # the rest arrives
    assert not store.changed()  # it changed again: wait again
    assert store.current is serving
    assert store.changed()  # the same as at the previous poll: settled
    assert store.reload() == "ok"
    assert [rule.id for rule in store.current.default.slots[0].layer.static.rules] == [
        "deny-path-b", "deny-body-b", "tag-curl"]
    assert not store.changed()


def test_a_file_that_changes_while_it_is_read_is_read_again(tmp_path):
    path = tmp_path / "policy.yaml"
    store = store_for(path, POLICY_A)

    class Growing(type(path)):
        """The writer appends while the store reads."""

        def read_bytes(self) -> bytes:
            data = super().read_bytes()
            with open(self, "a") as handle:
                handle.write("# still writing\n")
            return data

    write_policy(path, POLICY_B)
    store.path = Growing(path)
    assert not store.changed() and store.changed()
    assert store.reload() == "moving"  # not compiled: what was read may be half a file
    assert store.current.digest == hashlib.sha256(POLICY_A.encode()).hexdigest()
    store.path = path
    assert not store.changed() and store.changed()  # the change is still seen, once settled
    assert store.reload() == "ok"
    assert store.current.digest == hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_same_bytes_written_again_are_not_compiled_again(tmp_path, monkeypatch):
    from extproc.config import store as reload_module

    path = tmp_path / "policy.yaml"
    store = store_for(path, POLICY_A)
    serving = store.current
    monkeypatch.setattr(reload_module, "parse_policy", lambda *_a: pytest.fail("compiled the same bytes"))
    write_policy(path, POLICY_A)  # a new inode, the same content
    assert not store.changed() and store.changed()
    assert store.reload() == "unchanged" and store.current is serving


# -- graceful stop --------------------------------------------------------------------------


def test_stop_event_turns_health_not_serving_and_serve_returns_0(tmp_path):
    async def body():
        async with running(policy_store(tmp_path), drain_seconds=0.5) as srv:
            watch = srv.health.Watch(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=TIMEOUT)
            assert (await watch.read()).status == SERVING
            srv.stop.set()
            assert (await watch.read()).status == NOT_SERVING
            assert await asyncio.wait_for(srv.task, TIMEOUT) == 0

    run(body())


def test_health_check_during_drain_reports_not_serving(tmp_path):
    async def body():
        async with running(policy_store(tmp_path), drain_seconds=1.0, shutdown_delay=0.5) as srv:
            call = srv.stub.Process(timeout=TIMEOUT)
            await call.write(form_post())  # in flight: keeps serve() draining
            assert (await call.read()).HasField("mode_override")
            srv.stop.set()
            await asyncio.sleep(0.1)
            assert not srv.task.done()
            try:
                status = await srv.check()
            finally:
                await call.done_writing()
            assert status == NOT_SERVING

    run(body())


def test_in_flight_stream_finishes_during_drain(tmp_path):
    async def body():
        async with running(policy_store(tmp_path), drain_seconds=3.0) as srv:
            call = srv.stub.Process(timeout=TIMEOUT)
            await call.write(form_post())
            assert (await call.read()).HasField("mode_override")
            srv.stop.set()
            await asyncio.sleep(0.1)  # serve() is now draining
            assert not srv.task.done()
            await call.write(messages.request_body(b"q=evil-a"))
            assert (await call.read()).immediate_response.status.code == 403
            await call.done_writing()
            assert await call.code() is grpc.StatusCode.OK
            started = time.monotonic()
            assert await asyncio.wait_for(srv.task, TIMEOUT) == 0
            assert time.monotonic() - started < 2.0  # no need to wait out the grace period

    run(body())


def test_serve_returns_0_without_a_policy_file():
    async def body():
        store = PolicyStore(parse_policy(POLICY_A))
        async with running(store) as srv:
            assert await srv.check() == SERVING
        assert srv.task.result() == 0

    run(body())


def test_serve_returns_1_when_it_cannot_listen():
    async def body():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            options = ServeOptions(address=f"127.0.0.1:{port}")
            stop = asyncio.Event()
            try:
                store = PolicyStore(parse_policy(POLICY_A))
                rc = await asyncio.wait_for(serve(store, Metrics(), options, stop), TIMEOUT)
            finally:
                stop.set()
            assert rc == 1

    run(body())


# -- the shipped demo policy over the wire --------------------------------------------------

DEMO_POLICY = REPO / "deploy" / "policy" / "demo.yaml"


def test_body_sent_a_little_after_headers_is_not_503():
    # Regression: demo.yaml's api route has a 2 ms budget; it must not count the upload time.
    async def body():
        store = PolicyStore(load_policy(DEMO_POLICY), DEMO_POLICY)
        async with running(store) as srv:
            post = headers_msg("POST", "/v1/items", (("content-type", "application/x-www-form-urlencoded"),),
                               route="api")
            call = srv.stub.Process(timeout=TIMEOUT)
            await call.write(post)
            assert (await call.read()).HasField("mode_override")
            await asyncio.sleep(0.02)  # the client is still uploading
            await call.write(messages.request_body(b"name=widget&qty=1"))
            reply = await call.read()
            await call.done_writing()
            assert await call.code() is grpc.StatusCode.OK
            assert reply.WhichOneof("response") == "request_body", reply.immediate_response.body

    run(body())


def test_the_server_leaves_no_reference_cycle_per_stream(tmp_path, monkeypatch):
    import gc
    import weakref

    from extproc.wire import session as server_module

    streams = []

    class Tracked(server_module.StreamProcessor):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            streams.append(weakref.ref(self))

    monkeypatch.setattr(server_module, "StreamProcessor", Tracked)

    async def body():
        async with running(policy_store(tmp_path)) as srv:
            for path in ("/ok", "/a/denied"):
                _replies, code = await srv.exchange(headers_msg(path=path))
                assert code == grpc.StatusCode.OK
            # Freed by reference counting once the RPC is over, not left to the cycle collector.
            assert await poll(lambda: all(ref() is None for ref in streams))

    gc.collect()
    gc.disable()
    try:
        run(body())
    finally:
        gc.enable()
    assert len(streams) == 2
