"""Protobuf <-> decision core: Envoy's messages to a Request, a Decision to Envoy's replies.

Replies are built as plain values (extproc/wire/plain.py ``Reply``), which both transports send:
the grpc.aio transport through ``to_pb`` here, the native front by its own serializer. The only
module besides the transports that knows the wire types.
"""
from __future__ import annotations

import re
import uuid

import orjson
from google.protobuf import struct_pb2

from extproc.wire import plain
from extproc.wire.plain import Reply

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


def message_values(message: pb.ProcessingRequest) -> tuple:
    """The plain values StreamProcessor.on_message takes, read from a protobuf message (what the
    native front reads in C++): kind, headers, body, end_of_stream, observability, body mode
    (None: no protocol_config), attributes (request_headers only, else None)."""
    kind = message.WhichOneof("request")
    body_mode = message.protocol_config.request_body_mode if message.HasField("protocol_config") else None
    if kind == "request_headers":
        http = message.request_headers
        return (kind, header_pairs(http), b"", http.end_of_stream, message.observability_mode, body_mode,
                _attributes(message))
    if kind == "response_headers":
        http = message.response_headers
        return kind, header_pairs(http), b"", http.end_of_stream, message.observability_mode, body_mode, None
    if kind in ("request_body", "response_body"):
        body = getattr(message, kind)
        return kind, (), body.body, body.end_of_stream, message.observability_mode, body_mode, None
    return kind, (), b"", False, message.observability_mode, body_mode, None


def request_from_headers(message: pb.ProcessingRequest) -> Request:
    """Build a Request from a request_headers message and its attributes."""
    return request_from_values(header_pairs(message.request_headers), _attributes(message),
                               message.request_headers.end_of_stream)


def request_from_values(pairs: tuple[tuple[str, str], ...], attributes: dict[str, object] | None,
                        end_of_stream: bool) -> Request:
    """Build a Request from the request headers (pseudo-headers included) and the attributes."""
    pseudo: dict[str, str] = {}
    headers: list[tuple[str, str]] = []
    for key, value in pairs:
        if key.startswith(":"):
            pseudo.setdefault(key, value)
        else:
            headers.append((key, value))
    attributes = attributes or {}
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
        has_body=not end_of_stream,
    )


# -- replies, as plain values (extproc/wire/plain.py) ----------------------------------------


def headers_reply(decision: Decision | None, *, ask_for_body: bool = False,
                  watch_response: bool = False, drop_length: bool = False) -> Reply:
    """Reply to request_headers: a deny, or continue with mutations (and maybe ask for the body,
    and for the response headers when a layer of the route looks at responses)."""
    if decision is not None and not decision.allowed:
        return deny_reply(decision)
    set_headers, remove = _mutation(decision)
    if drop_length:  # the body may be rewritten; Envoy refuses a new body that breaks content-length
        remove = (*remove, "content-length")
    # PARTIAL, not BUFFERED: after a mode_override, Envoy 1.40 can stall a body larger than
    # its buffer instead of answering 413; PARTIAL sends what fits and we note the cut.
    return Reply(plain.REQUEST_HEADERS, set_headers, remove,
                 request_body_mode=BodySendMode.BUFFERED_PARTIAL if ask_for_body else 0,
                 response_header_mode=HeaderSendMode.SEND if watch_response else 0)


def response_headers_reply(mode: str | None) -> Reply:
    """Continue; with a mode_override for the response body when a layer wants it (mode_override
    is only read on header replies, so this is the last chance to ask). Envoy 1.40 answers 500
    when a rewritten body no longer fits the upstream's content-length, and a content-length set
    in the body reply comes too late, so the length goes now and Envoy frames the body itself."""
    if mode == "buffered":
        return Reply(plain.RESPONSE_HEADERS, remove_headers=("content-length",),
                     response_body_mode=BodySendMode.BUFFERED)
    if mode == "streamed":  # watched chunk by chunk: the client still gets each one at once
        return Reply(plain.RESPONSE_HEADERS, response_body_mode=BodySendMode.STREAMED)
    return _CONTINUE["response_headers"]


def response_body_reply(body: bytes | None) -> Reply:
    """Continue, or replace the body (or the chunk, when streamed): b"" clears it, e.g. a chunk
    held back until the rest of an event arrives, or one after the answer was withheld."""
    return _CONTINUE["response_body"] if body is None else Reply(plain.RESPONSE_BODY, body=body)


def body_reply(decision: Decision | None) -> Reply:
    if decision is not None and not decision.allowed:
        return deny_reply(decision)
    set_headers, remove = _mutation(decision)
    # a new body: content-length was dropped with the headers
    return Reply(plain.REQUEST_BODY, set_headers, remove, body=decision.body if decision is not None else None)


