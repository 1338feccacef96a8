"""The gRPC transport: receive, convert, dispatch, reply. Nothing else lives here."""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from extproc.wire.listen import TlsFiles, parse_address
from extproc.observability.metrics import Metrics
from extproc.wire.pb import external_processor_pb2_grpc as pb_grpc
from extproc.config.store import PolicyStore, watch
from extproc.wire.messages import ANSWERS_OBSERVED
from extproc.wire.answers import report_handler
from extproc.wire.stream import ProtocolError, State, StreamProcessor
from extproc.observability.tracing import trace_id_of
from extproc.core.answer_watch import AnswerWatch
from extproc.core.verdict import Decision

if TYPE_CHECKING:
    from extproc.observability.audit import AuditWriter
    from extproc.observability.tracing import Tracing

log = logging.getLogger(__name__)
SERVICE_NAME = "envoy.service.ext_proc.v3.ExternalProcessor"
# The health service name for liveness probes: SERVING while the process runs (until it drains),
# whatever readiness says. "" and SERVICE_NAME are readiness: they also wait for the Envoy gate.
LIVENESS_SERVICE = "liveness"


class ExternalProcessor(pb_grpc.ExternalProcessorServicer):
    def __init__(self, store: PolicyStore, metrics: Metrics, observers: Observers | None = None) -> None:
        self.store = store
        self.metrics = metrics
        self.tracing = observers.tracing if observers else None
        self.audit = observers.audit if observers else None

    async def Process(self, request_iterator, context: grpc.aio.ServicerContext):  # noqa: N802 (gRPC name)
        started = time.perf_counter_ns()
        metadata = context.invocation_metadata() or ()
        span = self.tracing.start(metadata) if self.tracing else None
        # The policy is taken once: a reload mid-request does not change this request's rules.
        stream = StreamProcessor(self.store.current, answers_observed=_answers_observed(metadata))
        stream.on_decision = lambda decision: self._report(decision, stream, span, context, started)
        # The decision was recorded before the answer came: a layer failing on it is counted here.
        stream.on_response_fault = lambda layer: self.metrics.layer_faults.labels(layer, "response_error").inc()
        try:
            async for message in request_iterator:
                reply = stream.handle(message)
                if reply is not None:
                    yield reply
                if stream.done:
                    break  # ends the RPC: Envoy carries on without this stream
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
            # on_decision refers to the stream: without this the stream, its request and
            # decision would wait for the cyclic garbage collector instead of going at once.
            stream.on_decision = stream.on_response_fault = _drop
            if span is not None and self.tracing is not None:
                self.tracing.abandon(span, "stream ended without a decision")

    def _report(self, decision: Decision, stream: StreamProcessor, span, context, started: int) -> None:
        self.metrics.record(decision)
        request = stream.current_transaction.request
        if span is not None and self.tracing is not None:
            self.tracing.finish(span, decision, request, stream.policy.digest)
        if self.audit is not None and self.audit.wants(decision):
            trace_id = _trace_id(span, context)
            latency_us = (time.perf_counter_ns() - started) / 1000
            self.audit.write(decision, request, trace_id, stream.policy.digest[:12], latency_us)
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

    def answer_read(self, watch: AnswerWatch | None) -> None:
        """One report of Envoy's answer reader, read (None: it was not a report)."""
        if watch is None:
            self._event("answer_report_unreadable")
            return
        for layer in watch.faults:
            self.metrics.layer_faults.labels(layer, "response_error").inc()
        self._event("answer_read" if watch.watching else "answer_report_unwatched")

    def _close(self, stream: StreamProcessor) -> None:
        if stream.spurious:
            self._event("spurious_message")
        if stream.state is State.AWAIT_BODY:
            # The stream ended while the decision waited for the body: the client went away, or
            # Envoy is not honouring mode_override (allow_mode_override off). grpc.aio reports a
            # cancel as a plain end of stream, so the two cannot be told apart here.
            self._event("ended_awaiting_body")
        if stream.held_for_watching:
            self._event("answer_held_for_watching")

    def _event(self, event: str) -> None:
        self.metrics.stream_events.labels(event).inc()


@dataclass(frozen=True)
class Observers:
    """Optional outputs besides logs and metrics; None means off, at no cost per request."""

    tracing: Tracing | None = None
    audit: AuditWriter | None = None

    def close(self) -> None:
        """Flush what is buffered: the last audit lines and spans must survive a SIGTERM."""
        if self.audit is not None:
            self.audit.close()
        if self.tracing is not None:
            self.tracing.shutdown()


def _answers_observed(metadata) -> bool:
    """Envoy's per-route gRPC metadata says the route has the answer reader."""
    key, value = ANSWERS_OBSERVED
    return any(name == key and given == value for name, given in metadata)


def _drop(_value: object) -> None:
    """Stands in for a stream's callbacks once it ended, so nothing refers back to the stream."""


def _trace_id(span, context) -> str | None:
    """The request's trace id: from our span, else straight from Envoy's traceparent."""
    if span is not None:
        trace_id = span.get_span_context().trace_id
        return f"{trace_id:032x}" if trace_id else None
    for key, value in context.invocation_metadata() or ():
        if key == "traceparent" and isinstance(value, str):
            return trace_id_of(value)
    return None


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
    server = grpc.aio.server(options=[("grpc.so_reuseport", 1)])
    processor = ExternalProcessor(store, metrics, observers)
    pb_grpc.add_ExternalProcessorServicer_to_server(processor, server)
    server.add_generic_rpc_handlers((report_handler(lambda: store.current, processor.answer_read),))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    health_server = _health_only_server(health_servicer) if options.health_address else None
    try:
        port = _add_port(server, options.address, options.tls)
        if health_server is not None and options.health_address:
            health_server.add_insecure_port(options.health_address)
    except RuntimeError as exc:  # grpc names no port: say both
        log.error("cannot listen on %s (health: %s): %s", options.address, options.health_address, exc)
        return 1
    await server.start()
    _restrict_socket(options.address)
    if health_server is not None:
        await health_server.start()
    await health_servicer.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
    await _set_ready(health_servicer, not options.ready_when_envoy_filter)
    gate = _start_envoy_gate(options.ready_when_envoy_filter, health_servicer)
    _install_signal_handlers(stop)
    log.info(
        "serving",
        extra={"address": options.address, "port": port, "mtls": options.tls is not None,
               "health_address": options.health_address, "policy": store.current.digest[:12],
               "routes": store.current.summary()},
    )
    watcher = None
    if store.path is not None:
        watcher = asyncio.create_task(watch(store, options.reload_interval, _count_reload(metrics, store)))
    await stop.wait()
    log.info("draining", extra={"grace_seconds": options.drain_seconds, "delay_seconds": options.shutdown_delay})
    await health_servicer.enter_graceful_shutdown()  # health checks fail first, then we stop
    for task in (watcher, gate):
        if task is not None:
            task.cancel()
    if options.shutdown_delay > 0:
        await asyncio.sleep(options.shutdown_delay)
    await server.stop(options.drain_seconds)
    if health_server is not None:
        await health_server.stop(0)
    log.info("stopped")
    return 0


def _start_envoy_gate(admin_url: str | None, health_servicer) -> asyncio.Task | None:
    if not admin_url:
        return None
    from extproc.wire import envoy_gate

    return asyncio.create_task(envoy_gate.watch(admin_url, lambda ready: _set_ready(health_servicer, ready)))


async def _set_ready(health_servicer, ready: bool) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if ready else health_pb2.HealthCheckResponse.NOT_SERVING
    for service in ("", SERVICE_NAME):
        await health_servicer.set(service, status)


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
