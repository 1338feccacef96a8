"""What a client and the protected app notice with the sidecar in front: allow, deny, tags,
body inspection, route-specific policy, hostile input and metrics.

One Stack (echo upstream + sidecar process + Envoy) serves the whole module; its policy is
written here, so every expectation below follows from the rules in POLICY.
"""
from __future__ import annotations

import http.client
import json
import socket
import time

import pytest

from extproc.local.envoy import free_port
from tests.support.e2e_support import (
    assert_still_serving,
    echo_values,
    extproc_headers,
    get,
    grpc_serving,
    marker,
    metric_value,
    raw_exchange,
    request,
    scrape,
    started_stack,
    upstream_saw,
    wait_for,
)

ENVOY_BUFFER = 1024 * 1024  # per_connection_buffer_limit_bytes in deploy/envoy/envoy.yaml

POLICY = """
version: 1
defaults:
  mode: enforce
  inspection:
    max_body_bytes: 4194304     # above Envoy's 1 MiB buffer: an oversize cut can only come from Envoy
    oversize: deny
  layers:
    rules:
      on_error: closed
      budget_ms: 200
      rules:
        - id: e2e-deny-path
          match: {path: {regex: '/blocked(/|$)'}}
          action: deny
        - id: e2e-throttle
          match: {path: {prefix: /throttled}}
          action: deny
          status: 429
        - id: e2e-deny-header
          match: {headers: {x-e2e-probe: {contains: EVIL}}}
          action: deny
        - id: e2e-deny-arg
          match: {any_arg: {contains: EVIL-PAYLOAD}}
          action: deny
        - id: e2e-bad-json
          match: {notes: [json_invalid]}
          action: deny
          status: 400
        - id: e2e-bad-multipart
          match: {notes: [multipart_invalid]}
          action: deny
          status: 400
        - id: e2e-tag-header
          match: {headers: {x-e2e-client: {exact: tagme}}}
          action: tag
          tags: [e2e-hdr]
        - id: e2e-tag-body
          match: {args: {flag: {exact: tag-body}}}
          action: tag
          tags: [e2e-body]
        - id: e2e-tag-deep-json
          match: {notes: [json_depth_exceeded]}
          action: tag
          tags: [deep-json]
routes:
  - name: api-strict
    match: {route_name: api}
    layers:
      rules:
        rules:
          - id: api-no-delete
            match: {methods: [DELETE]}
            action: deny
  - name: observed
    match: {path_prefix: /observed/}
    mode: observe
  - name: small-body
    match: {path_prefix: /small/}
    inspection: {max_body_bytes: 1024}
  - name: prefix-only
    match: {path_prefix: /prefix/}
    inspection: {max_body_bytes: 1024, oversize: inspect_prefix}
  - name: lenient-limits
    match: {path_prefix: /lenient/}
    inspection: {over_limit: inspect_prefix}
"""

# What must never show up in a deny response: rule ids, layer names, reasons, scores.
SECRETS = ("e2e-", "api-no-delete", "rules", "rule:", "layer", "score", "reason", "inspection",
           "extproc_denied", "denied_by")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    metrics_port = free_port()
    with started_stack("traffic stack", POLICY, tmp_path_factory.mktemp("traffic"),
                       sidecar_args=["--drain-seconds", "2", "--metrics-address", f"127.0.0.1:{metrics_port}"]) as s:
        s.metrics_port = metrics_port
        yield s


def assert_opaque_deny(resp, status: int, error: str) -> str:
    """A deny as a client sees it: status, a two-key JSON body, the id in a header; returns the id."""
    assert resp.status == status, resp
    request_id = resp.header("x-request-id")
    assert request_id, resp
    assert resp.header("content-type") == "application/json", resp
    assert resp.json() == {"error": error, "request_id": request_id}
    text = resp.everything().replace(request_id.lower(), "")  # a random id may spell 'e2e-' by chance
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, f"deny response leaks {leaked}: {resp}"
    return request_id


