"""Protobuf <-> decision core: Envoy's messages to a Request, a Decision to Envoy's replies.

The only module besides the transport that knows the wire types.
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import orjson
from google.protobuf import struct_pb2

from extproc.wire.messages import ATTRIBUTES_KEY, HANDOFF_KEY, HANDOFF_NAMESPACE
from extproc.wire.pb import core_pb2, http_status_pb2, processing_mode_pb2
from extproc.wire.pb import external_processor_pb2 as pb
from extproc.core.request import TEXT_ERRORS, Request
from extproc.core.verdict import Decision

BodySendMode = processing_mode_pb2.ProcessingMode.BodySendMode
HeaderSendMode = processing_mode_pb2.ProcessingMode.HeaderSendMode
PEER_ATTRIBUTES = {
    "connection.uri_san_peer_certificate": "uri_san",
    "connection.dns_san_peer_certificate": "dns_san",
    "connection.subject_peer_certificate": "subject",
}
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}\Z")
STATUS_ERRORS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    503: "unavailable",
}


def header_pairs(http: pb.HttpHeaders) -> tuple[tuple[str, str], ...]:
    """(name, value) of every header, pseudo-headers included, in arrival order."""
    # Envoy 1.40 fills raw_value only; older builds used value.
    return tuple((h.key, h.raw_value.decode("utf-8", TEXT_ERRORS) if h.raw_value else h.value)
                 for h in http.headers.headers)


def request_from_headers(message: pb.ProcessingRequest) -> Request:
    """Build a Request from a request_headers message and its attributes."""
    pseudo: dict[str, str] = {}
    headers: list[tuple[str, str]] = []
    for key, value in header_pairs(message.request_headers):
        if key.startswith(":"):
            pseudo.setdefault(key, value)
        else:
            headers.append((key, value))
    attributes = _attributes(message)
    regular = tuple(headers)
    return Request(
        method=pseudo.get(":method", "").upper(),
        path=pseudo.get(":path", ""),
        authority=pseudo.get(":authority", ""),
        scheme=pseudo.get(":scheme", "http"),
        headers=regular,
        pseudo_order=tuple(pseudo),
        source_ip=_strip_port(str(attributes.get("source.address", ""))),
        route_name=str(attributes.get("xds.route_name", "")),
        request_id=_request_id(regular, attributes),
        protocol=str(attributes.get("request.protocol", "")),
        mtls=attributes.get("connection.mtls") is True,
        peer={key: str(attributes[attr]) for attr, key in PEER_ATTRIBUTES.items() if attributes.get(attr)},
        has_body=not message.request_headers.end_of_stream,
    )


def headers_reply(decision: Decision | None, *, ask_for_body: bool = False,
                  watch_response: bool = False, drop_length: bool = False) -> pb.ProcessingResponse:
    """Reply to request_headers: a deny, or continue with mutations (and maybe ask for the body,
    and for the response headers when a layer of the route looks at responses)."""
    if decision is not None and not decision.allowed:
        return deny_reply(decision)
    key = _reply_key(decision, ask_for_body, watch_response, drop_length)
    response = _REPLIES.get(key) if key is not None else None
    if response is None:
        response = _new_headers_reply(decision, ask_for_body, watch_response, drop_length)
        if key is not None:
            if len(_REPLIES) >= CACHED_REPLIES:
                _REPLIES.clear()
            _REPLIES[key] = response
    return response


def _reply_key(decision: Decision | None, *flags: bool) -> tuple | None:
    """Allowed requests mostly get the same reply (scores of 99, the same class and tags), so
    whole replies are kept: a cached one costs nothing, a new one with a dozen headers ~20 us.
    Replies are never changed once built (the server only serialises them). None: not cached,
    for values that vary per request (identities, assertions) or that the client chose."""
    if decision is None:
        return flags
    # remove_headers lists owned headers the client sent itself, named by the client: never a key.
    if decision.remove_headers or any(len(value) > CACHED_VALUE_CHARS for _name, value in decision.set_headers):
        return None
    return decision.set_headers, flags


def _new_headers_reply(decision: Decision | None, ask_for_body: bool, watch_response: bool,
                       drop_length: bool) -> pb.ProcessingResponse:
    response = pb.ProcessingResponse(request_headers=pb.HeadersResponse(response=_common(decision)))
    if ask_for_body:
        # PARTIAL, not BUFFERED: after a mode_override, Envoy 1.40 can stall a body larger than
        # its buffer instead of answering 413; PARTIAL sends what fits and we note the cut.
        response.mode_override.request_body_mode = BodySendMode.BUFFERED_PARTIAL
    if watch_response:
        response.mode_override.response_header_mode = HeaderSendMode.SEND
    if drop_length:  # the body may be rewritten; Envoy refuses a new body that breaks content-length
        response.request_headers.response.header_mutation.remove_headers.append("content-length")
    return response


def response_headers_reply(mode: str | None) -> pb.ProcessingResponse:
    """Continue; with a mode_override for the response body when a layer wants it (mode_override
    is only read on header replies, so this is the last chance to ask). Envoy 1.40 answers 500
    when a rewritten body no longer fits the upstream's content-length, and a content-length set
    in the body reply comes too late, so the length goes now and Envoy frames the body itself."""
    response = pb.ProcessingResponse(response_headers=pb.HeadersResponse())
    if mode == "buffered":
        response.mode_override.response_body_mode = BodySendMode.BUFFERED
        response.response_headers.response.header_mutation.remove_headers.append("content-length")
    elif mode == "streamed":  # watched chunk by chunk: the client still gets each one at once
        response.mode_override.response_body_mode = BodySendMode.STREAMED
    return response


def response_body_reply(body: bytes | None) -> pb.ProcessingResponse:
    """Continue, or replace the body (or the chunk, when streamed): b"" clears it, e.g. a chunk
    held back until the rest of an event arrives, or one after the answer was withheld."""
    if body is None:
        return pb.ProcessingResponse(response_body=pb.BodyResponse())
    mutation = pb.BodyMutation(body=body) if body else pb.BodyMutation(clear_body=True)
    common = pb.CommonResponse(body_mutation=mutation)
    return pb.ProcessingResponse(response_body=pb.BodyResponse(response=common))


def body_reply(decision: Decision | None) -> pb.ProcessingResponse:
    if decision is not None and not decision.allowed:
        return deny_reply(decision)
    common = _common(decision)
    if decision is not None and decision.body is not None:
        common.body_mutation.body = decision.body  # content-length was dropped with the headers
    return pb.ProcessingResponse(request_body=pb.BodyResponse(response=common))


def trailers_reply(decision: Decision | None) -> pb.ProcessingResponse:
    if decision is not None and not decision.allowed:
        return deny_reply(decision)
    return pb.ProcessingResponse(request_trailers=pb.TrailersResponse())


def deny_reply(decision: Decision) -> pb.ProcessingResponse:
    """A short JSON body with the request id: nothing about layers, scores or rules (or the
    denying layer's own body, e.g. a JSON-RPC error, which follows the same rule)."""
    reply = decision.reply
    extra: tuple[tuple[str, str], ...] = ()
    if reply is None:
        error = STATUS_ERRORS.get(decision.status, "denied")
        body = orjson.dumps({"error": error, "request_id": decision.request_id}) + b"\n"
        content_type = "application/json"
    else:
        body, content_type, extra = reply.body, reply.content_type, reply.headers
    headers = pb.HeaderMutation(
        set_headers=[
            _set("content-type", content_type),
            _set("cache-control", "no-store"),
            _set("x-request-id", decision.request_id),
            *(_set(name, value) for name, value in extra),
        ]
    )
    return pb.ProcessingResponse(
        immediate_response=pb.ImmediateResponse(
            # protoc's .pyi names only the enum's members; proto3 enums are open and take any int
            status=http_status_pb2.HttpStatus(code=decision.status),  # type: ignore[arg-type]
            headers=headers,
            body=body,
            details=f"extproc_denied_by_{decision.denied_by or 'policy'}",
        )
    )


def with_handoff(reply: pb.ProcessingResponse, handoff: dict | None) -> pb.ProcessingResponse:
    """The reply carrying what Envoy's answer reader passes back with the answer, as dynamic
    metadata Envoy keeps for the request (the filter's receiving namespace). A copy: header
    replies are shared (cached)."""
    if handoff is None or reply.HasField("immediate_response"):
        return reply
    carrying = pb.ProcessingResponse()
    carrying.CopyFrom(reply)
    carrying.dynamic_metadata.update({HANDOFF_NAMESPACE: {HANDOFF_KEY: orjson.dumps(handoff).decode()}})
    return carrying


def continue_reply(kind: str) -> pb.ProcessingResponse:
    """Plain CONTINUE for the phase named by the request oneof (e.g. 'response_headers')."""
    return _CONTINUE_REPLIES[kind]()


_CONTINUE_REPLIES: dict[str, Callable[[], pb.ProcessingResponse]] = {
    "request_headers": lambda: pb.ProcessingResponse(request_headers=pb.HeadersResponse()),
    "response_headers": lambda: pb.ProcessingResponse(response_headers=pb.HeadersResponse()),
    "request_body": lambda: pb.ProcessingResponse(request_body=pb.BodyResponse()),
    "response_body": lambda: pb.ProcessingResponse(response_body=pb.BodyResponse()),
    "request_trailers": lambda: pb.ProcessingResponse(request_trailers=pb.TrailersResponse()),
    "response_trailers": lambda: pb.ProcessingResponse(response_trailers=pb.TrailersResponse()),
}


def _common(decision: Decision | None) -> pb.CommonResponse:
    if decision is None or not (decision.set_headers or decision.remove_headers):
        return pb.CommonResponse()
    mutation = pb.HeaderMutation(remove_headers=decision.remove_headers)
    mutation.set_headers.extend([_set(name, value) for name, value in decision.set_headers])
    return pb.CommonResponse(header_mutation=mutation)


def _set(name: str, value: str) -> core_pb2.HeaderValueOption:
    """The header to set, from a cache: most values repeat (scores 1-99, classes, tags), and a
    cached message copied into a reply costs a fifth of a new one. Adding to a repeated field
    copies the message, so a reply never aliases the cache."""
    key = (name, value)
    option = _OPTIONS.get(key)
    if option is None:
        # raw_value only, append unset: the one combination Envoy 1.40 applies as "overwrite".
        option = core_pb2.HeaderValueOption(
            header=core_pb2.HeaderValue(key=name, raw_value=value.encode("utf-8", TEXT_ERRORS))
        )
        if len(value) <= CACHED_VALUE_CHARS:  # not tokens, e-mail addresses, request ids
            if len(_OPTIONS) >= CACHED_OPTIONS:
                _OPTIONS.clear()
            _OPTIONS[key] = option
    return option


CACHED_OPTIONS, CACHED_VALUE_CHARS, CACHED_REPLIES = 4096, 24, 1024
_OPTIONS: dict[tuple[str, str], core_pb2.HeaderValueOption] = {}
_REPLIES: dict[tuple, pb.ProcessingResponse] = {}


def _attributes(message: pb.ProcessingRequest) -> dict[str, object]:
    if ATTRIBUTES_KEY not in message.attributes:
        return {}
    return {name: _value(value) for name, value in message.attributes[ATTRIBUTES_KEY].fields.items()}


def _value(value: struct_pb2.Value) -> object:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "number_value":
        return value.number_value
    return None


def _strip_port(address: str) -> str:
    """'1.2.3.4:5678' -> '1.2.3.4'; '[2001:db8::1]:5678' -> '2001:db8::1'."""
    if address.startswith("["):
        return address[1:].partition("]")[0]
    host, sep, _port = address.rpartition(":")
    return host if sep and ":" not in host else address


def _request_id(headers: tuple[tuple[str, str], ...], attributes: dict[str, object]) -> str:
    # Envoy generates x-request-id at the edge; reuse it so our logs join Envoy's access log.
    # Anything else is replaced: the id is echoed in deny replies and logs.
    for name, value in headers:
        if name == "x-request-id" and SAFE_REQUEST_ID.match(value):
            return value
    return str(uuid.uuid4())
