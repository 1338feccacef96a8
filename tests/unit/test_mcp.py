"""The MCP layer in-process: JSON-RPC parsing, per-group tool policy, limits, scanning, rate limits,
list filtering on the response, and the audit trail."""
from __future__ import annotations

import json

import orjson
import pytest

from extproc.access.identity import Identity
from extproc.config.compile import parse_policy
from extproc.mcp.audit import query
from extproc.mcp.listing import filter_answer
from extproc.core.transaction import Transaction
from extproc.core.request import Request

TOOLS = {"jsonrpc": "2.0", "id": 2, "result": {"tools": [{"name": n} for n in
                                                          ("search_code", "read_file", "delete_repo", "add")]}}


@pytest.fixture
def policy(tmp_path):
    text = f"""
version: 1
defaults:
  layers:
    mcp:
      server: github
      groups:
        engineering: {{servers: [github], tools: {{allow: ["*"], deny: ["delete_*"]}}, resources: {{allow: ["repo://*"]}}}}
        sales: {{servers: [github], tools: {{allow: [add]}}}}
      max_argument_bytes: 2048
      rate_limit: {{requests: 3, per_s: 60}}
      audit: {{path: {tmp_path / 'mcp.jsonl'}}}
"""
    return parse_policy(text, "mcp")


def who(name: str, *groups: str) -> Identity:
    return Identity(methods=frozenset({"jwt"}), email=f"{name}@corp.example", groups=frozenset(groups))


def call(policy, body, identity=None, headers=()):
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    request = Request("POST", "/mcp", headers=(("content-type", "application/json"), *headers), has_body=True,
                      request_id="rid-1")
    transaction = Transaction(policy, request, identity=identity)
    assert transaction.on_headers() is None
    return transaction, transaction.on_body(data)


def rpc(method, params=None, message_id=1):
    return {"jsonrpc": "2.0", "id": message_id, "method": method, "params": params or {}}


def error_of(decision) -> dict:
    from extproc.wire.convert import deny_reply, to_pb

    return json.loads(to_pb(deny_reply(decision)).immediate_response.body)


def test_allowed_tool_call_passes_and_a_denied_one_gets_a_json_rpc_error(policy):
    _, allowed = call(policy, rpc("tools/call", {"name": "search_code", "arguments": {"q": "parser"}}),
                      who("ana", "engineering"))
    assert allowed.allowed
    _, denied = call(policy, rpc("tools/call", {"name": "delete_repo", "arguments": {"name": "core"}}, 7),
                     who("ana", "engineering"))
    assert not denied.allowed and denied.status == 200
    assert error_of(denied) == {"jsonrpc": "2.0", "id": 7, "error": {
        "code": -32001, "message": "Forbidden by policy", "data": {"request_id": "rid-1"}}}
    assert denied.reasons == ("mcp:tool_not_allowed:tools/call:delete_repo",)


