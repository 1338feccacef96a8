"""Answers watched, never held (issue 22), without sockets: the request's stream hands the watching
layers' state over with its decision and ends; the observe-only stream resumes them and reads the
answer; whatever it is handed or a layer does there, it never answers and never raises."""
from __future__ import annotations

import orjson
import pytest

from extproc.config.compile import parse_policy
from extproc.layers.ai_gateway import AiGatewayLayer
from extproc.wire import messages
from extproc.wire.observe import AnswerObserver, starts_answer_stream
from extproc.wire.stream import StreamProcessor

POLICY = parse_policy("""
version: 1
routes:
  - name: llm
    match: {path_prefix: /v1/}
    layers:
      ai_gateway: {groups: {"*": {}}, injection: {action: "off"}}
""", "answers")
CHAT = orjson.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi."}], "stream": True})
SSE = (("content-type", "text/event-stream"),)
USAGE = b'data: {"choices": [], "usage": {"total_tokens": 55}}\n\ndata: [DONE]\n\n'


def decided(observed: bool) -> tuple[StreamProcessor, object]:
    stream = StreamProcessor(POLICY, answers_observed=observed)
    stream.handle(messages.request_headers("POST", "/v1/chat/completions", (("content-type", "application/json"),),
                                           attributes={"source.address": "10.1.1.1:1"}))
    return stream, stream.handle(messages.request_body(CHAT))


def handoff_of(reply) -> dict:
    return orjson.loads(reply.dynamic_metadata[messages.HANDOFF_NAMESPACE][messages.HANDOFF_KEY])


def test_an_observed_route_hands_over_its_watch_with_the_decision_and_is_done():
    stream, reply = decided(observed=True)
    handoff = handoff_of(reply)
    assert handoff["route"] == "llm" and handoff["request_id"] == stream.current_transaction.request.request_id
    assert set(handoff["layers"]) == {"ai_gateway"} and stream.done


def test_without_the_observer_nothing_is_handed_over_and_the_answer_is_awaited():
    stream, reply = decided(observed=False)
    assert messages.HANDOFF_NAMESPACE not in reply.dynamic_metadata and not stream.done
    stream.handle(messages.response_headers("200", SSE))
    assert not stream.done and stream.held_for_watching
    stream.handle(messages.response_body(USAGE, end_of_stream=True))
    assert stream.done


def observe(handoff: dict | None, *chunks: bytes) -> tuple[AnswerObserver, list[bool]]:
    observer = AnswerObserver(POLICY)
    first = messages.response_headers("200", SSE, observability=True, handoff=handoff)
    assert starts_answer_stream(first)
    wanted = [observer.handle(first)]
    for index, chunk in enumerate(chunks):
        if not wanted[-1]:
            break  # as the server does: it ends the stream, Envoy sends no more
        last = index == len(chunks) - 1
        wanted.append(observer.handle(messages.response_body(chunk, last, observability=True, handoff=handoff)))
    return observer, wanted


def test_the_observer_reads_the_answer_to_its_end_then_wants_no_more():
    _stream, reply = decided(observed=True)
    observer, wanted = observe(handoff_of(reply), b'data: {"choices": []}\n\n', USAGE)
    assert wanted == [True, True, False] and observer.read_to_end and observer.faults == []


@pytest.mark.parametrize("handoff", [
    None,  # a denied request, or one with nothing to read
    {"route": "gone", "layers": {"ai_gateway": {}}},  # a reload removed the route
    {"route": "llm", "layers": "not a mapping"},
    {"route": "llm", "layers": {"ai_gateway": "not a mapping", "attack": {"x": 1}}},
])
def test_nothing_readable_handed_over_ends_the_answer_stream_at_once(handoff):
    observer, wanted = observe(handoff)
    assert wanted == [False] and not observer.read_to_end


def test_a_handoff_that_is_not_json_ends_the_answer_stream_at_once():
    message = messages.response_headers("200", SSE, observability=True)
    message.metadata_context.filter_metadata[messages.HANDOFF_NAMESPACE].update({messages.HANDOFF_KEY: "{not json"})
    assert AnswerObserver(POLICY).handle(message) is False


def test_a_watching_layer_that_fails_is_dropped_and_counted(monkeypatch):
    _stream, reply = decided(observed=True)

    def broken(*_args):
        raise RuntimeError("boom")

    monkeypatch.setattr(AiGatewayLayer, "on_response_chunk", broken)
    observer, wanted = observe(handoff_of(reply), b'data: {"choices": []}\n\n', USAGE)
    assert wanted == [True, False] and observer.faults == ["ai_gateway"]


def test_a_handoff_missing_a_key_is_a_fault_not_a_crash():
    observer, wanted = observe({"route": "llm", "layers": {"ai_gateway": {"who": "x"}}})
    assert wanted == [False] and observer.faults == ["ai_gateway"]
