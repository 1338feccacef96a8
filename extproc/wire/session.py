"""One ext_proc stream as both transports drive it: the decision core's per-stream bookkeeping.

A transport opens a ``Session`` per stream with the stream's gRPC metadata, calls ``message`` once
per message Envoy sends, with the message as plain values, and sends the ``Reply`` it gets back;
``close`` once the stream is over. Everything else a stream does (the policy snapshot, metrics,
tracing, audit, logs, protocol errors, fail-closed) happens here, once for both transports: the
grpc.aio server (extproc/wire/server.py) and the native front (extproc/wire/native/front.cc).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from extproc.config.store import PolicyStore
from extproc.core.answer_watch import AnswerWatch
from extproc.core.verdict import Decision
from extproc.observability.metrics import Metrics
from extproc.observability.tracing import trace_id_of
from extproc.wire.messages import ANSWERS_OBSERVED
from extproc.wire.plain import END_INTERNAL_ERROR, END_OK, END_PROTOCOL_ERROR, KEEP_READING, Pairs, Reply
from extproc.wire.stream import ProtocolError, State, StreamProcessor

if TYPE_CHECKING:
    from extproc.observability.audit import AuditWriter
    from extproc.observability.tracing import Tracing

log = logging.getLogger(__name__)
Metadata = Sequence[tuple[str, Any]]  # gRPC metadata: text values, bytes for -bin keys


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


class Sidecar:
    """What every stream of a server shares: the policy store, metrics and observers."""

    def __init__(self, store: PolicyStore, metrics: Metrics, observers: Observers | None = None) -> None:
        self.store = store
        self.metrics = metrics
        self.tracing = observers.tracing if observers else None
        self.audit = observers.audit if observers else None

    def open(self, metadata: Metadata) -> Session:
        """A new stream, with its gRPC metadata ((key, value) pairs)."""
        return Session(self, metadata)

    def answer_read(self, watch: AnswerWatch | None) -> None:
        """One report of Envoy's answer reader, read (None: it was not a report)."""
        if watch is None:
            self.event("answer_report_unreadable")
            return
        for layer in watch.faults:
            self.metrics.layer_faults.labels(layer, "response_error").inc()
        self.event("answer_read" if watch.watching else "answer_report_unwatched")

    def event(self, event: str) -> None:
        self.metrics.stream_events.labels(event).inc()


class Session:
    def __init__(self, sidecar: Sidecar, metadata: Metadata) -> None:
        self.sidecar = sidecar
        self.metadata = metadata
        self.started = time.perf_counter_ns()
        self.closed = False
        self.span = sidecar.tracing.start(metadata) if sidecar.tracing else None
        # The policy is taken once: a reload mid-request does not change this request's rules.
        stream = self.stream = StreamProcessor(sidecar.store.current, answers_observed=_answers_observed(metadata))
        stream.on_decision = self._report
        # The decision was recorded before the answer came: a layer failing on it is counted here.
        stream.on_response_fault = self._response_fault

    def message(self, kind: str | None, headers: Pairs, body: bytes, end_of_stream: bool, observability: bool,
                body_mode: int | None, attributes: dict | None) -> tuple[Reply | None, int]:
        """The reply to send (None: none) and what the transport does next (extproc/wire/plain.py):
        read on, end the stream (allowed and nothing more wanted: Envoy carries on without it, so a
        sidecar that stops or stalls later cannot cut the answer), or end it with an error status."""
        try:
            reply = self.stream.on_message(kind, headers, body, end_of_stream, observability, body_mode, attributes)
        except ProtocolError as exc:
            self.sidecar.event(exc.kind)
            log.warning("ext_proc protocol error: %s", exc, extra={"kind": exc.kind})
            return None, END_PROTOCOL_ERROR
        except Exception:  # a bug of ours: an error status makes Envoy fail the request closed
            self.sidecar.event("internal_error")
            log.exception("stream failed")
            return None, END_INTERNAL_ERROR
        return reply, END_OK if self.stream.done else KEEP_READING

    def close(self, cancelled: bool = False) -> None:
        """The stream is over; ``cancelled``: Envoy reset it (client gone, message timeout, deadline).
        A transport that learns of the reset only after closing calls again with cancelled=True."""
        sidecar, stream = self.sidecar, self.stream
        if cancelled:
            sidecar.event("cancelled")
        if self.closed:
            return
        self.closed = True
        if stream.spurious:
            sidecar.event("spurious_message")
        if stream.state is State.AWAIT_BODY:
            # The stream ended while the decision waited for the body: the client went away, or
            # Envoy is not honouring mode_override (allow_mode_override off). grpc.aio reports a
            # cancel as a plain end of stream, so the two cannot always be told apart here.
            sidecar.event("ended_awaiting_body")
        if stream.held_for_watching:
            sidecar.event("answer_held_for_watching")
        # The callbacks refer to this session, which refers to the stream: without this the stream,
        # its request and decision would wait for the cyclic garbage collector instead of going at once.
        stream.on_decision = stream.on_response_fault = _drop
        if self.span is not None and sidecar.tracing is not None:
            sidecar.tracing.abandon(self.span, "stream ended without a decision")

    def _response_fault(self, layer: str) -> None:
        self.sidecar.metrics.layer_faults.labels(layer, "response_error").inc()

    def _report(self, decision: Decision) -> None:
        sidecar, stream = self.sidecar, self.stream
        sidecar.metrics.record(decision)
        request = stream.current_transaction.request
        if self.span is not None and sidecar.tracing is not None:
            sidecar.tracing.finish(self.span, decision, request, stream.policy.digest)
        if sidecar.audit is not None and sidecar.audit.wants(decision):
            latency_us = (time.perf_counter_ns() - self.started) / 1000
            sidecar.audit.write(decision, request, self._trace_id(), stream.policy.digest[:12], latency_us)
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

    def _trace_id(self) -> str | None:
        """The request's trace id: from our span, else straight from Envoy's traceparent."""
        if self.span is not None:
            trace_id = self.span.get_span_context().trace_id
            return f"{trace_id:032x}" if trace_id else None
        for key, value in self.metadata:
            if key == "traceparent" and isinstance(value, str):
                return trace_id_of(value)
        return None


def _answers_observed(metadata: Metadata) -> bool:
    """Envoy's per-route gRPC metadata says the route has the answer reader."""
    key, value = ANSWERS_OBSERVED
    return any(name == key and given == value for name, given in metadata)


def _drop(_value: object) -> None:
    """Stands in for a stream's callbacks once it ended, so nothing refers back to the stream."""
