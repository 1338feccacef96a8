"""OpenTelemetry traces: one span per HTTP request, continuing Envoy's trace.

Envoy (with HCM tracing on) sends the trace context of its ext_proc call as gRPC metadata on
the stream (``traceparent``/``tracestate``, or ``x-b3-*`` with the b3 propagator). The span we
start is a child of that call, so it sits under Envoy's span in Jaeger. Each layer that ran is an
event on the span rather than a child span: layers take microseconds, and events cost far less.

Off unless configured: ``configure()`` returns None and the server then does no tracing work at
all. The SDK reads the standard ``OTEL_*`` variables itself (exporter endpoint and headers,
``OTEL_TRACES_SAMPLER``/``_ARG``, ``OTEL_SERVICE_NAME``, ``OTEL_BSP_*``, ``OTEL_PROPAGATORS``).
"""
from __future__ import annotations

import os
from typing import Iterable

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from extproc.observability.metrics import challenge_event
from extproc.observability.redact import redact_url
from extproc.core.request import Request
from extproc.core.text import library_value
from extproc.core.verdict import Decision

HEX = frozenset("0123456789abcdef")


def trace_id_of(traceparent: str) -> str | None:
    """The trace id of a W3C ``traceparent`` (version-traceid-parentid-flags), None when it is not one."""
    parts = traceparent.split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or not HEX.issuperset(parts[1]) or parts[1] == "0" * 32:
        return None
    return parts[1]

TRACER_NAME = "extproc"
SPAN_NAME = "extproc"  # updated to "extproc <route>" once the route is known


def enabled_by_env(environ: dict[str, str] | os._Environ = os.environ) -> bool:
    """True when the standard variables ask for OTLP trace export."""
    if environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").lower()
    if exporter:
        return exporter != "none"
    return bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


class Tracing:
    """Starts and finishes request spans on one tracer; ``shutdown()`` flushes what is queued."""

    def __init__(self, tracer: trace.Tracer, provider=None) -> None:
        self.tracer = tracer
        self.provider = provider

    def start(self, metadata: Iterable[tuple[str, str | bytes]]) -> trace.Span:
        # Binary metadata (keys ending in -bin) is no trace context; skip it rather than decode.
        carrier = {key: value for key, value in metadata if isinstance(value, str)}
        parent = propagate.extract(carrier)
        return self.tracer.start_span(SPAN_NAME, context=parent, kind=SpanKind.SERVER)

    def finish(self, span: trace.Span, decision: Decision, request: Request, policy_digest: str) -> None:
        if span.is_recording():  # an unsampled span: skip building attributes nobody keeps
            span.update_name(f"{SPAN_NAME} {decision.route}")
            # The exporter writes protobuf, which takes valid UTF-8 only: the path and reasons may
            # hold client bytes that were not.
            span.set_attributes(library_value(_span_attributes(decision, request, policy_digest)))
            for result in decision.results:
                span.add_event(f"layer {result.verdict.layer}", library_value(_layer_attributes(result)))
            if not decision.allowed:
                span.set_status(Status(StatusCode.ERROR, f"denied by {decision.denied_by}"))
        span.end()

    def abandon(self, span: trace.Span, reason: str) -> None:
        """End a span whose stream ended without a decision (protocol error, cancel, bug)."""
        if span.is_recording():
            span.set_status(Status(StatusCode.ERROR, reason))
            span.end()

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()  # exports the spans still batched


def configure(force: bool = False) -> Tracing | None:
    """A Tracing exporting OTLP/gRPC as the ``OTEL_*`` variables say, or None when tracing is off."""
    if not (force or enabled_by_env()):
        return None
    # Imported here so that a sidecar without tracing never loads the SDK or the exporter.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "extproc")})
    provider = TracerProvider(resource=resource)  # sampler from OTEL_TRACES_SAMPLER(_ARG)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return Tracing(provider.get_tracer(TRACER_NAME), provider)


def _span_attributes(decision: Decision, request: Request, policy_digest: str) -> dict:
    attributes = {
        "extproc.route": decision.route,
        "extproc.decision": "allow" if decision.allowed else "deny",
        "extproc.request_id": decision.request_id,
        "extproc.core.policy": policy_digest[:12],
        "http.request.method": request.method,
        "url.path": redact_url(request.url_path),
        "server.address": request.host,
        "client.address": request.source_ip,
    }
    if not decision.allowed:
        attributes["extproc.denied_by"] = decision.denied_by
        attributes["http.response.status_code"] = decision.status
    if decision.would_deny:
        attributes["extproc.would_deny"] = list(decision.would_deny)
    rule_ids = [reason.split(":", 1)[1] for reason in decision.reasons if reason.startswith("rule:")]
    if rule_ids:
        attributes["extproc.rule_ids"] = rule_ids
    challenge = next((event for r in decision.results if r.verdict.layer == "bot"
                      for event in [challenge_event(r.verdict.reasons)] if event), None)
    if challenge:
        attributes["extproc.bot.challenge"] = challenge
    for result in decision.results:
        for name, score in result.verdict.scores.items():
            attributes[f"extproc.commands.score.{result.verdict.layer}.{name}"] = score
    return attributes


def _layer_attributes(result) -> dict:
    """A span event's attributes: flat values only (scores go on the span, one attribute each)."""
    record = result.record()
    del record["scores"]
    return {name: value for name, value in record.items() if value != []}
