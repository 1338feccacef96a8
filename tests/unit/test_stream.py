"""StreamProcessor: the per-stream state machine, driven with wire messages (no gRPC)."""
from __future__ import annotations

import time
import uuid

import orjson
import pytest

from extproc.config.compile import parse_policy
from extproc.wire import messages
from extproc.wire.pb import core_pb2, processing_mode_pb2
from extproc.wire.pb import external_processor_pb2 as pb
from extproc.wire.stream import ProtocolError, State, StreamProcessor
from tests.support import REPO

Mode = processing_mode_pb2.ProcessingMode.BodySendMode

# Default route: header rules plus a body rule, so POSTs need the body (max 64 bytes inspected).
# Route "static" (xds.route_name) has header rules only, so it always decides on headers.
# deadline_ms is generous so that a slow CI machine cannot turn a test into a deadline skip
# (see test_body_arriving_after_the_layer_budget_is_still_inspected for the default).
POLICY_TEXT = r"""
version: 1
defaults:
  deadline_ms: 60000
  inspection: {max_body_bytes: 64, oversize: deny}
  layers:
    rules:
      rules:
        - id: block-admin
          match: {path: {prefix: /admin}}
          action: deny
        - id: block-jndi
          match: {any_arg: {contains: '${jndi:'}}
          action: deny
        - id: tag-curl
          match: {headers: {user-agent: {prefix: 'curl/'}}}
          action: tag
          tags: [automation]
routes:
  - name: static
    match: {route_name: static}
    layers:
      rules:
        remove: [block-admin, block-jndi, tag-curl]
        rules:
          - id: static-admin
            match: {path: {prefix: /admin}}
            action: deny
          - id: static-tag
            match: {headers: {user-agent: {prefix: 'curl/'}}}
            action: tag
            tags: [automation]
"""
POLICY = parse_policy(POLICY_TEXT, "test-policy")
JNDI = b"q=${jndi:ldap://x}"


# -- message builders -----------------------------------------------------------------------


def headers_msg(method: str = "GET", path: str = "/", headers: list[tuple[str, str | bytes]] | None = None, *,
                route: str = "", **options) -> pb.ProcessingRequest:
    """A request_headers message from this file's client (a test user-agent unless headers are given)."""
    return messages.request_headers(method, path, [("user-agent", "test/1.0")] if headers is None else headers,
                                    attributes={"source.address": "1.2.3.4:5555", "xds.route_name": route}, **options)


def trailers_msg() -> pb.ProcessingRequest:
    return messages.request_trailers([("x-checksum", "abc")])


def form_post(path: str = "/submit", **kwargs) -> pb.ProcessingRequest:
    headers = [("user-agent", "curl/8.5"), ("content-type", "application/x-www-form-urlencoded")]
    return headers_msg("POST", path, headers + kwargs.pop("extra", []), **kwargs)


# -- reply readers --------------------------------------------------------------------------


def set_headers(mutation: pb.HeaderMutation) -> dict[str, bytes]:
    return {option.header.key: option.header.raw_value for option in mutation.set_headers}


def assert_continue(reply: pb.ProcessingResponse, kind: str) -> None:
    assert reply is not None
    assert reply.WhichOneof("response") == kind
    phase = getattr(reply, kind)
    # An empty CommonResponse (status CONTINUE, no mutations) is as plain as no CommonResponse.
    common = getattr(phase, "response", None)
    assert common is None or common.ByteSize() == 0, f"expected a plain CONTINUE, got {reply}"
    if kind.endswith("trailers"):
        assert phase.ByteSize() == 0, f"expected a plain CONTINUE, got {reply}"
    assert not reply.HasField("mode_override")


def assert_deny(reply: pb.ProcessingResponse, status: int = 403) -> dict:
    assert reply is not None and reply.WhichOneof("response") == "immediate_response", reply
    immediate = reply.immediate_response
    assert immediate.status.code == status
    body = orjson.loads(immediate.body)
    assert set(body) == {"error", "request_id"}
    headers = set_headers(immediate.headers)
    assert headers["content-type"] == b"application/json"
    assert headers["x-request-id"].decode() == body["request_id"]
    for option in immediate.headers.set_headers:
        assert option.header.value == ""  # Envoy 1.40 reads raw_value only
        assert not option.HasField("append")
    return body