def multipart(boundary: str, fields: dict[str, str], files: dict[str, tuple[str, bytes]] = {}) -> bytes:
    out = b""
    for name, value in fields.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").encode()
    for name, (filename, data) in files.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def sent_body_arrived(stack, mark: str, body: bytes, echo: dict) -> None:
    assert echo["body_bytes"] == len(body)
    (record,) = upstream_saw(stack, mark)
    assert record["body"] == body


# -- 1. allow, tags, forged headers ------------------------------------------------------------


def test_allowed_get_reaches_upstream_with_tags_and_forged_copies_removed(stack):
    mark = marker()
    resp = get(stack.listen_port, f"/hello/world?m={mark}&q=1", headers=[
        ("x-e2e-client", "tagme"),
        ("x-extproc-tags", "trusted-admin"),   # forged, sent twice
        ("x-extproc-tags", "internal"),
        ("X-ExtProc-Rules", "forged-rule"),
        ("x-extproc-anything", "forged"),
    ])
    assert resp.status == 200, resp
    echo = resp.json()
    assert echo["method"] == "GET"
    assert echo["path"] == f"/hello/world?m={mark}&q=1"
    assert echo_values(echo, "x-extproc-tags") == ["e2e-hdr"]
    assert echo_values(echo, "x-extproc-rules") == ["e2e-tag-header"]
    assert sorted(extproc_headers(echo)) == [("x-extproc-rules", "e2e-tag-header"), ("x-extproc-tags", "e2e-hdr")]
    assert echo_values(echo, "x-e2e-client") == ["tagme"]  # the client's own headers are untouched
    assert len(upstream_saw(stack, mark)) == 1


def test_forged_extproc_headers_are_stripped_when_no_rule_sets_them(stack):
    mark = marker()
    resp = get(stack.listen_port, f"/plain?m={mark}", headers=[
        ("x-extproc-tags", "trusted-admin"),
        ("x-extproc-tags", "internal"),
        ("x-extproc-rules", "forged-rule"),
        ("x-extproc-anything", "forged"),
        ("x-other", "kept"),
    ])
    assert resp.status == 200, resp
    echo = resp.json()
    assert extproc_headers(echo) == []
    assert echo_values(echo, "x-other") == ["kept"]


# -- 2. deny ---------------------------------------------------------------------------------


def test_deny_is_an_opaque_403_with_the_request_id_and_upstream_not_called(stack):
    mark = marker()
    resp = get(stack.listen_port, f"/blocked/{mark}", headers=[("x-request-id", "client-chosen-id")])
    request_id = assert_opaque_deny(resp, 403, "forbidden")
    assert request_id != "client-chosen-id"  # Envoy is the edge: it issues the id, not the client
    assert upstream_saw(stack, mark) == []
    # The same id ties the client's answer to the sidecar's log line.
    wait_for(lambda: request_id in stack.sidecar.log_text(), 5, what="the deny in the sidecar log")


def test_rule_status_429_gives_too_many_requests(stack):
    mark = marker()
    resp = get(stack.listen_port, f"/throttled?m={mark}")
    assert_opaque_deny(resp, 429, "too_many_requests")
    assert upstream_saw(stack, mark) == []


def test_header_rule_denies(stack):
    mark = marker()
    resp = get(stack.listen_port, f"/h?m={mark}", headers=[("x-e2e-probe", "so EVIL")])
    assert_opaque_deny(resp, 403, "forbidden")
    assert upstream_saw(stack, mark) == []


