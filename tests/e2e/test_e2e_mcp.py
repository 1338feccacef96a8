"""The MCP portal end to end: the official MCP SDK's client talks to an MCP server (the SDK's
Streamable HTTP server) through a real Envoy and the sidecar, with IdP tokens for identity."""
from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import httpx2
import pytest
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import MCPServer

from extproc.mcp.audit import query
from extproc_lab.keys import claims, jwks, new_key
from tests.support.e2e_support import request, started_stack

ISSUER = "https://idp.corp.example"
PUBLIC, SECRET, SECRET_TEXT = "repo://public/readme", "repo://private/secrets", "db-password=hunter2"


def tools_server() -> MCPServer:
    server = MCPServer("tools")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    @server.tool()
    def search_docs(query: str) -> str:
        """Search the documentation."""
        return f"3 results for {query}"

    @server.tool()
    def delete_repo(name: str) -> str:
        """Delete a repository."""
        return f"deleted {name}"

    @server.resource(PUBLIC)
    def readme() -> str:
        return "public readme"

    @server.resource(SECRET)
    def secrets() -> str:
        return SECRET_TEXT

    return server


@pytest.fixture(scope="module")
def mcp_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = tools_server().streamable_http_app(json_response=True, stateless_http=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started:
        assert time.time() < deadline, "MCP server did not start"
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def idp_key():
    return new_key("ec", "corp-1")


@pytest.fixture(scope="module")
def stack(mcp_port, idp_key, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("mcp")
    (workdir / "jwks.json").write_text(json.dumps(jwks(idp_key)))
    audit = workdir / "mcp-audit.jsonl"
    policy = f"""
version: 1
access:
  idps: {{corp: {{issuer: {ISSUER}, audience: agents, jwks: {{file: {workdir / 'jwks.json'}}}, algorithms: [ES256],
                 email_domains: [corp.example]}}}}
  apps: [{{name: tools, routes: [mcp], policies: [{{name: agents, include: [{{group: [engineering, sales]}}]}}]}}]
defaults:
  layers:
    access: {{budget_ms: 50}}
routes:
  - name: mcp
    match: {{path_prefix: /mcp}}
    layers:
      mcp:
        server: tools
        budget_ms: 200
        groups:
          engineering: {{servers: [tools], tools: {{allow: ["*"], deny: ["delete_*"]}},
                         resources: {{allow: ["repo://public/*"]}}}}
          sales: {{servers: [tools], tools: {{allow: [add]}}}}
        audit: {{path: {audit}}}
"""
    with started_stack("mcp stack", policy, workdir, upstream_port=mcp_port,
                       sidecar_args=["--drain-seconds", "1"]) as s:
        s.audit = audit
        yield s


def token(key, *groups: str, email: str = "agent@corp.example") -> str:
    return key.token(claims(ISSUER, "agents", email=email, groups=list(groups)))


async def session(stack, bearer: str, work):
    http = httpx2.AsyncClient(headers={"authorization": f"Bearer {bearer}"}, timeout=15)
    async with http, Client(streamable_http_client(f"{stack.url}/mcp", http_client=http)) as client:
        return await work(client)


def test_engineering_agent_sees_and_calls_only_what_its_group_allows(stack, idp_key):
    async def work(client):
        listed = await client.list_tools()
        added = await client.call_tool("add", {"a": 2, "b": 3})
        with pytest.raises(Exception, match="Forbidden by policy"):
            await client.call_tool("delete_repo", {"name": "core"})
        return [t.name for t in listed.tools], added.structured_content

    names, added = asyncio.run(session(stack, token(idp_key, "engineering", email="eng@corp.example"), work))
    assert names == ["add", "search_docs"] and added == {"result": 5}


def test_sales_agent_gets_a_smaller_tool_list(stack, idp_key):
    async def work(client):
        listed = await client.list_tools()
        with pytest.raises(Exception, match="Forbidden by policy"):
            await client.call_tool("search_docs", {"query": "pricing"})
        return [t.name for t in listed.tools]

    assert asyncio.run(session(stack, token(idp_key, "sales", email="sales@corp.example"), work)) == ["add"]


def test_injection_in_tool_arguments_is_refused(stack, idp_key):
    async def work(client):
        with pytest.raises(Exception, match="Forbidden by policy"):
            await client.call_tool("search_docs", {"query": "x' UNION SELECT password FROM users--"})
        return (await client.call_tool("search_docs", {"query": "install guide"})).structured_content

    assert asyncio.run(session(stack, token(idp_key, "engineering"), work)) == {"result": "3 results for install guide"}


def test_malformed_bodies_batches_and_missing_identity_over_plain_http(stack, idp_key):
    auth = [("authorization", f"Bearer {token(idp_key, 'engineering')}"), ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream")]
    broken = request(stack.listen_port, "POST", "/mcp", headers=auth, body=b'{"jsonrpc": "2.0", "method": ')
    assert broken.status == 400 and broken.json()["error"]["code"] == -32700
    batch = [{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1, "b": 1}}},
             {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "delete_repo", "arguments": {}}}]
    refused = request(stack.listen_port, "POST", "/mcp", headers=auth, body=json.dumps(batch).encode())
    assert [e["id"] for e in refused.json()] == [1, 2] and all("error" in e for e in refused.json())
    anonymous = request(stack.listen_port, "POST", "/mcp", headers=auth[1:], body=json.dumps(batch[0]).encode())
    assert anonymous.status == 401  # the access layer: no identity, no MCP