def new_processor(decisions: list | None = None) -> StreamProcessor:
    return StreamProcessor(POLICY, decisions.append if decisions is not None else (lambda _d: None))


# -- headers-only decisions -----------------------------------------------------------------


def test_get_allowed_tags_via_raw_value_and_strips_client_copies():
    decisions = []
    sp = new_processor(decisions)
    reply = sp.handle(
        headers_msg(
            headers=[("user-agent", "curl/8.5"), ("x-extproc-tags", "admin"), ("x-extproc-score", "0")]
        )
    )
    assert reply.WhichOneof("response") == "request_headers"
    assert not reply.HasField("mode_override")
    mutation = reply.request_headers.response.header_mutation
    options = {o.header.key: o for o in mutation.set_headers}
    assert options["x-extproc-tags"].header.raw_value == b"automation"
    assert options["x-extproc-rules"].header.raw_value == b"tag-curl"
    for option in options.values():
        assert option.header.value == ""
        assert not option.HasField("append")  # unset = overwrite the client's copy
    # Owned headers we do not set are removed; the ones we set overwrite the client's copy.
    assert "x-extproc-score" in mutation.remove_headers
    assert "x-extproc-tags" not in mutation.remove_headers
    assert sp.state is State.ALLOWED
    assert len(decisions) == 1 and decisions[0].allowed


def test_get_allowed_without_tags_removes_client_tag_header():
    sp = new_processor()
    reply = sp.handle(headers_msg(headers=[("user-agent", "firefox"), ("x-extproc-tags", "admin")]))
    mutation = reply.request_headers.response.header_mutation
    assert list(mutation.remove_headers) == ["x-extproc-tags"]
    assert not mutation.set_headers


def test_get_allowed_without_owned_headers_is_plain_continue():
    assert_continue(new_processor().handle(headers_msg()), "request_headers")


def test_deny_is_json_with_request_id_only():
    decisions = []
    sp = new_processor(decisions)
    reply = sp.handle(headers_msg(path="/admin/users", headers=[("x-request-id", "req-42")]))
    body = assert_deny(reply, 403)
    assert body == {"error": "forbidden", "request_id": "req-42"}
    raw = reply.immediate_response.body.decode()
    for secret in ("block-admin", "rules", "rule:", "static"):
        assert secret not in raw
    assert sp.state is State.DENIED
    assert decisions[0].allowed is False


def test_pseudo_headers_are_not_seen_as_regular_headers():
    # Pseudo-headers feed method/path/authority; the regular header list holds none of them.
    sp = new_processor()
    sp.handle(headers_msg(path="/admin"))
    assert sp.transaction.request.path == "/admin"
    assert all(not name.startswith(":") for name, _ in sp.transaction.request.headers)
    assert sp.transaction.request.source_ip == "1.2.3.4"
    assert sp.transaction.request.authority == "example.com"


def test_route_name_attribute_selects_route():
    sp = new_processor()
    sp.handle(headers_msg(path="/admin", route="static"))
    assert sp.decision.route == "static"
    assert sp.decision.reasons == ("rule:static-admin",)


# -- request ids ----------------------------------------------------------------------------


def test_safe_request_id_is_reused():
    sp = new_processor()
    sp.handle(headers_msg(path="/admin", headers=[("x-request-id", "0f1e2d3c-aaaa.bbb:ccc_9")]))
    assert sp.decision.request_id == "0f1e2d3c-aaaa.bbb:ccc_9"


@pytest.mark.parametrize(
    "unsafe",
    [b"has space", b"crlf\r\nx-injected: 1", b"trailing-newline\n", b"a" * 129, b"", b"\xff\xfe", b"<script>"],
    ids=["space", "crlf", "trailing-lf", "too-long", "empty", "invalid-utf8", "html"],
)
def test_unsafe_request_id_is_replaced_by_a_uuid(unsafe):
    sp = new_processor()
    reply = sp.handle(headers_msg(path="/admin", headers=[("x-request-id", unsafe)]))
    body = assert_deny(reply)
    assert uuid.UUID(body["request_id"]).version == 4
    assert set_headers(reply.immediate_response.headers)["x-request-id"] == body["request_id"].encode()


