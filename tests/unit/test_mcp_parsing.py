"""The MCP layer reads each message as the MCP server behind it does, or refuses it: the target of
each method from the member servers read (params.uri for resources, params.name for tools and
prompts), and bodies that parsers read differently (BOM, trailing bytes, duplicate or case-folded
member names, other charsets) never judged one way and executed another."""
from __future__ import annotations

import json

import orjson
import pytest

from extproc.access.identity import Identity
from extproc.config.compile import parse_policy
from extproc.wire.convert import deny_reply, to_pb
from extproc.core.transaction import Transaction
from extproc.core.request import Request

PUBLIC, SECRET = "repo://public/readme", "repo://private/secrets"


@pytest.fixture
def policy():
    return parse_policy("""
version: 1
defaults:
  layers:
    mcp:
      server: github
      audit: null
      rate_limit: null
      groups:
        support: {servers: [github], tools: {allow: [search_code]}, resources: {allow: ["repo://public/*"]},
                  prompts: {allow: [summary]}}
""", "mcp")


def send(policy, body: bytes, content_type: str = "application/json"):
    request = Request("POST", "/mcp", headers=(("content-type", content_type),), has_body=True, request_id="rid")
    identity = Identity(methods=frozenset({"jwt"}), email="sam@corp.example", groups=frozenset({"support"}))
    transaction = Transaction(policy, request, identity=identity)
    assert transaction.on_headers() is None
    return transaction.on_body(body)


def rpc(method: str, params: dict, message_id: int = 1) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": message_id, "method": method, "params": params})


def error_code(decision) -> int:
    reply = json.loads(to_pb(deny_reply(decision)).immediate_response.body)
    return (reply[0] if isinstance(reply, list) else reply)["error"]["code"]


@pytest.mark.parametrize("method", ["resources/read", "resources/subscribe", "resources/unsubscribe"])
def test_resources_are_judged_by_the_uri_servers_read_not_the_name(policy, method):
    assert send(policy, rpc(method, {"uri": PUBLIC})).allowed
    assert send(policy, rpc(method, {"uri": SECRET})).reasons == (f"mcp:resource_not_allowed:{method}:{SECRET}",)
    # The finding: a public name beside a private uri was judged by the name.
    smuggled = send(policy, rpc(method, {"name": PUBLIC, "uri": SECRET}))
    assert not smuggled.allowed and error_code(smuggled) == -32602
    assert send(policy, rpc(method, {"name": PUBLIC, "uri": PUBLIC})).allowed  # the same value: nothing to disagree


@pytest.mark.parametrize("method, allowed, denied", [("tools/call", "search_code", "delete_repo"),
                                                     ("prompts/get", "summary", "leak_env")])
def test_tools_and_prompts_are_judged_by_their_name_and_a_uri_beside_it_is_refused(policy, method, allowed, denied):
    assert send(policy, rpc(method, {"name": allowed})).allowed
    assert not send(policy, rpc(method, {"name": denied})).allowed
    smuggled = send(policy, rpc(method, {"uri": allowed, "name": denied}))
    assert not smuggled.allowed and error_code(smuggled) == -32602
    assert error_code(send(policy, rpc(method, {"uri": allowed}))) == -32602  # no name: nothing the server calls


@pytest.mark.parametrize("params", [{}, {"uri": ""}, {"uri": 5}, {"uri": None, "name": PUBLIC}])
def test_a_resource_call_without_a_uri_string_is_invalid_params(policy, params):
    decision = send(policy, rpc("resources/read", params))
    assert not decision.allowed and error_code(decision) == -32602


@pytest.mark.parametrize("uri", ["repo://public/../private/secrets", "repo://public/x/../../private/secrets",
                                 "repo://public/..%2Fprivate%2Fsecrets", "repo://public/%2e%2e/private/secrets",
                                 "repo://public/%252e%252e%252fprivate/secrets", "repo://public/..\\private\\secrets",
                                 "repo://public/..;x=1/private/secrets", "repo://public/./..?/private"])
def test_resource_uris_a_server_could_resolve_elsewhere_are_refused(policy, uri):
    # They match "repo://public/*" as text; a server that maps the path onto files reads private/.
    decision = send(policy, rpc("resources/read", {"uri": uri}))
    assert not decision.allowed and error_code(decision) == -32602


@pytest.mark.parametrize("uri", ["repo://public/v1.2/notes..md", "repo://public/a%20b", "repo://public/...x"])
def test_uris_with_dots_that_are_not_segments_are_judged_as_usual(policy, uri):
    assert send(policy, rpc("resources/read", {"uri": uri})).allowed