def test_every_message_is_audited(stack, idp_key):
    asyncio.run(session(stack, token(idp_key, "engineering", email="audited@corp.example"),
                        lambda client: client.call_tool("add", {"a": 1, "b": 1})))
    deadline = time.time() + 10
    while not list(query([str(stack.audit)], identity="audited@corp.example", tool="add")):
        assert time.time() < deadline, "no audit record for the call"
        time.sleep(0.1)
    (record,) = query([str(stack.audit)], identity="audited@corp.example", tool="add")
    assert record["decision"] == "allow" and record["server"] == "tools" and record["arguments"]["bytes"] > 0
    methods = {r["method"] for r in query([str(stack.audit)], identity="audited@corp.example")}
    assert {"server/discover", "tools/call"} <= methods


def test_a_resource_is_judged_by_the_uri_the_server_reads(stack, idp_key):
    headers = [("authorization", f"Bearer {token(idp_key, 'engineering')}"), ("content-type", "application/json"),
               ("accept", "application/json, text/event-stream")]

    def read(params: dict, prefix: bytes = b""):
        message = {"jsonrpc": "2.0", "id": 7, "method": "resources/read", "params": params}
        return request(stack.listen_port, "POST", "/mcp", headers=headers, body=prefix + json.dumps(message).encode())

    public = read({"uri": PUBLIC})
    assert public.status == 200 and public.json()["result"]["contents"][0]["text"] == "public readme"
    assert read({"uri": SECRET}).json()["error"]["message"] == "Forbidden by policy"
    # The finding: a public name beside the private uri was allowed, and the server read the uri.
    smuggled_params = ({"name": PUBLIC, "uri": SECRET}, {"uri": SECRET, "name": PUBLIC},
                       {"uri": PUBLIC + "/../../private/secrets"})
    for smuggled in smuggled_params:
        refused = read(smuggled)
        assert refused.status == 400 and refused.json()["error"]["code"] == -32602
        assert SECRET_TEXT not in refused.body.decode()
    duplicated = request(stack.listen_port, "POST", "/mcp", headers=headers, body=(
        b'{"jsonrpc": "2.0", "id": 7, "method": "resources/read", "params": {"uri": "%s", "uri": "%s"}}'
        % (SECRET.encode(), PUBLIC.encode())))
    assert duplicated.json()["error"]["code"] == -32700 and SECRET_TEXT not in duplicated.body.decode()
    # A BOM is skipped as lenient servers skip it: the message is judged, not waved through.
    assert read({"uri": SECRET}, prefix=b"\xef\xbb\xbf").json()["error"]["message"] == "Forbidden by policy"