def test_access_follows_groups_and_unknown_callers_get_nothing(policy):
    add = rpc("tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}})
    assert call(policy, add, who("bo", "sales"))[1].allowed
    assert not call(policy, rpc("tools/call", {"name": "search_code"}), who("bo", "sales"))[1].allowed
    assert not call(policy, add, None)[1].allowed  # no identity, no group that names the server
    assert not call(policy, rpc("tools/list"), who("eve", "marketing"))[1].allowed


@pytest.mark.parametrize("body, code, status", [
    (b"{not json", -32700, 400),
    (b'{"jsonrpc": "1.0", "id": 1, "method": "tools/list"}', -32600, 400),
    (b"[]", -32600, 400),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": [1, 2]}', -32602, 400),
    (b'{"jsonrpc": "2.0", "id": {"x": 1}, "method": "ping"}', -32600, 400),
    (b"\xff\xfe", -32700, 400),
])
def test_malformed_json_rpc_gets_a_json_rpc_error_not_a_crash(policy, body, code, status):
    _, decision = call(policy, body, who("ana", "engineering"))
    assert (decision.allowed, decision.status, error_of(decision)["error"]["code"]) == (False, status, code)


def test_a_batch_is_refused_whole_with_an_error_per_request(policy):
    batch = [rpc("tools/call", {"name": "search_code"}, 1), rpc("tools/call", {"name": "delete_repo"}, 2),
             {"jsonrpc": "2.0", "method": "notifications/progress", "params": {}}]
    _, decision = call(policy, batch, who("ana", "engineering"))
    errors = error_of(decision)
    assert [(e["id"], e["error"]["code"]) for e in errors] == [(1, -32001), (2, -32001)]
    assert "another message" in errors[0]["error"]["message"]
    assert call(policy, batch[:1] + batch[2:], who("ana", "engineering"))[1].allowed


def test_arguments_are_bounded_scanned_and_rate_limited(policy):
    ana = who("ana", "engineering")
    huge = rpc("tools/call", {"name": "search_code", "arguments": {"q": "x" * 5000}})
    assert call(policy, huge, ana)[1].reasons == ("mcp:arguments_too_large:tools/call:search_code",)
    deep = rpc("tools/call", {"name": "search_code", "arguments": {"q": json.loads("[" * 40 + "]" * 40)}})
    assert call(policy, deep, ana)[1].reasons == ("mcp:arguments_too_deep:tools/call:search_code",)
    injection = rpc("tools/call", {"name": "read_file", "arguments": {"path": "../../../../etc/passwd"}})
    assert call(policy, injection, ana)[1].reasons == ("mcp:arguments_attack:tools/call:read_file",)
    cy = who("cy", "engineering")  # a bucket of its own: three calls a minute per identity and tool
    reads = [call(policy, rpc("tools/call", {"name": "read_file", "arguments": {"path": "src/app.py"}}), cy)[1]
             for _ in range(4)]
    assert [d.allowed for d in reads] == [True, True, True, False]
    assert reads[-1].reply.headers[0][0] == "retry-after"


def test_method_headers_must_agree_with_the_body(policy):
    body = rpc("tools/call", {"name": "search_code"})
    assert call(policy, body, who("ana", "engineering"), [("mcp-method", "tools/call"), ("mcp-name", "search_code")])[1].allowed
    spoofed = call(policy, body, who("ana", "engineering"), [("mcp-method", "tools/list")])[1]
    assert spoofed.reasons == ("mcp:header_body_mismatch:tools/call:search_code",)


def test_tool_list_answer_is_filtered_to_what_the_caller_may_use(policy):
    transaction, decision = call(policy, rpc("tools/list", message_id=2), who("ana", "engineering"))
    assert decision.allowed
    assert transaction.on_response_headers("200", ((":status", "200"), ("content-type", "application/json")))
    shown = orjson.loads(transaction.on_response_body(orjson.dumps(TOOLS)))
    assert [t["name"] for t in shown["result"]["tools"]] == ["search_code", "read_file", "add"]
    sse = b"event: message\ndata: " + orjson.dumps(TOOLS) + b"\n\n"
    rewritten, listed, kept = filter_answer(sse, "text/event-stream", lambda kind, name: name == "add")
    assert (listed, kept) == (4, 1) and b'"delete_repo"' not in rewritten and rewritten.startswith(b"event: message\n")


def nested(levels: int, leaf=None):
    for _ in range(levels):
        leaf = {"a": leaf}
    return leaf


def test_arguments_nested_beyond_what_can_be_serialised_are_refused_not_a_layer_failure(policy, tmp_path):
    # 300 levels parse (orjson reads 1024) but do not serialise (it writes 254): the layer used to
    # raise on them (503, "layer mcp failed"), for any tool and also in the audit record.
    ana = who("ana", "engineering")
    for method, name in (("tools/call", "search_code"), ("prompts/get", "review")):
        body = json.dumps(rpc(method, {"name": name, "arguments": nested(300)}, 5)).encode()
        _, decision = call(policy, body, ana)
        assert [r.outcome.value for r in decision.results] == ["ok"]
        if method == "tools/call":
            assert decision.reasons == ("mcp:arguments_too_deep:tools/call:search_code",)
            assert error_of(decision)["error"]["code"] == -32602
    from extproc.mcp.audit import close_all

    close_all()
    records = [json.loads(line) for line in (tmp_path / "mcp.jsonl").read_text().splitlines()]
    assert records[-2]["arguments"] == {"too_deep": True} and records[-2]["reason"] == "arguments_too_deep"


@pytest.mark.parametrize("params", [b'{"name": ' + b"[" * 1000 + b"]" * 1000 + b"}", b'{"uri": {"x": 1}}',
                                    b'{"name": ["search_code"]}'])
def test_a_target_that_is_not_a_name_is_invalid_params(policy, params):
    body = b'{"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": ' + params + b"}"
    _, decision = call(policy, body, who("ana", "engineering"))
    assert (decision.status, error_of(decision)["error"]["code"]) == (400, -32602)
    assert [r.outcome.value for r in decision.results] == ["ok"]


def test_a_list_answer_that_cannot_be_filtered_is_withheld_not_passed_unfiltered(policy):
    # A tool the caller may see with a schema nested beyond 254 levels made the re-serialisation
    # raise, and the answer went out unfiltered: delete_repo, which ana may not use, was listed.
    deep = {"jsonrpc": "2.0", "id": 2, "result": {"tools": [{"name": "search_code", "inputSchema": nested(300)},
                                                            {"name": "delete_repo"}]}}
    transaction, decision = call(policy, rpc("tools/list", message_id=2), who("ana", "engineering"))
    assert transaction.on_response_headers("200", ((":status", "200"), ("content-type", "application/json")))
    shown = transaction.on_response_body(json.dumps(deep).encode())
    assert orjson.loads(shown) == {"jsonrpc": "2.0", "id": 2, "error": {
        "code": -32603, "message": "List answer too deeply nested to filter"}}
    sse = b"event: message\ndata: " + json.dumps([deep]).encode() + b"\n\n"
    rewritten, _, _ = filter_answer(sse, "text/event-stream", lambda kind, name: name != "delete_repo")
    assert b"delete_repo" not in rewritten and b'"code":-32603' in rewritten


def test_a_call_without_an_id_is_judged_like_any_call(policy):
    # A JSON-RPC notification is still run by the server; it used to skip every check here.
    ana = who("ana", "engineering")
    cases = (({"name": "delete_repo"}, -32001), ({"name": "search_code", "arguments": {"q": "x" * 5000}}, -32602))
    for params, code in cases:
        message = {"jsonrpc": "2.0", "method": "tools/call", "params": params}
        _, decision = call(policy, message, ana)
        assert not decision.allowed and decision.reasons[0].startswith("mcp:")
        # No id to answer with: an HTTP error status (Streamable HTTP) and an id-less error object.
        assert decision.status == 403 and error_of(decision)["id"] is None
        assert error_of(decision)["error"]["code"] == code
    _, anonymous = call(policy, {"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "add"}})
    assert not anonymous.allowed
    assert call(policy, {"jsonrpc": "2.0", "method": "notifications/initialized"}, ana)[1].allowed


def test_invalid_utf8_in_client_headers_is_audited_as_latin1_not_a_layer_failure(policy, tmp_path):
    from extproc.mcp.audit import close_all

    headers = (("user-agent", "agent/1 \udcff"), ("mcp-session-id", "s\udcfe"))
    _, decision = call(policy, rpc("tools/call", {"name": "search_code", "arguments": {"q": "parser"}}),
                       who("ana", "engineering"), headers)
    assert decision.allowed and [r.outcome.value for r in decision.results] == ["ok"]
    close_all()
    record = list(query([str(tmp_path / "mcp.jsonl")]))[-1]
    assert record["client"]["user_agent"] == "agent/1 \u00ff" and record["client"]["session"] == "s\u00fe"


def test_every_message_has_an_audit_record(policy, tmp_path):
    from extproc.mcp.audit import close_all

    call(policy, rpc("tools/call", {"name": "search_code", "arguments": {"q": "parser"}}), who("ana", "engineering"))
    call(policy, rpc("tools/call", {"name": "delete_repo"}), who("ana", "engineering"))
    call(policy, b"{broken", who("bo", "sales"))
    close_all()
    records = list(query([str(tmp_path / "mcp.jsonl")]))
    assert [(r["identity"], r["target"], r["decision"], r["reason"]) for r in records] == [
        ("ana@corp.example", "search_code", "allow", ""), ("ana@corp.example", "delete_repo", "deny", "tool_not_allowed"),
        ("bo@corp.example", "", "deny", "malformed")]
    assert records[0]["arguments"]["bytes"] == len(b'{"q":"parser"}') and len(records[0]["arguments"]["sha256"]) == 64
    assert [r["target"] for r in query([str(tmp_path / "mcp.jsonl")], decision="deny", identity="ana@corp.example")] == [
        "delete_repo"]


def test_audit_command_filters_records(tmp_path, capsys):
    from extproc import cli

    log = tmp_path / "mcp.jsonl"
    rows = [{"v": 1, "time": "2026-11-26T01:00:00.000Z", "identity": "ana", "target": "add", "decision": "allow"},
            {"v": 1, "time": "2026-11-26T02:00:00.000Z", "identity": "ana", "target": "delete_repo", "decision": "deny"},
            {"v": 1, "time": "2026-11-26T03:00:00.000Z", "identity": "bo", "target": "add", "decision": "deny"}]
    (tmp_path / "mcp.jsonl.1").write_text(json.dumps(rows[0]) + "\n")  # rotated: older records
    log.write_text("\n".join(json.dumps(r) for r in rows[1:]) + "\n{torn line\n")
    assert cli.main(["audit", str(log), "--decision", "deny", "--since", "2026-11-26T01:30:00Z"]) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["identity"], r["target"]) for r in found] == [("ana", "delete_repo"), ("bo", "add")]
    assert cli.main(["audit", str(log), "--identity", "ana"]) == 0
    assert [json.loads(x)["target"] for x in capsys.readouterr().out.splitlines()] == ["add", "delete_repo"]


def sent(chunk: bytes, reply: bytes | None) -> bytes:
    """What the client gets for a chunk: None leaves it as it is."""
    return chunk if reply is None else reply


def list_transaction(policy, content_type="application/json", message_id=2):
    transaction, decision = call(policy, rpc("tools/list", message_id=message_id), who("ana", "engineering"))
    assert decision.allowed
    assert transaction.on_response_headers("200", ((":status", "200"), ("content-type", content_type)))
    return transaction


def break_filter(transaction):
    layer = transaction.response_layers[0]

    def broken(*_args):
        raise RuntimeError("policy lookup failed")

    layer.permissions.permits = broken  # an instance attribute: only this test's layer breaks


@pytest.mark.parametrize("content_type", ["application/json", "text/event-stream"])
def test_a_failing_list_filter_withholds_the_answer_by_default(policy, content_type):
    # The pipeline caught the failure and sent the original answer on: every tool, delete_repo too.
    transaction = list_transaction(policy, content_type)
    faults = transaction.response_faults  # what the stream reports to metrics
    break_filter(transaction)
    answer = orjson.dumps(TOOLS)
    body = answer if content_type == "application/json" else b"event: message\ndata: " + answer + b"\n\n"
    shown = transaction.on_response_body(body)
    assert b"delete_repo" not in shown and faults == ["mcp"]
    message = orjson.loads(shown if content_type == "application/json" else shown.split(b"data: ")[1])
    assert message == {"jsonrpc": "2.0", "id": 2, "error": {
        "code": -32603, "message": "List answer could not be filtered", "data": {"request_id": "rid-1"}}}
    assert transaction.on_response_body(body) == b""  # nothing of the answer follows the error


def fail_open_policy(tmp_path):
    return parse_policy(f"""
version: 1
defaults:
  layers:
    mcp:
      server: github
      on_error: open
      groups:
        engineering: {{servers: [github], tools: {{allow: ["*"], deny: ["delete_*"]}}}}
      audit: {{path: {tmp_path / 'mcp.jsonl'}}}
""", "mcp")


def test_a_failing_list_filter_set_to_fail_open_passes_the_answer_and_counts_it(tmp_path):
    policy = fail_open_policy(tmp_path)
    transaction = list_transaction(policy)
    faults = transaction.response_faults  # what the stream reports to metrics
    break_filter(transaction)
    answer = orjson.dumps(TOOLS)
    assert sent(answer, transaction.on_response_body(answer)) == answer  # the original, as configured
    assert faults == ["mcp"]


def test_a_withheld_batch_answer_has_an_error_per_request_id(policy):
    batch = [rpc("tools/list", message_id=4), rpc("ping", message_id="p")]
    transaction, decision = call(policy, batch, who("ana", "engineering"))
    assert transaction.on_response_headers("200", ((":status", "200"), ("content-type", "application/json")))
    break_filter(transaction)
    errors = orjson.loads(transaction.on_response_body(orjson.dumps([TOOLS, {"jsonrpc": "2.0", "id": "p", "result": {}}])))
    assert [(e["id"], e["error"]["code"]) for e in errors] == [(4, -32603), ("p", -32603)]


def client_reads(stream: bytes) -> list[object]:
    """The JSON messages an SSE client dispatches: any line ending, data lines joined by "\\n"."""
    text = stream.removeprefix(b"\xef\xbb\xbf").replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    messages = []
    for block in text.split(b"\n\n"):
        data = [line[5:].removeprefix(b" ") for line in block.split(b"\n") if line.startswith(b"data:")]
        if data and b"\n".join(data).strip():
            messages.append(orjson.loads(b"\n".join(data)))
    return messages


def tool_names(messages) -> list[str]:
    return [t["name"] for m in messages if "result" in m for t in m["result"]["tools"]]


def spread(message: dict, ending: bytes) -> bytes:
    """One event whose JSON spans several data lines (legal SSE: clients join them with "\\n")."""
    lines = orjson.dumps(message, option=orjson.OPT_INDENT_2).split(b"\n")
    return b"event: message" + ending + b"".join(b"data: " + line + ending for line in lines) + ending


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_an_event_spread_over_several_data_lines_is_filtered(policy, ending):
    # Each data line was read on its own: none is JSON alone, so the event went out unfiltered.
    stream = b": keep-alive" + ending + ending + spread(TOOLS, ending) + b"id: 7" + ending + b"data:" + ending + ending
    transaction = list_transaction(policy, "text/event-stream")
    shown = sent(stream, transaction.on_response_body(stream))
    assert tool_names(client_reads(shown)) == ["search_code", "read_file", "add"]
    assert b"delete_repo" not in shown and shown.startswith(b": keep-alive" + ending + ending + b"event: message" + ending)
    assert shown.endswith(b"id: 7" + ending + b"data:" + ending + ending)  # other events pass as they came


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_an_event_cut_between_chunks_is_filtered_whole(policy, ending):
    # Envoy STREAMED sends the body in pieces; an event cut anywhere (a CRLF too) is held back
    # until its end arrives, then filtered.
    stream = b"\xef\xbb\xbf" + spread(TOOLS, ending) + spread({"jsonrpc": "2.0", "method": "notifications/x"}, ending)
    for cut in range(1, len(stream)):
        transaction = list_transaction(policy, "text/event-stream")
        parts = [stream[:cut], stream[cut:cut + 7], stream[cut + 7:]]
        shown = b"".join(sent(part, transaction.on_response_body(part, end_of_stream=index == 2))
                         for index, part in enumerate(parts))
        assert b"delete_repo" not in shown, cut
        assert tool_names(client_reads(shown)) == ["search_code", "read_file", "add"], cut
        assert client_reads(shown)[1] == {"jsonrpc": "2.0", "method": "notifications/x"}


def test_an_event_the_body_ends_inside_is_still_filtered(policy):
    stream = b"event: message\ndata: " + orjson.dumps(TOOLS)  # no blank line: some clients read it anyway
    transaction = list_transaction(policy, "text/event-stream")
    assert b"delete_repo" not in sent(stream, transaction.on_response_body(stream))


def test_a_json_answer_cut_between_chunks_is_filtered_whole(policy):
    answer = orjson.dumps(TOOLS)
    transaction = list_transaction(policy)
    first = transaction.on_response_body(answer[:20], end_of_stream=False)
    assert first == b""  # held back: half a JSON document cannot be judged
    assert tool_names([orjson.loads(transaction.on_response_body(answer[20:]))]) == ["search_code", "read_file", "add"]


def test_an_event_that_is_not_json_withholds_the_answer_unless_the_filter_fails_open(policy, tmp_path):
    stream = b"event: message\ndata: " + orjson.dumps(TOOLS)[:-1] + b"\n\n"  # cut short: a client may still read names
    transaction = list_transaction(policy, "text/event-stream")
    shown = transaction.on_response_body(stream)
    assert b"delete_repo" not in shown and client_reads(shown)[0]["error"]["code"] == -32603
    open_policy = fail_open_policy(tmp_path)
    transaction = list_transaction(open_policy, "text/event-stream")
    held = transaction.on_response_body(stream[:30], end_of_stream=False)
    assert held == b""
    # Failing open passes what was held back too, so the client gets the stream as the server sent it.
    assert held + sent(stream[30:], transaction.on_response_body(stream[30:])) == stream


def test_failing_open_mid_stream_passes_exactly_what_was_not_sent_wherever_the_chunks_are_cut(tmp_path):
    good = b"event: message\r\ndata: " + orjson.dumps({"jsonrpc": "2.0", "method": "notifications/x"}) + b"\r\n\r\n"
    bad = b": keep-alive\n\nevent: message\ndata: {not json\n\n"
    stream = b"\xef\xbb\xbf" + good + bad
    for cut in range(1, len(stream)):
        transaction = list_transaction(fail_open_policy(tmp_path), "text/event-stream")
        first = transaction.on_response_body(stream[:cut], end_of_stream=False)
        rest = transaction.on_response_body(stream[cut:])
        assert sent(stream[:cut], first) + sent(stream[cut:], rest) == stream, cut