def test_request_id_of_128_chars_is_kept():
    rid = "b" * 128
    sp = new_processor()
    sp.handle(headers_msg(headers=[("x-request-id", rid)]))
    assert sp.decision.request_id == rid


# -- body: mode override and buffered -------------------------------------------------------


def test_post_needing_body_asks_for_it_then_body_denies():
    decisions = []
    sp = new_processor(decisions)
    reply = sp.handle(form_post(extra=[("x-extproc-tags", "forged")]))
    assert reply.WhichOneof("response") == "request_headers"
    assert reply.mode_override.request_body_mode == Mode.BUFFERED_PARTIAL
    # No decision yet, but client copies of owned headers are already stripped.
    assert decisions == [] and sp.decision is None and sp.state is State.AWAIT_BODY
    assert "x-extproc-tags" in reply.request_headers.response.header_mutation.remove_headers
    body = assert_deny(sp.handle(messages.request_body(JNDI)))
    assert body["error"] == "forbidden"
    assert len(decisions) == 1 and not decisions[0].allowed


def test_post_needing_body_then_body_allows_with_mutations():
    sp = new_processor()
    sp.handle(form_post())
    reply = sp.handle(messages.request_body(b"q=hello"))
    assert reply.WhichOneof("response") == "request_body"
    headers = set_headers(reply.request_body.response.header_mutation)
    assert headers == {"x-extproc-rules": b"tag-curl", "x-extproc-tags": b"automation"}
    assert sp.state is State.ALLOWED


def test_protocol_config_buffered_needs_no_mode_override():
    sp = new_processor()
    reply = sp.handle(form_post(body_mode=Mode.BUFFERED))
    assert reply.WhichOneof("response") == "request_headers"
    assert not reply.HasField("mode_override")
    assert sp.decision is None
    assert_deny(sp.handle(messages.request_body(JNDI)))


def test_protocol_config_only_read_from_first_message_does_not_reset():
    # Later messages carry no protocol_config; the mode from the first one must stick.
    sp = new_processor()
    sp.handle(form_post(body_mode=Mode.STREAMED))
    assert_continue(sp.handle(messages.request_body(b"q=a", end_of_stream=False)), "request_body")
    assert sp.decision is None


def test_buffered_body_over_limit_is_413():
    sp = new_processor()
    sp.handle(form_post(body_mode=Mode.BUFFERED))
    body = assert_deny(sp.handle(messages.request_body(b"q=" + b"x" * 100)), 413)
    assert body["error"] == "payload_too_large"


def test_buffered_partial_without_end_of_stream_is_cut_and_denied():
    # Envoy's buffer filled: only a prefix arrives, without end_of_stream. oversize: deny -> 413.
    sp = new_processor()
    sp.handle(form_post())  # our mode_override turns the mode into BUFFERED_PARTIAL
    assert_deny(sp.handle(messages.request_body(b"q=short", end_of_stream=False)), 413)
    assert sp.decision.denied_by == "inspection"


def test_buffered_partial_from_protocol_config_without_end_of_stream_is_cut():
    sp = new_processor()
    reply = sp.handle(form_post(body_mode=Mode.BUFFERED_PARTIAL))
    assert not reply.HasField("mode_override")
    assert_deny(sp.handle(messages.request_body(b"q=short", end_of_stream=False)), 413)


def test_buffered_partial_body_followed_by_trailers_is_not_cut():
    # With trailers Envoy sends the whole body without end_of_stream; content-length proves it whole.
    sp = new_processor()
    sp.handle(form_post(extra=[("content-length", "7")]))
    reply = sp.handle(messages.request_body(b"q=short", end_of_stream=False))
    assert reply.WhichOneof("response") == "request_body"
    assert sp.state is State.ALLOWED


def test_buffered_partial_complete_body_is_inspected():
    sp = new_processor()
    sp.handle(form_post(body_mode=Mode.BUFFERED_PARTIAL))
    reply = sp.handle(messages.request_body(b"q=fine", end_of_stream=True))
    assert reply.WhichOneof("response") == "request_body"
    assert sp.state is State.ALLOWED


