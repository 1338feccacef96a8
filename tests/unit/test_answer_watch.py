"""Answers read, never held (issue 22), without sockets: the request's stream hands the watching
layers' state over with its decision and ends; the answer reader's report resumes them with what
it kept of the answer; whatever a report holds or a layer does there, nothing raises."""
from __future__ import annotations

import orjson
import pytest

from extproc.config.compile import parse_policy
from extproc.layers.ai_gateway import AiGatewayLayer
from extproc.wire import messages
from extproc.wire.answers import parse_report, read_report
from extproc.wire.stream import StreamProcessor

POLICY = parse_policy("""
version: 1
routes:
  - name: llm
    match: {path_prefix: /v1/}
    layers:
      ai_gateway: {groups: {"*": {tokens_per_day: 1000000}}, injection: {action: "off"}}
""", "answers")
CHAT = orjson.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi."}], "stream": True})
SSE = (("content-type", "text/event-stream"),)
USAGE = b'data: {"choices": [], "usage": {"total_tokens": 55}}\n\ndata: [DONE]\n\n'


def decided(observed: bool, source: str = "10.1.1.1") -> tuple[StreamProcessor, object]:
    """A chat call decided; each test its own caller (budgets outlive a policy, and a test)."""
    stream = StreamProcessor(POLICY, answers_observed=observed)
    stream.handle(messages.request_headers("POST", "/v1/chat/completions", (("content-type", "application/json"),),
                                           attributes={"source.address": f"{source}:1"}))
    return stream, stream.handle(messages.request_body(CHAT))


def budgets():
    """The budgets the policy's gateway charges (the store kept across reloads may be reset between tests)."""
    (slot,) = [slot for slot in POLICY.routes[0].slots if slot.name == "ai_gateway"]
    return slot.layer.budgets


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


def reading(handoff, kept: bytes = USAGE, status: str = "200", content_type: str = "text/event-stream"):
    text = handoff if isinstance(handoff, str) else orjson.dumps(handoff)
    report = parse_report(messages.answer_report(text, status, content_type, kept))
    assert report is not None
    return read_report(POLICY, report)


def test_a_report_resumes_the_watch_and_charges_the_usage_it_kept():
    _stream, reply = decided(observed=True, source="10.1.1.2")
    handoff = reply.dynamic_metadata[messages.HANDOFF_NAMESPACE][messages.HANDOFF_KEY]
    who = handoff_of(reply)["layers"]["ai_gateway"]["who"]
    watch = reading(handoff)  # the JSON text as the decision handed it over, as Envoy passes it back
    assert watch.watching and watch.faults == []
    assert budgets().used(who, "day") == 55


def test_a_json_answer_kept_whole_is_read_as_one_document():
    _stream, reply = decided(observed=True, source="10.1.1.3")
    handoff = handoff_of(reply)
    reading(handoff, b'{"id": "c1", "usage": {"prompt_tokens": 30, "completion_tokens": 3}}', content_type="application/json")
    assert budgets().used(handoff["layers"]["ai_gateway"]["who"], "day") == 33


@pytest.mark.parametrize("payload", [b"", b"no lines", b"{}\n200\n", b"[1, 2]\n200\ntext/plain\n", b"{not json\n\n\n"])
def test_what_is_not_a_report_is_none(payload):
    assert parse_report(payload) is None


@pytest.mark.parametrize("handoff", [
    {"route": "gone", "layers": {"ai_gateway": {}}},  # a reload removed the route
    {"route": "llm", "layers": "not a mapping"},
    {"route": "llm", "layers": {"ai_gateway": "not a mapping", "attack": {"x": 1}}},
    {},
])
def test_nothing_readable_handed_over_reads_nothing(handoff):
    watch = reading(handoff)
    assert not watch.watching and watch.faults == []


def test_a_watching_layer_that_fails_is_dropped_and_counted(monkeypatch):
    _stream, reply = decided(observed=True)

    def broken(*_args):
        raise RuntimeError("boom")

    monkeypatch.setattr(AiGatewayLayer, "on_response_chunk", broken)
    watch = reading(handoff_of(reply))
    assert not watch.watching and watch.faults == ["ai_gateway"]


def test_a_handoff_missing_a_key_is_a_fault_not_a_crash():
    watch = reading({"route": "llm", "layers": {"ai_gateway": {"who": "x"}}})
    assert not watch.watching and watch.faults == ["ai_gateway"]
