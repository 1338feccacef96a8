"""Reports of Envoy's answer reader: one gRPC call per answer, sent once the answer has passed.

On routes whose response layers only watch answers, the request's decision hands over what they
need (extproc/wire/stream.py) and Envoy's answer reader (the Lua filter ``extproc.read_answers``
of deploy/envoy/envoy.yaml) reads the answer as it passes, without holding it, keeping only what
those layers read: of an event stream, its lines that mention usage. Its report is a gRPC call
whose message is not protobuf but what the script writes (``messages.answer_report``): the
handoff's JSON text, the status and the content type, each on a line, then what it kept. Envoy
does not wait for the reply; the reply is empty.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import orjson

from extproc.core.answer_watch import AnswerWatch
from extproc.core.policy import Policy
from extproc.core.request import TEXT_ERRORS
from extproc.wire.messages import REPORT_METHOD, REPORT_SERVICE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnswerReport:
    handoff: dict
    status: str
    content_type: str
    kept: bytes


def parse_report(payload: bytes) -> AnswerReport | None:
    """The report, or None when it is not one (never an exception: it comes off the wire)."""
    parts = payload.split(b"\n", 3)
    if len(parts) != 4:
        return None
    try:
        handoff = orjson.loads(parts[0])
    except orjson.JSONDecodeError:
        return None
    if not isinstance(handoff, dict):
        return None
    status, content_type = (part.decode("utf-8", TEXT_ERRORS) for part in parts[1:3])
    return AnswerReport(handoff, status, content_type, parts[3])


def read_report(policy: Policy, report: AnswerReport) -> AnswerWatch:
    """The watching layers handed over, resumed and given what the reader kept, as a whole answer."""
    watch = AnswerWatch(policy, report.handoff)
    headers = ((":status", report.status), ("content-type", report.content_type))
    if watch.watching and watch.on_headers(report.status, headers):
        watch.on_chunk(report.kept, True)
    return watch


def report_reader(current_policy: Callable[[], Policy],
                  on_read: Callable[[AnswerWatch | None], None]) -> Callable[[bytes], None]:
    """What each report's bytes go to, in either transport; on_read gets each report's reading
    (None: not a report)."""

    def read(payload: bytes) -> None:
        parsed = parse_report(payload)
        try:
            on_read(read_report(current_policy(), parsed) if parsed is not None else None)
        except Exception:  # noqa: BLE001 - a bug of ours loses one reading, never more
            log.exception("answer report failed")

    return read


def report_handler(current_policy: Callable[[], Policy], on_read: Callable[[AnswerWatch | None], None]):
    """The gRPC method the answer reader calls, for the grpc.aio transport."""
    read = report_reader(current_policy, on_read)

    async def report(payload: bytes, _context) -> bytes:
        read(payload)
        return b""

    # No (de)serializer: the handler gets the message's bytes as they come and returns bytes.
    method: grpc.RpcMethodHandler = grpc.unary_unary_rpc_method_handler(report)
    return grpc.method_handlers_generic_handler(REPORT_SERVICE, {REPORT_METHOD: method})
