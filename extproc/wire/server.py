"""The gRPC transport: receive, convert, dispatch, reply. Nothing else lives here."""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from extproc.wire.listen import TlsFiles, parse_address
from extproc.observability.metrics import Metrics
from extproc.wire.pb import external_processor_pb2_grpc as pb_grpc
from extproc.config.store import PolicyStore, watch
from extproc.wire import convert
from extproc.wire.answers import report_handler
from extproc.wire.plain import END_INTERNAL_ERROR, END_OK, END_PROTOCOL_ERROR
from extproc.wire.session import Observers, Sidecar
from extproc.core.answer_watch import AnswerWatch

log = logging.getLogger(__name__)
SERVICE_NAME = "envoy.service.ext_proc.v3.ExternalProcessor"
# The health service name for liveness probes: SERVING while the process runs (until it drains),
# whatever readiness says. "" and SERVICE_NAME are readiness: they also wait for the Envoy gate.
LIVENESS_SERVICE = "liveness"
TRANSPORTS = ("auto", "native", "python")


class ExternalProcessor(pb_grpc.ExternalProcessorServicer):
    """The grpc.aio transport: each message converted to plain values for the stream's Session,
    each Reply to protobuf."""

    def __init__(self, store: PolicyStore, metrics: Metrics, observers: Observers | None = None) -> None:
        self.sidecar = Sidecar(store, metrics, observers)

    async def Process(self, request_iterator, context: grpc.aio.ServicerContext):  # noqa: N802 (gRPC name)
        session = self.sidecar.open(tuple(context.invocation_metadata() or ()))
        cancelled = False
        try:
            async for message in request_iterator:
                reply, end = session.message(*convert.message_values(message))
                if reply is not None:
                    yield convert.to_pb(reply)
                if end == END_PROTOCOL_ERROR:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "ext_proc protocol error")
                if end == END_INTERNAL_ERROR:
                    await context.abort(grpc.StatusCode.INTERNAL, "internal error")
                if end == END_OK:
                    break  # ends the RPC: Envoy carries on without this stream
        except asyncio.CancelledError:  # Envoy reset the stream: client gone or message timeout
            cancelled = True
            raise
        finally:
            session.close(cancelled)

    def answer_read(self, watch: AnswerWatch | None) -> None:
        self.sidecar.answer_read(watch)


@dataclass(frozen=True)
class ServeOptions:
    address: str = "127.0.0.1:50051"  # or unix:/path; extproc.wire.listen decides what may be given
    tls: TlsFiles | None = None  # mutual TLS on the ext_proc port (server cert, required client cert)
    health_address: str | None = None  # a second port serving only gRPC health (kubelet probes)
    reload_interval: float = 1.0
    drain_seconds: float = 10.0
    # After SIGTERM, keep accepting streams this long while health says NOT_SERVING, so that
    # whoever routes to us (Envoy health checks, kubelet) notices before the port closes.
    shutdown_delay: float = 0.0
    # Envoy admin URL: ready only while that Envoy runs our filter, fail closed (extproc/wire/envoy_gate.py)
    ready_when_envoy_filter: str | None = None
    # auto: the native front when it was built at install (extproc/wire/native_front.py), else
    # grpc.aio; native: the front or an error; python: grpc.aio.
    transport: str = field(default_factory=lambda: os.environ.get("EXTPROC_TRANSPORT", "auto"))


async def serve(store: PolicyStore, metrics: Metrics, options: ServeOptions, stop: asyncio.Event | None = None,
                observers: Observers | None = None) -> int:
    """Serve until SIGTERM/SIGINT (or ``stop`` is set), then drain in-flight streams."""
    stop = stop or asyncio.Event()
    observers = observers or Observers()
    try:
        return await _serve(store, metrics, options, stop, observers)
    finally:
        observers.close()


