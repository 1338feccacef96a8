"""One ext_proc stream (= one HTTP request): the state machine that answers each message once.

Pure of asyncio and gRPC so the message-order cases are testable directly. Messages come in and
replies go out as plain values (``on_message``, extproc/wire/plain.py), the same for the grpc.aio
transport and the native front; ``handle`` is the protobuf form of it. A ``ProtocolError``
means Envoy sent something out of order; the transport turns it into a gRPC error, which Envoy
handles by its ``failure_mode_allow`` (500 when it is false).
"""
from __future__ import annotations

import enum
from typing import Callable

from extproc.wire import convert
from extproc.wire.plain import Pairs, Reply
from extproc.wire.pb import external_processor_pb2 as pb
from extproc.core.transaction import Transaction
from extproc.core.policy import Policy
from extproc.core.verdict import Decision

BodySendMode = convert.BodySendMode
# Body modes in which Envoy sends the whole (possibly cut) body as one message.
ONE_MESSAGE_MODES = frozenset({BodySendMode.BUFFERED, BodySendMode.BUFFERED_PARTIAL})


class ProtocolError(Exception):
    """Envoy sent a message the stream's state does not allow."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


class State(enum.Enum):
    EXPECT_HEADERS = "expect_headers"
    AWAIT_BODY = "await_body"  # a layer needs the body; the decision waits for it
    ALLOWED = "allowed"
    DENIED = "denied"  # an immediate response was sent; Envoy should send nothing more


class StreamProcessor:
    def __init__(self, policy: Policy, on_decision: Callable[[Decision], None] = lambda _d: None,
                 on_response_fault: Callable[[str], None] = lambda _layer: None,
                 answers_observed: bool = False) -> None:
        self.policy = policy
        # The route has Envoy's answer reader (the stream's gRPC metadata says so): layers that
        # only watch the answer get it from the reader, and this stream never holds it for them.
        self.answers_observed = answers_observed
        self.handoff: dict | None = None  # what this stream handed over for the answer reader
        self.held_for_watching = False
        self._answer_wanted = False  # a layer still reads the answer on this stream
        self.on_decision = on_decision
        self.on_response_fault = on_response_fault  # a layer raised on the answer (for metrics)
        self.state = State.EXPECT_HEADERS
        self.body_mode: int = BodySendMode.NONE
        self.transaction: Transaction | None = None
        self.decision: Decision | None = None
        self.spurious = 0  # messages after a deny, counted, never answered
        self._chunks: list[bytes] = []
        self._kept = 0
        self._received = 0

    def handle(self, message: pb.ProcessingRequest) -> pb.ProcessingResponse | None:
        """The reply to one protobuf message, or None when none must be sent (grpc.aio, tests)."""
        reply = self.on_message(*convert.message_values(message))
        return None if reply is None else convert.to_pb(reply)

    def on_message(self, kind: str | None, headers: Pairs, body: bytes, end_of_stream: bool, observability: bool,
                   body_mode: int | None, attributes: dict | None) -> Reply | None:
        """The reply to one message given as plain values (both transports come through here),
        or None when none must be sent. ``kind`` names the request oneof (None: none was set)."""
        if body_mode is not None:
            self.body_mode = body_mode
        if kind is None:
            raise ProtocolError("empty_message", "processing request without a phase")
        if self.state is State.DENIED:
            self.spurious += 1
            return None
        reply = self._dispatch(kind, headers, body, end_of_stream, attributes)
        # In observability mode Envoy does not wait for answers and must not get any.
        return None if observability else reply

    @property
    def done(self) -> bool:
        """Allowed, and nothing more is wanted from Envoy: the server ends the stream, and Envoy
        goes on without it, so a sidecar that stops or stalls later cannot cut the answer."""
        return self.state is State.ALLOWED and not self._answer_wanted

    # -- phases ---------------------------------------------------------------------------

    def _dispatch(self, kind: str, headers: Pairs, body: bytes, end_of_stream: bool,
                  attributes: dict | None) -> Reply:
        if kind == "request_headers":
            return self._on_request_headers(headers, end_of_stream, attributes)
        if self.state is State.EXPECT_HEADERS:
            raise ProtocolError("out_of_order", f"{kind} before request_headers")
        if kind == "request_body":
            return self._on_request_body(body, end_of_stream)
        if kind == "request_trailers":
            return self._on_request_trailers()
        if kind == "response_headers" and self.state is State.ALLOWED:
            status = dict(headers).get(":status", "")
            mode = self.current_transaction.on_response_headers(status, headers)
            # Only watching layers read it, yet this stream holds each chunk: no answer reader here.
            self.held_for_watching = mode == "streamed"
            self._answer_wanted = mode is not None and not end_of_stream
            return convert.response_headers_reply(mode)
        if kind == "response_body" and self.state is State.ALLOWED and self.current_transaction.response_layers:
            self._answer_wanted = not end_of_stream
            transaction = self.current_transaction
            faults_before = len(transaction.response_faults)
            reply = convert.response_body_reply(transaction.on_response_body(body, end_of_stream))
            for layer in transaction.response_faults[faults_before:]:
                self.on_response_fault(layer)
            return reply
        return convert.continue_reply(kind)

    def _on_request_headers(self, headers: Pairs, end_of_stream: bool, attributes: dict | None) -> Reply:
        if self.state is not State.EXPECT_HEADERS:
            raise ProtocolError("out_of_order", "request_headers twice on one stream")
        request = convert.request_from_values(headers, attributes, end_of_stream)
        transaction = self.transaction = Transaction(self.policy, request)
        transaction.answers_observed = self.answers_observed
        decision = transaction.on_headers()
        watch = transaction.asks_for_response
        if decision is not None:
            return self._handing_off(convert.headers_reply(self._finish(decision), watch_response=watch))
        self.state = State.AWAIT_BODY
        # Strip client copies of our headers now: in streamed modes the body reply cannot.
        interim = transaction.decide()
        ask = self.body_mode == BodySendMode.NONE
        if ask:
            self.body_mode = BodySendMode.BUFFERED_PARTIAL
        return convert.headers_reply(interim, ask_for_body=ask, watch_response=watch,
                                     drop_length=transaction.rewrites_request_body)

    def _on_request_body(self, body: bytes, end_of_stream: bool) -> Reply:
        if self.state is not State.AWAIT_BODY:
            return convert.body_reply(None)  # decided on headers; Envoy sends the body anyway
        self._collect(body)
        if end_of_stream or self.body_mode in ONE_MESSAGE_MODES:
            # BUFFERED_PARTIAL without end_of_stream: Envoy's buffer filled and the rest streams
            # past, or trailers follow; content-length, when sent, tells which.
            cut = self.body_mode == BodySendMode.BUFFERED_PARTIAL and not end_of_stream and not self._complete()
            return self._handing_off(convert.body_reply(self._decide_on_body(complete=not cut)))
        return convert.body_reply(None)  # a streamed chunk: pass it, keep collecting

    def _on_request_trailers(self) -> Reply:
        if self.state is not State.AWAIT_BODY:
            return convert.trailers_reply(None)
        return self._handing_off(convert.trailers_reply(self._decide_on_body()))  # the body ended with trailers

    # -- helpers --------------------------------------------------------------------------

    @property
    def current_transaction(self) -> Transaction:
        """The request's transaction, which every state after EXPECT_HEADERS has."""
        if self.transaction is None:
            raise ProtocolError("out_of_order", "no request_headers on this stream")
        return self.transaction

    def _collect(self, chunk: bytes) -> None:
        """Keep at most the inspection limit (plus one byte to notice the cut) in memory."""
        self._received += len(chunk)
        room = self.current_transaction.request.limits.max_body_bytes + 1 - self._kept
        if room > 0:
            piece = chunk[:room]
            self._chunks.append(piece)
            self._kept += len(piece)

    def _complete(self) -> bool:
        declared = self.current_transaction.request.header("content-length")
        return declared.isdigit() and self._received >= int(declared)

    def _decide_on_body(self, complete: bool = True) -> Decision:
        body = b"".join(self._chunks)
        self._chunks.clear()
        return self._finish(self.current_transaction.on_body(body, self._received, complete))

    def _finish(self, decision: Decision) -> Decision:
        self.decision = decision
        self.state = State.ALLOWED if decision.allowed else State.DENIED
        if decision.allowed:
            self.handoff = self._handoff()
            self._answer_wanted = self.current_transaction.asks_for_response
        self.on_decision(decision)
        return decision

    def _handoff(self) -> dict | None:
        transaction = self.current_transaction
        layers = transaction.watch_handoff()
        for layer in transaction.response_faults:
            self.on_response_fault(layer)
        if layers is None:
            return None
        return {"route": transaction.route.name, "request_id": transaction.request.request_id, "layers": layers}

    def _handing_off(self, reply: Reply) -> Reply:
        """The decision's reply, carrying the handoff when there is one."""
        return convert.with_handoff(reply, self.handoff)
