"""Answers read, never held (issue 22), through the real server (each transport): a stream ends once Envoy
need send nothing more, a route with Envoy's answer reader gets the watching layers' state handed
over instead of its answer held, and the reader's report (one call per answer) charges its usage."""
from __future__ import annotations

import grpc
import orjson
import pytest

from extproc.ai_gateway.budget import TokenBudgets
from extproc.core.durable import DURABLE
from extproc.config.store import PolicyStore
from extproc.config.compile import parse_policy
from extproc.wire import messages
from extproc.wire.pb import processing_mode_pb2
from tests.component.test_server import TIMEOUT, headers_msg, policy_store, run, running
from tests.support.transports import TRANSPORTS, using

SEND = processing_mode_pb2.ProcessingMode.HeaderSendMode.SEND
OBSERVED = (messages.ANSWERS_OBSERVED,)
POLICY = """
version: 1
routes:
  - name: llm
    match: {path_prefix: /v1/}
    layers:
      ai_gateway: {groups: {"*": {tokens_per_day: 100000}}, injection: {action: "off"}}
"""
CHAT = orjson.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello there."}],
                     "stream": True, "max_tokens": 100})


@pytest.fixture(autouse=True, params=TRANSPORTS)
def transport(request):
    with using(request.param):
        yield request.param


USAGE = b'data: {"choices": [], "usage": {"total_tokens": 777}}\n\ndata: [DONE]\n\n'
SSE = (("content-type", "text/event-stream"),)


def llm_store() -> PolicyStore:
    return PolicyStore(parse_policy(POLICY, "answers"))


def chat_headers(source: str):
    return messages.request_headers("POST", "/v1/chat/completions", (("content-type", "application/json"),),
                                    attributes={"source.address": f"{source}:5555"})


async def decide(srv, source: str, metadata=()):
    """A chat call's two messages on a stream of its own; (the replies, the call still open)."""
    call = srv.stub.Process(timeout=TIMEOUT, metadata=metadata)
    replies = []
    for message in (chat_headers(source), messages.request_body(CHAT)):
        await call.write(message)
        replies.append(await call.read())
    return replies, call


def handed_over(reply) -> dict:
    return orjson.loads(reply.dynamic_metadata[messages.HANDOFF_NAMESPACE][messages.HANDOFF_KEY])


def budgets() -> TokenBudgets:
    return DURABLE.get("ai_budgets", (), TokenBudgets, size=len)


def test_an_allowed_stream_that_needs_nothing_more_ends_after_its_decision(tmp_path):
    async def body():
        async with running(policy_store(tmp_path)) as srv:
            call = srv.stub.Process(timeout=TIMEOUT)
            await call.write(headers_msg(path="/ok"))
            assert (await call.read()).WhichOneof("response") == "request_headers"
            assert await call.read() is grpc.aio.EOF  # the server ended it: Envoy goes on alone
            assert await call.code() is grpc.StatusCode.OK

    run(body())


def test_an_observed_route_hands_its_watch_over_and_holds_nothing():
    async def body():
        async with running(llm_store()) as srv:
            replies, call = await decide(srv, "10.0.0.1", metadata=OBSERVED)
            decision = replies[-1]
            assert decision.WhichOneof("response") == "request_body"
            assert replies[0].mode_override.response_header_mode != SEND  # the answer is not asked for
            handoff = handed_over(decision)
            state = handoff["layers"]["ai_gateway"]
            assert handoff["route"] == "llm" and state["who"] == "anonymous@10.0.0.1" and state["stream"] is True
            assert await call.read() is grpc.aio.EOF

    run(body())


def test_without_the_answer_reader_the_answer_is_still_watched_on_the_stream():
    async def body():
        async with running(llm_store()) as srv:
            replies, call = await decide(srv, "10.0.0.2")
            assert messages.HANDOFF_NAMESPACE not in replies[-1].dynamic_metadata
            assert replies[0].mode_override.response_header_mode == SEND
            await call.write(messages.response_headers("200", SSE))
            assert (await call.read()).mode_override.response_body_mode == processing_mode_pb2.ProcessingMode.STREAMED
            await call.write(messages.response_body(USAGE, end_of_stream=True))
            assert (await call.read()).WhichOneof("response") == "response_body"
            assert await call.read() is grpc.aio.EOF  # read to its end: nothing more wanted
            assert budgets().used("anonymous@10.0.0.2", "day") == 777
            assert srv.events("answer_held_for_watching") == 1

    run(body())


async def report(srv, payload: bytes) -> bytes:
    """One call of the answer reader: the message's bytes as its script writes them."""
    send = srv.channel.unary_unary(messages.REPORT_PATH)  # no (de)serializer: bytes both ways
    return await send(payload, timeout=TIMEOUT)


def test_the_readers_report_charges_the_usage_it_kept():
    async def body():
        async with running(llm_store()) as srv:
            replies, _call = await decide(srv, "10.0.0.3", metadata=OBSERVED)
            handoff = replies[-1].dynamic_metadata[messages.HANDOFF_NAMESPACE][messages.HANDOFF_KEY]
            assert budgets().used("anonymous@10.0.0.3", "day") == handed_over(replies[-1])["layers"]["ai_gateway"]["estimated"]
            kept = b'data: {"choices": [], "usage": {"total_tokens": 777}}\n\n'  # its usage line, as an event
            assert await report(srv, messages.answer_report(handoff, "200", "text/event-stream", kept)) == b""
            assert budgets().used("anonymous@10.0.0.3", "day") == 777
            assert srv.events("answer_read") == 1

    run(body())


def test_a_report_that_is_no_report_is_counted_and_answered_all_the_same():
    async def body():
        async with running(llm_store()) as srv:
            assert await report(srv, b"not a report") == b""
            assert await report(srv, messages.answer_report(b'{"route": "gone", "layers": {}}')) == b""
            assert srv.events("answer_report_unreadable") == 1 and srv.events("answer_report_unwatched") == 1
            assert srv.events("answer_read") == 0

    run(body())
