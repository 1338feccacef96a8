"""Which transport `extproc serve` runs where the native front was not built at install (no
system gRPC): auto falls back to grpc.aio and serves; native asked for explicitly is an error that
says why, never a silent fallback."""
from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from extproc.config.compile import load_policy
from extproc.config.store import PolicyStore
from extproc.local.envoy import free_port
from extproc.observability.metrics import Metrics
from extproc.wire import native_front
from extproc.wire.server import ServeOptions, serve

POLICY = "version: 1\ndefaults:\n  layers:\n    rules: {rules: []}\n"


@pytest.fixture
def unbuilt(monkeypatch):
    monkeypatch.setattr(native_front, "_FRONT", None)
    monkeypatch.setattr(native_front, "_WHY_NOT", "no _front module (test)")


def store(tmp_path) -> PolicyStore:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return PolicyStore(load_policy(path), path)


def test_native_asked_for_but_not_built_is_an_error_that_says_why(unbuilt, tmp_path, caplog):
    options = ServeOptions(address=f"127.0.0.1:{free_port()}", transport="native", drain_seconds=0.1)
    assert asyncio.run(asyncio.wait_for(serve(store(tmp_path), Metrics(), options), 30)) == 1
    assert "the native front is not built (no _front module (test))" in caplog.text


def test_auto_without_the_native_front_serves_on_grpc_aio(unbuilt, tmp_path):
    async def check() -> str:
        address = f"127.0.0.1:{free_port()}"
        stop = asyncio.Event()
        task = asyncio.create_task(serve(store(tmp_path), Metrics(), ServeOptions(
            address=address, transport="auto", drain_seconds=0.1), stop=stop))
        try:
            async with grpc.aio.insecure_channel(address) as channel:
                await asyncio.wait_for(channel.channel_ready(), 30)
                reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
                return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        finally:
            stop.set()
            assert await asyncio.wait_for(task, 30) == 0

    assert asyncio.run(check()) == "SERVING"