def trailers_reply(decision: Decision | None) -> Reply:
    if decision is not None and not decision.allowed:
        return deny_reply(decision)
    return _CONTINUE["request_trailers"]


def deny_reply(decision: Decision) -> Reply:
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
    headers = (("content-type", content_type), ("cache-control", "no-store"), ("x-request-id", decision.request_id),
               *extra)
    return Reply(plain.IMMEDIATE, headers, body=body, status=decision.status,
                 details=f"extproc_denied_by_{decision.denied_by or 'policy'}")


def with_handoff(reply: Reply, handoff: dict | None) -> Reply:
    """The reply carrying what Envoy's answer reader passes back with the answer, as dynamic
    metadata Envoy keeps for the request (the filter's receiving namespace)."""
    if handoff is None or reply.phase == plain.IMMEDIATE:
        return reply
    return reply._replace(metadata=((HANDOFF_NAMESPACE, HANDOFF_KEY, orjson.dumps(handoff).decode()),))


def continue_reply(kind: str) -> Reply:
    """Plain CONTINUE for the phase named by the request oneof (e.g. 'response_headers')."""
    return _CONTINUE[kind]


_CONTINUE = {name: Reply(phase) for phase, name in enumerate(plain.PHASES[:plain.IMMEDIATE])}


def _mutation(decision: Decision | None) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    if decision is None:
        return (), ()
    return decision.set_headers, tuple(decision.remove_headers)


# -- Reply -> protobuf (the grpc.aio transport) -------------------------------------------


def to_pb(reply: Reply) -> pb.ProcessingResponse:
    """The ProcessingResponse of a Reply. Allowed requests mostly get the same reply (scores of
    99, the same class and tags), so whole messages are kept: a cached one costs nothing, a new
    one with a dozen headers ~20 us. Messages are never changed once built (the server only
    serialises them). Not cached: values that vary per request (identities, assertions, request
    ids in deny bodies, handoffs) or that the client chose."""
    cacheable = reply.body is None and not reply.metadata and reply.phase != plain.IMMEDIATE and all(
        len(value) <= CACHED_VALUE_CHARS for _name, value in reply.set_headers) and all(
        len(name) <= CACHED_VALUE_CHARS for name in reply.remove_headers)
    if not cacheable:
        return _new_pb(reply)
    response = _REPLIES.get(reply)
    if response is None:
        response = _new_pb(reply)
        if len(_REPLIES) >= CACHED_REPLIES:
            _REPLIES.clear()
        _REPLIES[reply] = response
    return response


def _new_pb(reply: Reply) -> pb.ProcessingResponse:
    if reply.phase == plain.IMMEDIATE:
        return pb.ProcessingResponse(immediate_response=pb.ImmediateResponse(
            # protoc's .pyi names only the enum's members; proto3 enums are open and take any int
            status=http_status_pb2.HttpStatus(code=reply.status),  # type: ignore[arg-type]
            headers=pb.HeaderMutation(set_headers=[_set(name, value) for name, value in reply.set_headers]),
            body=reply.body or b"", details=reply.details))
    name = plain.PHASES[reply.phase]
    response = pb.ProcessingResponse()
    phase = getattr(response, name)
    phase.SetInParent()
    if reply.phase in (plain.REQUEST_TRAILERS, plain.RESPONSE_TRAILERS):
        pass  # trailers replies carry nothing of ours
    elif reply.set_headers or reply.remove_headers or reply.body is not None:
        common = phase.response
        if reply.set_headers or reply.remove_headers:
            common.header_mutation.remove_headers.extend(reply.remove_headers)
            common.header_mutation.set_headers.extend([_set(n, v) for n, v in reply.set_headers])
        if reply.body is not None:
            if reply.body:
                common.body_mutation.body = reply.body
            else:
                common.body_mutation.clear_body = True
    modes = (reply.request_body_mode, reply.response_header_mode, reply.response_body_mode)
    if any(modes):
        # proto3 enums are open: the fields take the ints as they are (the .pyi names the enum types)
        response.mode_override.CopyFrom(processing_mode_pb2.ProcessingMode(
            request_body_mode=modes[0], response_header_mode=modes[1], response_body_mode=modes[2]))  # type: ignore[arg-type]
    for namespace, key, value in reply.metadata:
        response.dynamic_metadata.update({namespace: {key: value}})
    return response


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
_REPLIES: dict[Reply, pb.ProcessingResponse] = {}


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
