"""One stream of the observe-only ext_proc filter: an answer, sent by Envoy without waiting.

Envoy runs that filter (``observability_mode: true``) on routes whose response layers only watch
the answer. It sends the answer's headers, chunks and trailers as they pass, never waits for a
reply and must get none, and stops sending once the stream ends. So this reads what the
request's stream handed over (in the forwarded dynamic metadata), feeds the watching layers,
and says when nothing more is wanted: nothing to watch, or the answer read to its end.
"""
from __future__ import annotations

from extproc.core.answer_watch import AnswerWatch
from extproc.core.policy import Policy
from extproc.wire import convert
from extproc.wire.pb import external_processor_pb2 as pb

REQUEST_PHASES = frozenset({"request_headers", "request_body", "request_trailers"})


def starts_answer_stream(message: pb.ProcessingRequest) -> bool:
    """The first message of an observe-only stream that sends the answer alone."""
    return message.observability_mode and message.WhichOneof("request") not in REQUEST_PHASES


class AnswerObserver:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.watch: AnswerWatch | None = None
        self.read_to_end = False

    def handle(self, message: pb.ProcessingRequest) -> bool:
        """True while more of the answer is wanted."""
        kind = message.WhichOneof("request")
        if self.watch is None:  # request phases (a filter set to send them) come first: skipped
            return self._start(message) if kind == "response_headers" else kind in REQUEST_PHASES
        if kind == "response_body":
            body = message.response_body
            return self._read(body.body, body.end_of_stream)
        if kind == "response_trailers":  # the body ended without end_of_stream: trailers follow
            return self._read(b"", True)
        return True

    @property
    def faults(self) -> list[str]:
        return self.watch.faults if self.watch is not None else []

    def _start(self, message: pb.ProcessingRequest) -> bool:
        handoff = convert.handoff_of(message)
        if handoff is None:
            return False  # a request denied, or one whose layers left nothing to read
        watch = self.watch = AnswerWatch(self.policy, handoff)
        headers = convert.header_pairs(message.response_headers)
        status = next((value for name, value in headers if name == ":status"), "")
        if not watch.on_headers(status, headers):
            return False
        if message.response_headers.end_of_stream:  # an answer without a body
            return self._read(b"", True)
        return True

    def _read(self, chunk: bytes, end_of_stream: bool) -> bool:
        assert self.watch is not None
        self.watch.on_chunk(chunk, end_of_stream)
        self.read_to_end = end_of_stream
        return not end_of_stream and self.watch.watching