@pytest.mark.parametrize("body", [
    b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "delete_repo", "name": "search_code"}}',
    b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search_code", '
    b'"n\\u0061me": "delete_repo"}}',
    b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "method": "tools/list", "params": {"name": "delete_repo"}}',
    b'{"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": "' + SECRET.encode()
    + b'", "uri": "' + PUBLIC.encode() + b'"}}',
    b'{"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": "' + PUBLIC.encode()
    + b'", "URI": "' + SECRET.encode() + b'"}}',
    b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search_code", '
    b'"arguments": {"q": "../../../../etc/passwd", "q": "parser"}}}',
    b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search_code", '
    b'"arguments": {"q": "parser", "\\u0051": "x\' UNION SELECT password FROM users--"}}}',
])
def test_duplicate_member_names_are_a_parse_error_whichever_value_a_server_keeps(policy, body):
    decision = send(policy, body)
    assert not decision.allowed and error_code(decision) == -32700 and decision.reasons == ("mcp:malformed",)


@pytest.mark.parametrize("body", [
    b'{"jsonrpc": "2.0", "id": 1, "Method": "tools/call", "params": {"name": "delete_repo"}}',
    b'{"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"URI": "' + SECRET.encode() + b'"}}',
    b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search_code", '
    b'"Arguments": {"q": 1}}}',
    # Go folds the long s with s: "argumentſ" fills the arguments the scanner would not have read.
    '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search_code", '
    '"argument\u017f": {"q": "../../../../etc/passwd"}}}'.encode(),
    '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search_code", "arguments": {"q": 1}, '
    '"argument\u017f": {"q": "../../../../etc/passwd"}}}'.encode(),
])
def test_member_names_in_another_case_are_refused_as_case_insensitive_servers_read_them(policy, body):
    # Go's encoding/json fills "method" from "Method": judged by the exact name, executed by the other.
    decision = send(policy, body)
    assert not decision.allowed and error_code(decision) in (-32600, -32700)


def test_a_bom_is_skipped_as_lenient_servers_do_and_the_message_judged(policy):
    bom = b"\xef\xbb\xbf"
    assert send(policy, bom + rpc("tools/call", {"name": "search_code"})).allowed
    denied = send(policy, bom + rpc("resources/read", {"uri": SECRET}))
    assert denied.reasons == (f"mcp:resource_not_allowed:resources/read:{SECRET}",)
    assert error_code(send(policy, bom + bom + rpc("tools/call", {"name": "search_code"}))) == -32700


@pytest.mark.parametrize("tail", [b" garbage", b"\x00", b'{"jsonrpc": "2.0", "id": 2, "method": "ping"}',
                                  b"\n" + rpc("tools/call", {"name": "delete_repo"}), b"]", b"\xef\xbb\xbf"])
def test_bytes_after_the_json_value_are_a_parse_error(policy, tail):
    # Go's json.Decoder reads the first value and ignores the rest; others refuse or read more.
    decision = send(policy, rpc("tools/call", {"name": "search_code"}) + tail)
    assert not decision.allowed and error_code(decision) == -32700
    assert send(policy, rpc("tools/call", {"name": "search_code"}) + b" \r\n\t").allowed  # JSON whitespace


@pytest.mark.parametrize("body, content_type", [
    (rpc("tools/call", {"name": "delete_repo"}).decode().encode("utf-16"), "application/json"),
    (rpc("tools/call", {"name": "delete_repo"}).decode().encode("utf-32"), "application/json"),
    (rpc("tools/call", {"name": "search_code"}), "application/json; charset=utf-16"),
    (rpc("tools/call", {"name": "search_code"}), "application/json; charset=ibm037"),
    (rpc("tools/call", {"name": "search_code"}), "application/json; charset=windows-1252"),
    (rpc("tools/call", {"name": "search_code\xe9"}).replace(b"\xc3\xa9", b"\xe9"), "application/json"),
])
def test_bodies_that_are_not_utf_8_are_a_parse_error(policy, body, content_type):
    # Python's json reads UTF-16 and UTF-32 by their BOM; a server may honour the declared charset.
    decision = send(policy, body, content_type)
    assert not decision.allowed and error_code(decision) == -32700


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", 'application/json; charset="UTF-8"',
                                          "application/json;charset=us-ascii", "text/plain"])
def test_utf_8_charsets_are_read(policy, content_type):
    assert send(policy, rpc("tools/call", {"name": "search_code"}), content_type).allowed
