"""A minimal OTLP/gRPC trace receiver on loopback, for tests and benchmarks.

It keeps every span it is sent (service name, ids, parent, name, attributes) in memory. Built on
the generated services of the ``opentelemetry-proto`` package, which the OTLP exporter installs.
"""
from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str  # "" for a root span
    attributes: dict
    # The span as it came (every attribute, duplicates and events included): a test looking for a
    # value that must not be there searches this, not the attributes dict.
    wire: bytes = field(default=b"", repr=False, compare=False)


class OtlpReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    """``with OtlpReceiver() as receiver``: listens on 127.0.0.1:``port`` until the block ends."""

    def __init__(self) -> None:
        self._spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def Export(self, request, context):  # noqa: N802 (gRPC name)
        received = [
            ReceivedSpan(_service(resource_spans.resource), span.name, span.trace_id.hex(), span.span_id.hex(),
                         span.parent_span_id.hex(), {a.key: _value(a.value) for a in span.attributes},
                         span.SerializeToString())
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]
        with self._lock:
            self._spans.extend(received)
        return trace_service_pb2.ExportTraceServiceResponse()

    def spans(self, service: str | None = None) -> list[ReceivedSpan]:
        with self._lock:
            return [span for span in self._spans if service is None or span.service == service]

    def start(self) -> "OtlpReceiver":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None)

    def __enter__(self) -> "OtlpReceiver":
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()


def _service(resource) -> str:
    for attribute in resource.attributes:
        if attribute.key == "service.name":
            return attribute.value.string_value
    return ""


def _value(value):
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    return getattr(value, kind) if kind else None