# -- 3. body inspection ----------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_json_post_is_inspected_and_arrives_intact_with_body_tags(stack, chunked):
    mark = marker()
    body = json.dumps({"flag": "tag-body", "items": [1, 2, {"deep": "x" * 50}], "text": "héllo"}).encode()
    resp = request(stack.listen_port, "POST", f"/submit?m={mark}", body=body, chunked=chunked,
                   headers=[("content-type", "application/json"), ("x-extproc-tags", "forged")])
    assert resp.status == 200, resp
    echo = resp.json()
    sent_body_arrived(stack, mark, body, echo)
    assert echo_values(echo, "x-extproc-tags") == ["e2e-body"]
    assert echo_values(echo, "x-extproc-rules") == ["e2e-tag-body"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_json_post_with_a_payload_in_a_nested_field_is_denied(stack, chunked):
    mark = marker()
    body = json.dumps({"order": {"lines": [{"note": "ok"}, {"note": "EVIL-PAYLOAD here"}]}}).encode()
    resp = request(stack.listen_port, "POST", f"/submit?m={mark}", body=body, chunked=chunked,
                   headers=[("content-type", "application/json")])
    assert_opaque_deny(resp, 403, "forbidden")
    assert upstream_saw(stack, mark) == []


def test_form_post_is_inspected(stack):
    mark = marker()
    body = b"flag=tag-body&name=J%C3%BCrgen&empty="
    resp = request(stack.listen_port, "POST", f"/form?m={mark}", body=body,
                   headers=[("content-type", "application/x-www-form-urlencoded")])
    assert resp.status == 200, resp
    echo = resp.json()
    sent_body_arrived(stack, mark, body, echo)
    assert echo_values(echo, "x-extproc-tags") == ["e2e-body"]

    mark = marker()
    resp = request(stack.listen_port, "POST", f"/form?m={mark}", body=b"a=1&comment=EVIL%2DPAYLOAD",
                   headers=[("content-type", "application/x-www-form-urlencoded")])
    assert_opaque_deny(resp, 403, "forbidden")
    assert upstream_saw(stack, mark) == []


def test_upload_route_body_is_inspected_and_arrives_intact(stack):
    boundary = "e2eBoundary7MA4YWxkTrZu0gW"
    content_type = f"multipart/form-data; boundary={boundary}"
    mark = marker()
    body = multipart(boundary, {"flag": "tag-body"}, {"file": ("data.bin", bytes(range(256)) * 64)})
    resp = request(stack.listen_port, "POST", f"/upload/files?m={mark}", body=body,
                   headers=[("content-type", content_type)])
    assert resp.status == 200, resp
    echo = resp.json()
    sent_body_arrived(stack, mark, body, echo)
    assert echo_values(echo, "x-extproc-tags") == ["e2e-body"]

    mark = marker()
    body = multipart(boundary, {"comment": "EVIL-PAYLOAD"}, {"file": ("a.txt", b"hello")})
    resp = request(stack.listen_port, "POST", f"/upload/files?m={mark}", body=body,
                   headers=[("content-type", content_type)])
    assert_opaque_deny(resp, 403, "forbidden")
    assert upstream_saw(stack, mark) == []


@pytest.mark.parametrize("path", ["/big", "/upload/big"], ids=["default-route", "upload-route"])
def test_large_body_within_envoys_buffer_arrives_intact(stack, path):
    mark = marker()
    body = json.dumps({"flag": "tag-body", "blob": "x" * 700_000}).encode()
    resp = request(stack.listen_port, "POST", f"{path}?m={mark}", body=body,
                   headers=[("content-type", "application/json")])
    assert resp.status == 200, resp
    echo = resp.json()
    sent_body_arrived(stack, mark, body, echo)
    assert echo_values(echo, "x-extproc-tags") == ["e2e-body"]


def test_body_arriving_long_after_the_headers_is_still_inspected(stack):
    """Client upload time must not count against the layers' time budget (200 ms here)."""
    for body, expected in ((b"flag=tag-body&a=1", 200), (b"a=EVIL-PAYLOAD", 403)):
        mark = marker()
        head = (f"POST /slow-upload?m={mark} HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\n"
                f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", stack.listen_port), timeout=15) as sock:
            sock.sendall(head)
            time.sleep(0.5)
            sock.sendall(body)
            resp = http.client.HTTPResponse(sock)
            resp.begin()
            data = resp.read()
        assert resp.status == expected, (resp.status, data)
        if expected == 200:
            assert echo_values(json.loads(data), "x-extproc-tags") == ["e2e-body"]
            assert upstream_saw(stack, mark)[0]["body"] == body


@pytest.mark.parametrize("path", ["/trailers", "/upload/trailers"], ids=["default-route", "upload-route"])
def test_chunked_body_with_trailers_is_inspected(stack, path):
    for body, expected in ((b"flag=tag-body&a=1", 200), (b"a=1&b=EVIL-PAYLOAD", 403)):
        mark = marker()
        head = (f"POST {path}?m={mark} HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n"
                "Trailer: x-checksum\r\n\r\n").encode()
        chunked = b"%x\r\n%s\r\n0\r\nx-checksum: 1234\r\n\r\n" % (len(body), body)
        resp = raw_exchange(stack.listen_port, head, chunked)
        assert resp.status == expected, resp
        if expected == 200:
            assert echo_values(json.loads(resp.body), "x-extproc-tags") == ["e2e-body"]
            assert upstream_saw(stack, mark)[0]["body"] == body
        else:
            assert upstream_saw(stack, mark) == []


def test_expect_100_continue_upload(stack):
    mark = marker()
    body = b"flag=tag-body"
    with socket.create_connection(("127.0.0.1", stack.listen_port), timeout=5) as sock:
        sock.sendall((f"POST /continue?m={mark} HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\n"
                      "Content-Type: application/x-www-form-urlencoded\r\nExpect: 100-continue\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n").encode())
        interim = sock.recv(100)  # a client waits (curl: up to 1 s) for this before sending the body
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n"), interim
        sock.sendall(body)
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        data = resp.read()
    assert resp.status == 200, data
    assert echo_values(json.loads(data), "x-extproc-tags") == ["e2e-body"]


def test_route_inspection_limit_denies_a_larger_body_with_413(stack):
    mark = marker()
    resp = request(stack.listen_port, "POST", f"/small/ok?m={mark}", body=b"a=" + b"x" * 1000,
                   headers=[("content-type", "application/x-www-form-urlencoded")])
    assert resp.status == 200, resp
    mark = marker()
    resp = request(stack.listen_port, "POST", f"/small/big?m={mark}", body=b"a=" + b"x" * 2000,
                   headers=[("content-type", "application/x-www-form-urlencoded")])
    assert_opaque_deny(resp, 413, "payload_too_large")
    assert upstream_saw(stack, mark) == []


def test_inspect_prefix_route_checks_the_prefix_and_forwards_the_whole_body(stack):
    filler = b"&pad=" + b"x" * 3000
    mark = marker()
    resp = request(stack.listen_port, "POST", f"/prefix/a?m={mark}", body=b"a=EVIL-PAYLOAD" + filler,
                   headers=[("content-type", "application/x-www-form-urlencoded")])
    assert_opaque_deny(resp, 403, "forbidden")
    assert upstream_saw(stack, mark) == []
    # Beyond the inspected prefix a payload is not seen (that is what inspect_prefix trades),
    # and the body reaches the app whole, not cut at the inspection limit.
    mark = marker()
    body = b"a=1" + filler + b"&late=EVIL-PAYLOAD"
    resp = request(stack.listen_port, "POST", f"/prefix/b?m={mark}", body=body,
                   headers=[("content-type", "application/x-www-form-urlencoded")])
    assert resp.status == 200, resp
    sent_body_arrived(stack, mark, body, resp.json())


# -- 4. route-specific policy ----------------------------------------------------------------


def test_same_request_denied_on_api_route_and_allowed_on_default(stack):
    mark = marker()
    resp = request(stack.listen_port, "DELETE", f"/api/items/1?m={mark}")
    assert_opaque_deny(resp, 403, "forbidden")
    assert upstream_saw(stack, mark) == []

    mark = marker()
    resp = request(stack.listen_port, "DELETE", f"/items/1?m={mark}")
    assert resp.status == 200, resp
    assert resp.json()["method"] == "DELETE"
    assert len(upstream_saw(stack, mark)) == 1


def test_observe_mode_route_lets_a_would_be_denied_request_through(stack):
    mark = marker()
    assert get(stack.listen_port, f"/blocked?m={mark}").status == 403  # enforced elsewhere

    mark = marker()
    resp = get(stack.listen_port, f"/observed/blocked?m={mark}")
    assert resp.status == 200, resp
    assert len(upstream_saw(stack, mark)) == 1
    (request_id,) = echo_values(resp.json(), "x-request-id")
    wait_for(lambda: any("would be denied" in line and request_id in line
                         for line in stack.sidecar.log_text().splitlines()),
             5, what="the observe-mode log line")


# -- concurrency ---------------------------------------------------------------------------


def test_concurrent_requests_each_get_their_own_decision_tags_and_body(stack):
    """Many requests in flight at once: no decision, tag or body bleeds into another request."""
    from concurrent.futures import ThreadPoolExecutor

    def one(i: int) -> str | None:
        mark = f"{marker()}-{i}"
        kind = i % 4
        if kind == 0:  # tagged by header
            resp = get(stack.listen_port, f"/c?m={mark}", headers=[("x-e2e-client", "tagme")])
            ok = resp.status == 200 and echo_values(resp.json(), "x-extproc-tags") == ["e2e-hdr"]
        elif kind == 1:  # plain, carries a forged tag
            resp = get(stack.listen_port, f"/c?m={mark}", headers=[("x-extproc-tags", "forged")])
            ok = resp.status == 200 and extproc_headers(resp.json()) == []
        elif kind == 2:  # body tagged, body must be its own
            body = json.dumps({"flag": "tag-body", "mark": mark}).encode()
            resp = request(stack.listen_port, "POST", f"/c?m={mark}", body=body,
                           headers=[("content-type", "application/json")])
            ok = (resp.status == 200 and echo_values(resp.json(), "x-extproc-tags") == ["e2e-body"]
                  and upstream_saw(stack, mark) and upstream_saw(stack, mark)[0]["body"] == body)
        else:  # denied by body
            resp = request(stack.listen_port, "POST", f"/c?m={mark}", body=f"x={mark}&y=EVIL-PAYLOAD".encode(),
                           headers=[("content-type", "application/x-www-form-urlencoded")])
            ok = resp.status == 403 and resp.json()["request_id"] == resp.header("x-request-id")
        return None if ok else f"request {i} (kind {kind}): {resp!r}"

    with ThreadPoolExecutor(max_workers=16) as pool:
        problems = [p for p in pool.map(one, range(160)) if p]
    assert problems == []
    assert_still_serving(stack)


# -- 7. malformed and hostile input ----------------------------------------------------------


def test_garbage_request_line_gets_400_from_envoy_and_sidecar_is_unaffected(stack):
    before = stack.envoy.stats("http.ingress.ext_proc.streams_started")
    resp = raw_exchange(stack.listen_port, b"\x16\x03\x01\x00\xa5GARBAGE\x00 NOT-HTTP\r\n\r\n")
    assert resp.status == 400, resp
    resp = raw_exchange(stack.listen_port, b"GET /x HTTP/1.1 EXTRA\r\nHost: a\r\n\r\n")
    assert resp.status == 400, resp
    # Envoy rejected both before any filter ran: no ext_proc stream was opened.
    assert stack.envoy.stats("http.ingress.ext_proc.streams_started") == before
    assert_still_serving(stack)


def test_invalid_utf8_in_header_value(stack):
    mark = marker()
    resp = raw_exchange(stack.listen_port, (
        f"GET /utf8?m={mark} HTTP/1.1\r\nHost: e2e\r\nx-e2e-client: tagme\r\n".encode()
        + b"x-odd: \xff\xfe\xc3(\xed\xa0\x80\r\nConnection: close\r\n\r\n"))
    assert resp.status == 200, resp
    echo = json.loads(resp.body)
    assert echo_values(echo, "x-extproc-tags") == ["e2e-hdr"]
    # The header reaches the app byte for byte (the echo decodes it as latin-1).
    assert [v.encode("latin-1") for v in echo_values(echo, "x-odd")] == [b"\xff\xfe\xc3(\xed\xa0\x80"]

    mark = marker()
    resp = raw_exchange(stack.listen_port, (
        f"GET /utf8?m={mark} HTTP/1.1\r\nHost: e2e\r\n".encode()
        + b"x-e2e-probe: \xff EVIL \xfe\r\nConnection: close\r\n\r\n"))
    assert resp.status == 403, resp  # rules still match around the invalid bytes
    assert upstream_saw(stack, mark) == []
    assert_still_serving(stack)


def test_invalid_utf8_in_path_is_rejected_by_envoy(stack):
    for path in (b"/bytes/\xff\xfe/", b"/blocked/\xc3\x28/"):
        mark = marker()
        resp = raw_exchange(stack.listen_port,
                            b"GET " + path + mark.encode() + b" HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\n\r\n")
        assert resp.status == 400, resp
        assert upstream_saw(stack, mark) == []
    assert_still_serving(stack)


def test_request_smuggling_and_oversized_headers_are_rejected_by_envoy(stack):
    mark = marker()
    resp = raw_exchange(stack.listen_port, (
        f"POST /smuggle?m={mark} HTTP/1.1\r\nHost: e2e\r\nContent-Length: 5\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /blocked HTTP/1.1\r\nHost: e2e\r\n\r\n").encode())
    assert resp.status == 400, resp
    mark = marker()
    resp = raw_exchange(stack.listen_port, (
        f"GET /huge-header?m={mark} HTTP/1.1\r\nHost: e2e\r\nx-big: {'a' * 70_000}\r\n\r\n").encode())
    assert resp.status == 431, resp
    assert upstream_saw(stack, mark) == []
    assert_still_serving(stack)


def test_invalid_percent_encoding_passes_unchanged(stack):
    mark = marker()
    path = f"/pct/%zz%ff%c3%28%?m={mark}&a=%zz&b=%ff%fe&c=%"
    resp = get(stack.listen_port, path)
    assert resp.status == 200, resp
    assert resp.json()["path"] == path
    # Nor does it hide a payload in a query argument.
    mark = marker()
    resp = get(stack.listen_port, f"/q?m={mark}&x=%45VIL-PAYLOAD%ff")
    assert_opaque_deny(resp, 403, "forbidden")
    assert upstream_saw(stack, mark) == []
    assert_still_serving(stack)


@pytest.mark.parametrize("path", ["/%62locked/x", "//blocked", "/x/../blocked", "/x/./%2E%2E/blocked/"])
def test_encoded_or_dotted_paths_do_not_slip_past_a_path_rule(stack, path):
    mark = marker()
    resp = get(stack.listen_port, f"{path}?m={mark}")
    assert_opaque_deny(resp, 403, "forbidden")
    assert upstream_saw(stack, mark) == []


@pytest.mark.parametrize("path", ["//api/items/1", "/%61pi/items/1", "/static/../api/items/1"])
def test_encoded_or_dotted_paths_do_not_slip_past_a_route_policy(stack, path):
    mark = marker()
    resp = request(stack.listen_port, "DELETE", f"{path}?m={mark}")
    assert_opaque_deny(resp, 403, "forbidden")
    assert upstream_saw(stack, mark) == []


def test_escaped_slash_is_redirected_not_forwarded(stack):
    mark = marker()
    resp = get(stack.listen_port, f"/blocked%2Fx?m={mark}")
    assert resp.status in (301, 302, 307, 308), resp
    assert resp.header("location").startswith("/blocked/x"), resp
    assert upstream_saw(stack, mark) == []


@pytest.mark.parametrize("body", [b"[" * 5000 + b"]" * 5000, b'{"a":' * 5000 + b'"EVIL-PAYLOAD"' + b"}" * 5000])
def test_json_deeper_than_inspected_is_refused_unless_the_route_accepts_it(stack, body):
    # Deeper than the parser goes, a payload is not seen as an argument: never passed as clean.
    resp = request(stack.listen_port, "POST", f"/deep?m={marker()}", body=body,
                   headers=[("content-type", "application/json")])
    assert_opaque_deny(resp, 413, "payload_too_large")
    # A route that accepts half-inspected requests (over_limit: inspect_prefix) passes it, noted
    # (json_depth_exceeded) and tagged by the rule on that note, whole to the app.
    mark = marker()
    resp = request(stack.listen_port, "POST", f"/lenient/deep?m={mark}", body=body,
                   headers=[("content-type", "application/json")])
    assert resp.status == 200, resp
    echo = resp.json()
    sent_body_arrived(stack, mark, body, echo)
    assert echo_values(echo, "x-extproc-tags") == ["deep-json"]
    assert_still_serving(stack)


def test_invalid_json_with_json_content_type_gets_400(stack):
    mark = marker()
    resp = request(stack.listen_port, "POST", f"/json?m={mark}", body=b'{"a": 1,, "b": \xff',
                   headers=[("content-type", "application/json; charset=utf-8")])
    assert_opaque_deny(resp, 400, "bad_request")
    assert upstream_saw(stack, mark) == []
    assert_still_serving(stack)


@pytest.mark.parametrize("path, chunked", [("/bigger", False), ("/bigger", True), ("/upload/huge", False)],
                         ids=["default-route", "default-route-chunked", "upload-route"])
def test_body_over_envoys_buffer_gets_413_from_envoy_before_the_sidecar(stack, path, chunked):
    # The buffer filter ahead of ext_proc holds at most the listener's buffer; a larger body is
    # refused by Envoy itself, so the sidecar never opens a stream for it.
    mark = marker()
    body = b"a=" + b"x" * (2 * ENVOY_BUFFER)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
    head = (f"POST {path}?m={mark} HTTP/1.1\r\nHost: e2e\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"{framing}\r\n\r\n").encode()
    if chunked:
        body = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 65536]), body[i:i + 65536])
                        for i in range(0, len(body), 65536)) + b"0\r\n\r\n"
    streams = "http.ingress.ext_proc.streams_started"
    before = stack.envoy.stats(streams).get(streams, 0)
    resp = raw_exchange(stack.listen_port, head, body, timeout=20)
    assert resp.status == 413, resp
    assert b"request_id" not in resp.body  # Envoy's own local reply, not the sidecar's
    assert stack.envoy.stats(streams).get(streams, 0) == before
    assert upstream_saw(stack, mark) == []
    assert_still_serving(stack)


