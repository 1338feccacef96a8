"""The decision core's side of the wire as plain values, the same for both transports.

A message from Envoy arrives as positional values (``StreamProcessor.on_message``); the answer
leaves as a ``Reply``, a tuple of strings, bytes and ints. The grpc.aio transport turns a Reply
into protobuf (extproc/wire/convert.py ``to_pb``); the native front (extproc/wire/native/)
serializes the same tuple in C++, reading its fields by position, so the order below is part of
that interface: change both together.
"""
from __future__ import annotations

from typing import NamedTuple

# Reply.phase: the ProcessingResponse oneof case answered, in the proto's field order.
REQUEST_HEADERS, RESPONSE_HEADERS, REQUEST_BODY, RESPONSE_BODY, REQUEST_TRAILERS, RESPONSE_TRAILERS, IMMEDIATE = range(7)
PHASES = ("request_headers", "response_headers", "request_body", "response_body", "request_trailers",
          "response_trailers", "immediate_response")
PHASE_OF = {name: index for index, name in enumerate(PHASES)}

Pairs = tuple[tuple[str, str], ...]


class Reply(NamedTuple):
    """One ProcessingResponse. Header values are text (client bytes kept as surrogates); a 0 mode
    is no override; metadata is (namespace, key, text) entries of the dynamic metadata."""

    phase: int
    set_headers: Pairs = ()  # header mutation; of an immediate response: its headers
    remove_headers: tuple[str, ...] = ()
    body: bytes | None = None  # body mutation (b"": clear the body); of an immediate response: its body
    request_body_mode: int = 0  # mode_override
    response_header_mode: int = 0
    response_body_mode: int = 0
    metadata: tuple[tuple[str, str, str], ...] = ()
    status: int = 0  # immediate response: HTTP status and details
    details: str = ""


# What the transport does once a reply (or none) is sent for a message (Outcome.end).
KEEP_READING, END_OK, END_PROTOCOL_ERROR, END_INTERNAL_ERROR = -1, 0, 3, 13  # 3, 13: gRPC status codes