# -- body: streamed -------------------------------------------------------------------------


def test_streamed_chunks_continue_until_end_of_stream_then_decide():
    decisions = []
    sp = new_processor(decisions)
    reply = sp.handle(form_post(body_mode=Mode.STREAMED))
    assert not reply.HasField("mode_override")
    # The attack is split across chunks: only the reassembled body shows it.
    assert_continue(sp.handle(messages.request_body(b"q=${jn", end_of_stream=False)), "request_body")
    assert_continue(sp.handle(messages.request_body(b"di:ldap", end_of_stream=False)), "request_body")
    assert decisions == []
    assert_deny(sp.handle(messages.request_body(b"://x}", end_of_stream=True)))
    assert len(decisions) == 1


def test_streamed_allowed_at_end_of_stream():
    sp = new_processor()
    sp.handle(form_post(body_mode=Mode.STREAMED))
    sp.handle(messages.request_body(b"q=he", end_of_stream=False))
    reply = sp.handle(messages.request_body(b"llo", end_of_stream=True))
    assert reply.WhichOneof("response") == "request_body"
    assert sp.state is State.ALLOWED
    assert sp.transaction.request.body == b"q=hello"


def test_streamed_oversize_counts_all_bytes_but_keeps_limit():
    sp = new_processor()
    sp.handle(form_post(body_mode=Mode.STREAMED))
    for _ in range(5):
        assert_continue(sp.handle(messages.request_body(b"x" * 40, end_of_stream=False)), "request_body")
    assert_deny(sp.handle(messages.request_body(b"", end_of_stream=True)), 413)
    assert sp.transaction.request.body_size == 200
    assert len(sp.transaction.request.body) <= 64


def test_streamed_body_ended_by_trailers_decides_at_trailers():
    sp = new_processor()
    sp.handle(form_post(body_mode=Mode.STREAMED))
    assert_continue(sp.handle(messages.request_body(JNDI, end_of_stream=False)), "request_body")
    assert sp.decision is None
    assert_deny(sp.handle(trailers_msg()))


def test_streamed_body_ended_by_trailers_allowed():
    sp = new_processor()
    sp.handle(form_post(body_mode=Mode.STREAMED))
    sp.handle(messages.request_body(b"q=ok", end_of_stream=False))
    reply = sp.handle(trailers_msg())
    assert reply.WhichOneof("response") == "request_trailers"
    assert sp.state is State.ALLOWED


# -- protocol errors ------------------------------------------------------------------------


def test_body_before_headers_is_out_of_order():
    with pytest.raises(ProtocolError) as info:
        new_processor().handle(messages.request_body(b"x"))
    assert info.value.kind == "out_of_order"


@pytest.mark.parametrize("message", [trailers_msg(), messages.response_headers()])
def test_other_phases_before_headers_are_out_of_order(message):
    with pytest.raises(ProtocolError) as info:
        new_processor().handle(message)
    assert info.value.kind == "out_of_order"


def test_headers_twice_is_protocol_error():
    sp = new_processor()
    sp.handle(headers_msg())
    with pytest.raises(ProtocolError) as info:
        sp.handle(headers_msg())
    assert info.value.kind == "out_of_order"


def test_headers_twice_while_awaiting_body_is_protocol_error():
    sp = new_processor()
    sp.handle(form_post())
    with pytest.raises(ProtocolError):
        sp.handle(form_post())


def test_empty_message_is_protocol_error():
    with pytest.raises(ProtocolError) as info:
        new_processor().handle(pb.ProcessingRequest())
    assert info.value.kind == "empty_message"


# -- after the decision ---------------------------------------------------------------------


def test_messages_after_deny_are_not_answered_and_counted():
    sp = new_processor()
    assert_deny(sp.handle(headers_msg(path="/admin")))
    assert sp.handle(messages.request_body(b"late")) is None
    assert sp.handle(messages.response_headers()) is None
    assert sp.spurious == 2


@pytest.mark.parametrize(
    "message, kind",
    [
        (messages.response_headers(), "response_headers"),
        (messages.response_body(b"<html>"), "response_body"),
        (messages.response_trailers(), "response_trailers"),
    ],
)
def test_response_phases_get_plain_continue_of_matching_type(message, kind):
    sp = new_processor()
    sp.handle(headers_msg(headers=[("user-agent", "curl/8")]))
    assert_continue(sp.handle(message), kind)


