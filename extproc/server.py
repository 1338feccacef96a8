"""The gRPC transport: receive, convert, dispatch, reply. Nothing else lives here."""
from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from extproc.metrics import Metrics
from extproc.pb import external_processor_pb2_grpc as pb_grpc
from extproc.reload import PolicyStore, watch
from extproc.stream import ProtocolError, State, StreamProcessor
from extproc.verdict import Decision

log = logging.getLogger(__name__)
SERVICE_NAME = "envoy.service.ext_proc.v3.ExternalProcessor"


class ExternalProcessor(pb_grpc.ExternalProcessorServicer):
    def __init__(self, store: PolicyStore, metrics: Metrics) -> None:
        self.store = store
        self.metrics = metrics

    async def Process(self, request_iterator, context: grpc.aio.ServicerContext):  # noqa: N802 (gRPC name)
        # The policy is taken once: a reload mid-request does not change this request's rules.
        stream = StreamProcessor(self.store.current, self._report)
        try:
            async for message in request_iterator:
                reply = stream.handle(message)
                if reply is not None:
                    yield reply
        except ProtocolError as exc:
            self._event(exc.kind)
            log.warning("ext_proc protocol error: %s", exc, extra={"kind": exc.kind})
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "ext_proc protocol error")
        except asyncio.CancelledError:  # Envoy reset the stream: client gone or message timeout
            self._event("cancelled")
            raise
        except Exception:  # a bug of ours: an error status makes Envoy fail the request closed
            self._event("internal_error")
            log.exception("stream failed")
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")
        finally:
            self._close(stream)

    def _report(self, decision: Decision) -> None:
        self.metrics.record(decision)
        if decision.allowed and not decision.would_deny:
            return
        log.info(
            "request denied" if not decision.allowed else "request would be denied (observe)",
            extra={
                "request_id": decision.request_id,
                "route": decision.route,
                "status": decision.status,
                "denied_by": decision.denied_by or None,
                "would_deny": list(decision.would_deny),
                "reasons": list(decision.reasons),
            },
        )

    def _close(self, stream: StreamProcessor) -> None:
        if stream.spurious:
            self._event("spurious_message")
        if stream.state is State.AWAIT_BODY:
            # The stream ended while the decision waited for the body: the client went away, or
            # Envoy is not honouring mode_override (allow_mode_override off). grpc.aio reports a
            # cancel as a plain end of stream, so the two cannot be told apart here.
            self._event("ended_awaiting_body")

    def _event(self, event: str) -> None:
        self.metrics.stream_events.labels(event).inc()


@dataclass(frozen=True)
class ServeOptions:
    address: str = "127.0.0.1:50051"
    reload_interval: float = 1.0
    drain_seconds: float = 10.0
    # After SIGTERM, keep accepting streams this long while health says NOT_SERVING, so that
    # whoever routes to us (Envoy health checks, kubelet) notices before the port closes.
    shutdown_delay: float = 0.0


async def serve(store: PolicyStore, metrics: Metrics, options: ServeOptions, stop: asyncio.Event | None = None) -> int:
    """Serve until SIGTERM/SIGINT (or ``stop`` is set), then drain in-flight streams."""
    stop = stop or asyncio.Event()
    server = grpc.aio.server(options=[("grpc.so_reuseport", 1)])
    pb_grpc.add_ExternalProcessorServicer_to_server(ExternalProcessor(store, metrics), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    try:
        port = server.add_insecure_port(options.address)
    except RuntimeError as exc:
        log.error("cannot listen on %s: %s", options.address, exc)
        return 1
    await server.start()
    for service in ("", SERVICE_NAME):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    _install_signal_handlers(stop)
    log.info(
        "serving",
        extra={"address": options.address, "port": port, "policy": store.current.digest[:12],
               "routes": store.current.summary()},
    )
    watcher = None
    if store.path is not None:
        watcher = asyncio.create_task(watch(store, options.reload_interval, _count_reload(metrics)))
    await stop.wait()
    log.info("draining", extra={"grace_seconds": options.drain_seconds, "delay_seconds": options.shutdown_delay})
    await health_servicer.enter_graceful_shutdown()  # health checks fail first, then we stop
    if watcher is not None:
        watcher.cancel()
    if options.shutdown_delay > 0:
        await asyncio.sleep(options.shutdown_delay)
    await server.stop(options.drain_seconds)
    log.info("stopped")
    return 0


def _count_reload(metrics: Metrics):
    return lambda result: metrics.reloads.labels(result).inc()


def _install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests) or no support
            pass
