"""Envoy's ext_proc messages built from plain values, shaped as Envoy 1.40 sends them.

Header values go in ``raw_value`` (Envoy 1.40 leaves ``value`` empty), pseudo-headers come first,
and the request attributes sit in a Struct under the filter's fixed key. convert.py reads that key;
the tests, the benchmarks and the red team build every message they send here, so they all speak
the wire the sidecar reads. Depends on the generated code alone.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from extproc.wire.pb import core_pb2, processing_mode_pb2
from extproc.wire.pb import external_processor_pb2 as pb

ATTRIBUTES_KEY = "envoy.filters.http.ext_proc"  # fixed key, whatever the filter is named
# The request's stream hands the watching layers' state to Envoy's answer reader in this dynamic
# metadata namespace (the ext_proc filter's receiving_namespaces), as one JSON text under
# HANDOFF_KEY; it learns that the route has the reader from this gRPC metadata entry (set per
# route). The reader sends its report, one gRPC call per answer, to REPORT_PATH.
HANDOFF_NAMESPACE, HANDOFF_KEY = "extproc.answer", "watch"
ANSWERS_OBSERVED = ("x-extproc-answers", "observed")
REPORT_SERVICE, REPORT_METHOD = "extproc.AnswerReports", "Report"
REPORT_PATH = f"/{REPORT_SERVICE}/{REPORT_METHOD}"
ENVOY_ORDER = (":authority", ":path", ":method", ":scheme")  # an HTTP/1.1 request through Envoy 1.40
BODYLESS_METHODS = (b"GET", b"HEAD")

Value = str | bytes
Headers = Iterable[tuple[str, Value]]
AttributeValue = str | bool | float | None  # what Envoy puts in the attributes Struct
BodySendMode = processing_mode_pb2.ProcessingMode.BodySendMode


def raw(value: Value) -> bytes:
    """Bytes as they are; text as UTF-8, with lone surrogates back to the bytes they stood for."""
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")


def header_map(headers: Headers) -> core_pb2.HeaderMap:
    return core_pb2.HeaderMap(headers=[core_pb2.HeaderValue(key=name, raw_value=raw(value))
                                       for name, value in headers])


def request_headers(method: Value = "GET", path: Value = "/", headers: Headers = (), *,
                    authority: Value = "example.com", scheme: Value = "http",
                    pseudo_order: Sequence[str] = ENVOY_ORDER, end_of_stream: bool | None = None,
                    attributes: Mapping[str, AttributeValue] | None = None,
                    body_mode: BodySendMode | None = None,
                    observability: bool = False) -> pb.ProcessingRequest:
    """The request_headers message. ``end_of_stream`` None: no body for GET and HEAD, a body
    otherwise. ``attributes`` (source.address, xds.route_name, connection.mtls, ...) are left out
    when None; ``body_mode`` is the protocol_config Envoy puts on the first message."""
    pseudo = {":authority": authority, ":path": path, ":method": method, ":scheme": scheme}
    pairs = [(name, pseudo[name]) for name in pseudo_order] + list(headers)
    if end_of_stream is None:
        end_of_stream = raw(method) in BODYLESS_METHODS
    message = pb.ProcessingRequest(
        request_headers=pb.HttpHeaders(headers=header_map(pairs), end_of_stream=end_of_stream),
        observability_mode=observability,
    )
    if attributes is not None:
        message.attributes[ATTRIBUTES_KEY].update(attributes)
    if body_mode is not None:
        message.protocol_config.request_body_mode = body_mode
    return message


def request_body(body: bytes, end_of_stream: bool = True, *, observability: bool = False) -> pb.ProcessingRequest:
    return pb.ProcessingRequest(request_body=pb.HttpBody(body=body, end_of_stream=end_of_stream),
                                observability_mode=observability)


def request_trailers(headers: Headers = (), *, observability: bool = False) -> pb.ProcessingRequest:
    return pb.ProcessingRequest(request_trailers=pb.HttpTrailers(trailers=header_map(headers)),
                                observability_mode=observability)


def response_headers(status: Value = "200", headers: Headers = (), *, end_of_stream: bool = False,
                     observability: bool = False) -> pb.ProcessingRequest:
    """The response_headers message: ``:status`` first, then the upstream's headers."""
    pairs = [(":status", status), *headers]
    return pb.ProcessingRequest(
        response_headers=pb.HttpHeaders(headers=header_map(pairs), end_of_stream=end_of_stream),
        observability_mode=observability,
    )


def response_body(body: bytes, end_of_stream: bool = True, *, observability: bool = False) -> pb.ProcessingRequest:
    return pb.ProcessingRequest(response_body=pb.HttpBody(body=body, end_of_stream=end_of_stream),
                                observability_mode=observability)


def answer_report(handoff: Value, status: Value = "200", content_type: Value = "", kept: bytes = b"") -> bytes:
    """The answer reader's report, as its Lua script writes it: the handoff's JSON text as the
    decision handed it over, the status, the content type, each on a line, then what it kept of
    the answer (of an event stream, its usage lines, each an event)."""
    return b"\n".join((raw(handoff), raw(status), raw(content_type), kept))


def response_trailers(headers: Headers = (), *, observability: bool = False) -> pb.ProcessingRequest:
    return pb.ProcessingRequest(response_trailers=pb.HttpTrailers(trailers=header_map(headers)),
                                observability_mode=observability)