def test_full_exchange_with_response_phases():
    sp = new_processor()
    sp.handle(form_post(body_mode=Mode.BUFFERED))
    sp.handle(messages.request_body(b"q=1"))
    assert_continue(sp.handle(messages.response_headers()), "response_headers")
    assert_continue(sp.handle(messages.response_body(b"")), "response_body")
    assert sp.spurious == 0


def test_body_on_route_decided_on_headers_gets_plain_continue():
    decisions = []
    sp = new_processor(decisions)
    reply = sp.handle(form_post(route="static", body_mode=Mode.BUFFERED))
    assert reply.WhichOneof("response") == "request_headers"
    assert not reply.HasField("mode_override")
    assert sp.state is State.ALLOWED
    assert_continue(sp.handle(messages.request_body(JNDI)), "request_body")
    assert_continue(sp.handle(trailers_msg()), "request_trailers")
    assert len(decisions) == 1


def test_route_decided_on_headers_does_not_ask_for_body():
    sp = new_processor()
    reply = sp.handle(form_post(route="static"))  # body mode NONE: nothing to override
    assert not reply.HasField("mode_override")


# -- observability mode ---------------------------------------------------------------------


def test_observability_mode_gets_no_replies():
    decisions = []
    sp = new_processor(decisions)
    assert sp.handle(form_post(observability=True, body_mode=Mode.STREAMED)) is None
    assert sp.handle(messages.request_body(b"q=${jndi:", end_of_stream=False, observability=True)) is None
    assert sp.handle(messages.request_body(b"x}", end_of_stream=True, observability=True)) is None
    assert sp.handle(messages.response_headers(observability=True)) is None
    assert len(decisions) == 1  # still decided and recorded


def test_observability_mode_get_decided_without_reply():
    decisions = []
    sp = new_processor(decisions)
    assert sp.handle(headers_msg(path="/admin", observability=True)) is None
    assert decisions and not decisions[0].allowed


# -- robustness -----------------------------------------------------------------------------


def test_invalid_utf8_header_values_do_not_crash():
    sp = new_processor()
    reply = sp.handle(
        headers_msg(
            path="/ok",
            headers=[("user-agent", b"curl/\xff\xfe"), ("cookie", b"a=\xc3\x28"), ("x-extproc-tags", b"\x80")],
        )
    )
    assert reply.WhichOneof("response") == "request_headers"
    mutation = reply.request_headers.response.header_mutation
    assert set_headers(mutation)["x-extproc-tags"] == b"automation"
    reply.SerializeToString()  # the reply itself must be encodable


def test_invalid_utf8_in_path_and_deny_reply_is_valid_json():
    sp = new_processor()
    message = headers_msg(path="/admin")
    for header in message.request_headers.headers.headers:
        if header.key == ":path":
            header.raw_value = b"/admin/\xff%ff"
    reply = sp.handle(message)
    assert_deny(reply)
    reply.SerializeToString()


def test_header_in_value_field_only_is_still_read():
    # Pre-1.40 builds filled `value`; the converter falls back to it when raw_value is empty.
    message = headers_msg(headers=[])
    message.request_headers.headers.headers.append(core_pb2.HeaderValue(key="user-agent", value="curl/7"))
    sp = new_processor()
    reply = sp.handle(message)
    assert set_headers(reply.request_headers.response.header_mutation)["x-extproc-tags"] == b"automation"


# -- deadline -------------------------------------------------------------------------------


def test_body_arriving_after_the_layer_budget_is_still_inspected():
    # Regression: the deadline used to start with the headers message, so the client's upload
    # time was charged to the layers and a body arriving > 5 ms later got 503 (fault:deadline).
    text = POLICY_TEXT.replace("  deadline_ms: 60000\n", "")
    assert "deadline_ms" not in text
    policy = parse_policy(text, "no-deadline")
    sp = StreamProcessor(policy)
    sp.handle(form_post(body_mode=Mode.BUFFERED))
    time.sleep(0.05)  # the client uploads the body; nothing of ours runs meanwhile
    reply = sp.handle(messages.request_body(b"q=hello"))
    assert reply.WhichOneof("response") == "request_body", reply
    assert sp.decision.allowed and "fault:deadline" not in sp.decision.reasons