@pytest.mark.parametrize("path", ["/form-data", "/upload/form-data"], ids=["default-route", "upload-route"])
def test_multipart_with_a_broken_boundary_gets_400(stack, path):
    mark = marker()
    body = multipart("the-real-boundary", {"a": "1"})
    resp = request(stack.listen_port, "POST", f"{path}?m={mark}", body=body,
                   headers=[("content-type", "multipart/form-data; boundary=not-the-one-used")])
    assert_opaque_deny(resp, 400, "bad_request")
    assert upstream_saw(stack, mark) == []
    assert_still_serving(stack)


# -- 10. metrics -----------------------------------------------------------------------------


def test_metrics_count_decisions_by_route_and_action(stack):
    def counts():
        text = scrape(stack.metrics_port)
        return {
            ("default", "allow"): metric_value(text, "extproc_decisions_total", route="default", action="allow"),
            ("default", "deny"): metric_value(text, "extproc_decisions_total", route="default", action="deny"),
            ("api-strict", "deny"): metric_value(text, "extproc_decisions_total", route="api-strict", action="deny"),
            ("api-strict", "allow"): metric_value(text, "extproc_decisions_total", route="api-strict", action="allow"),
        }

    before = counts()
    assert get(stack.listen_port, "/m/1").status == 200
    assert get(stack.listen_port, "/m/2").status == 200
    assert get(stack.listen_port, "/blocked").status == 403
    assert request(stack.listen_port, "DELETE", "/api/m").status == 403
    assert get(stack.listen_port, "/api/m").status == 200
    after = counts()
    assert {key: after[key] - before[key] for key in after} == {
        ("default", "allow"): 2, ("default", "deny"): 1, ("api-strict", "deny"): 1, ("api-strict", "allow"): 1,
    }
    assert "# TYPE extproc_decisions_total counter" in scrape(stack.metrics_port)
    assert grpc_serving(stack.sidecar.address)