async def _serve(store: PolicyStore, metrics: Metrics, options: ServeOptions, stop: asyncio.Event,
                 observers: Observers) -> int:
    try:
        transport = _transport(store, metrics, options, observers)
        port = await transport.start()
    except RuntimeError as exc:  # grpc names no port: say both
        log.error("cannot listen on %s (health: %s): %s", options.address, options.health_address, exc)
        return 1
    _restrict_socket(options.address)
    await transport.set_health(LIVENESS_SERVICE, True)
    await _set_ready(transport, not options.ready_when_envoy_filter)
    gate = _start_envoy_gate(options.ready_when_envoy_filter, transport)
    _install_signal_handlers(stop)
    log.info(
        "serving",
        extra={"address": options.address, "port": port, "mtls": options.tls is not None,
               "health_address": options.health_address, "policy": store.current.digest[:12],
               "transport": transport.name, "routes": store.current.summary()},
    )
    watcher = None
    if store.path is not None:
        watcher = asyncio.create_task(watch(store, options.reload_interval, _count_reload(metrics, store)))
    await stop.wait()
    log.info("draining", extra={"grace_seconds": options.drain_seconds, "delay_seconds": options.shutdown_delay})
    await transport.enter_graceful_shutdown()  # health checks fail first, then we stop
    for task in (watcher, gate):
        if task is not None:
            task.cancel()
    if options.shutdown_delay > 0:
        await asyncio.sleep(options.shutdown_delay)
    await transport.stop(options.drain_seconds)
    log.info("stopped")
    return 0


def _transport(store: PolicyStore, metrics: Metrics, options: ServeOptions, observers: Observers):
    """The transport asked for: the native front when built (auto) or asked, else grpc.aio."""
    from extproc.wire import native_front

    if options.transport not in TRANSPORTS:
        raise RuntimeError(f"unknown transport {options.transport!r} (one of {', '.join(TRANSPORTS)})")
    if options.transport == "python" or (options.transport == "auto" and not native_front.available()):
        return AioTransport(store, metrics, options, observers)
    if not native_front.available():
        raise RuntimeError(f"--transport native: the native front is not built ({native_front.why_not()})")
    return native_front.NativeTransport(store, metrics, observers, address=options.address, tls=options.tls,
                                        health_address=options.health_address)


class AioTransport:
    """The grpc.aio transport: the reference, and the fallback where the native front is not built."""

    name = "python"

    def __init__(self, store: PolicyStore, metrics: Metrics, options: ServeOptions, observers: Observers) -> None:
        self.options = options
        self.server = grpc.aio.server(options=[("grpc.so_reuseport", 1)])
        processor = ExternalProcessor(store, metrics, observers)
        pb_grpc.add_ExternalProcessorServicer_to_server(processor, self.server)
        self.server.add_generic_rpc_handlers((report_handler(lambda: store.current, processor.answer_read),))
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.health_server = _health_only_server(self.health) if options.health_address else None

    async def start(self) -> int:
        port = _add_port(self.server, self.options.address, self.options.tls)
        if self.health_server is not None and self.options.health_address:
            self.health_server.add_insecure_port(self.options.health_address)
        await self.server.start()
        if self.health_server is not None:
            await self.health_server.start()
        return port

    async def set_health(self, service: str, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        await self.health.set(service, status)

    async def enter_graceful_shutdown(self) -> None:
        await self.health.enter_graceful_shutdown()

    async def stop(self, grace: float) -> None:
        await self.server.stop(grace)
        if self.health_server is not None:
            await self.health_server.stop(0)


def _start_envoy_gate(admin_url: str | None, transport) -> asyncio.Task | None:
    if not admin_url:
        return None
    from extproc.wire import envoy_gate

    return asyncio.create_task(envoy_gate.watch(admin_url, lambda ready: _set_ready(transport, ready)))


async def _set_ready(transport, ready: bool) -> None:
    for service in ("", SERVICE_NAME):
        await transport.set_health(service, ready)


def _add_port(server: grpc.aio.Server, address: str, tls: TlsFiles | None) -> int:
    if tls is None:
        return server.add_insecure_port(address)
    cert, key, client_ca = tls.read()
    credentials = grpc.ssl_server_credentials([(key, cert)], root_certificates=client_ca,
                                              require_client_auth=True)
    return server.add_secure_port(address, credentials)


def _restrict_socket(address: str) -> None:
    """A Unix socket: owner and group only (Envoy shares the group, e.g. the pod's fsGroup)."""
    parsed = parse_address(address)
    if parsed.unix_path is not None:  # is_unix
        os.chmod(parsed.unix_path, 0o660)


def _health_only_server(health_servicer) -> grpc.aio.Server:
    """Health and nothing else, so that probes from outside the pod need no ext_proc port."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 1)])
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    return server


def _count_reload(metrics: Metrics, store: PolicyStore) -> Callable[[str], None]:
    def count(result: str) -> None:
        metrics.reloads.labels(result).inc()
        if result == "ok":
            metrics.policy_loaded(store.current.digest)
    return count


def _install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests) or no support
            pass