def test_body_arriving_within_a_configured_deadline_is_inspected():
    sp = new_processor()
    sp.handle(form_post(body_mode=Mode.BUFFERED))
    time.sleep(0.02)
    assert_deny(sp.handle(messages.request_body(JNDI)), 403)
    assert sp.decision.reasons == ("rule:block-jndi",)


def test_an_empty_replacement_clears_the_response_chunk():
    # b"" from the pipeline (a withheld answer's later chunks, a held-back partial event) must
    # clear the chunk: a reply without a mutation would pass it on as it is.
    from extproc.wire import convert

    assert convert.to_pb(convert.response_body_reply(b"")).response_body.response.body_mutation.clear_body
    assert convert.to_pb(convert.response_body_reply(None)).response_body == pb.BodyResponse()


def test_cached_header_replies_carry_each_decisions_own_headers():
    from extproc.wire import convert
    from extproc.core.verdict import Decision

    def reply(*headers, **flags):
        decision = Decision("rid", "r", True, set_headers=tuple(headers))
        return convert.to_pb(convert.headers_reply(decision, **flags))

    def header_set(response):
        mutation = response.request_headers.response.header_mutation
        return {(h.header.key, h.header.raw_value.decode()) for h in mutation.set_headers}

    first = reply(("x-bot-score", "99"), ("x-waf-attack-score", "99"))
    assert reply(("x-bot-score", "99"), ("x-waf-attack-score", "99")) is first  # reused
    assert header_set(reply(("x-bot-score", "12"), ("x-waf-attack-score", "99"))) == {
        ("x-bot-score", "12"), ("x-waf-attack-score", "99")}
    asking = reply(("x-bot-score", "99"), ("x-waf-attack-score", "99"), ask_for_body=True)
    assert asking is not first and asking.mode_override.request_body_mode and not first.HasField("mode_override")
    identity = ("x-auth-assertion", "eyJ" + "a" * 200)  # varies per request: never kept
    assert reply(identity) is not reply(identity) and header_set(reply(identity)) == {identity}


def test_a_finished_stream_is_freed_at_once_without_the_cycle_collector():
    # A reference cycle per request (a callback that refers back to its stream) left every
    # request, its parsed body and decision to the cyclic collector: tens of ms pauses under load,
    # long enough to skip a layer for its deadline.
    import gc

    from extproc.config.compile import load_policy

    policy = load_policy(REPO / "deploy" / "policy" / "demo.yaml")
    body = orjson.dumps({"items": [{"sku": f"S{i}", "note": "gift wrap"} for i in range(40)]})
    sent = [
        messages.request_headers("POST", "/api/orders", [("content-type", "application/json"),
                                                         ("user-agent", "Mozilla/5.0")],
                                 authority="shop.example", scheme="https"),
        messages.request_body(body),
    ]
    import weakref

    gc.collect()
    gc.disable()
    try:
        left = []
        for _ in range(20):
            stream = StreamProcessor(policy)
            for message in sent:
                stream.handle(message)
            assert stream.decision is not None
            left += [weakref.ref(stream), weakref.ref(stream.transaction), weakref.ref(stream.transaction.request)]
        del stream
        assert all(ref() is None for ref in left)  # gone by reference counting alone
    finally:
        gc.enable()


def test_header_names_a_client_chose_never_key_the_reply_cache():
    from extproc.wire import convert
    from extproc.core.verdict import Decision

    before = len(convert._REPLIES)
    for n in range(50):  # a client sending its own x-extproc-<long random> headers, stripped each time
        decision = Decision("rid", "r", True, set_headers=(("x-bot-score", "99"),),
                            remove_headers=(f"x-extproc-{n}-" + "a" * 10_000,))
        reply = convert.to_pb(convert.headers_reply(decision))
        assert list(reply.request_headers.response.header_mutation.remove_headers) == list(decision.remove_headers)
    assert len(convert._REPLIES) <= before + 1
