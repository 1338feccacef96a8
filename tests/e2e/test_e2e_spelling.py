"""Spellings an application server reads differently from Envoy (issue 18).

- A header name with '_': servers that fold '_' into '-' would read `x_extproc_user_email` as the
  identity header the sidecar sets. Envoy refuses such a request before any filter runs, on every
  route and over HTTP/1.1 and HTTP/2, so it never reaches the app.
- A path the `static` route (which skips the sidecar) must not take: anything but plain segments
  (`/static/..;/internal/x` is `/internal/x` to Tomcat) goes through the sidecar instead, which a
  denial or the sidecar's tag on the echoed request shows; plain asset paths still skip it.
- The named routes match in any case, so `/API/orders` gets the api route's policy.
"""
from __future__ import annotations

import json
import time
import urllib.parse

import pytest
from tests.support.e2e_support import get, marker, raw_exchange, request, started_stack, upstream_saw
from extproc_lab.bench.idle_uploads import Http2Connection

POLICY = """
version: 1
defaults:
  layers:
    rules:
      rules:
        - id: deny-internal
          match: {path: {regex: 'internal'}}
          action: deny
        - id: seen
          match: {path: {regex: '.'}}
          action: tag
          tags: [site]
routes:
  - name: api
    match: {route_name: api}
    layers:
      rules:
        rules:
          - {id: api-no-delete, match: {methods: [DELETE]}, action: deny}
          - {id: seen, match: {path: {regex: '.'}}, action: tag, tags: [api]}  # in place of the site tag
  - name: upload
    match: {route_name: upload}
    layers:
      rules:
        rules:
          - {id: seen, match: {path: {regex: '.'}}, action: tag, tags: [upload]}
"""
STREAMS_STARTED = "http.ingress.ext_proc.streams_started"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with started_stack("spelling stack", POLICY, tmp_path_factory.mktemp("spelling")) as s:
        yield s


def streams_started(stack) -> int:
    return stack.envoy.stats(STREAMS_STARTED).get(STREAMS_STARTED, 0)


def raw_get(stack, path: str):
    """GET with the path sent exactly as written (http.client would refuse some of these)."""
    head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode("latin-1")
    return raw_exchange(stack.listen_port, head, timeout=10)


def with_marker(path: str, mark: str) -> str:
    return f"{path}?m={mark}"


def tags_seen(response_body: bytes) -> list[str]:
    return [value for name, value in json.loads(response_body)["headers"] if name == "x-extproc-tags"]


# -- header names with '_' -------------------------------------------------------------------

FORGED = [
    ("x_extproc_user_email", "admin@corp.example"),
    ("X_Extproc_User_Email", "admin@corp.example"),
    ("x-extproc_user-groups", "admins"),
    ("x_waf_attack_score", "99"),
]


@pytest.mark.parametrize("path", ["/page", "/static/app.css"], ids=["through-sidecar", "static"])
@pytest.mark.parametrize("name, value", FORGED, ids=[name for name, _ in FORGED])
def test_header_with_underscores_is_refused_over_http1(stack, path, name, value):
    mark = marker()
    head = (f"GET {with_marker(path, mark)} HTTP/1.1\r\nHost: 127.0.0.1\r\n{name}: {value}\r\n"
            "Connection: close\r\n\r\n").encode()
    response = raw_exchange(stack.listen_port, head, timeout=10)
    assert response.status == 400, response
    assert upstream_saw(stack, mark) == []


@pytest.mark.parametrize("path", ["/page", "/static/app.css"], ids=["through-sidecar", "static"])
def test_header_with_underscores_is_refused_over_http2(stack, path):
    mark_forged, mark_plain = marker(), marker()
    connection = Http2Connection(stack.listen_port)
    try:
        forged = connection.send_headers("GET", with_marker(path, mark_forged), FORGED[:1], end_stream=True)
        plain = connection.send_headers("GET", with_marker(path, mark_plain), [], end_stream=True)
        deadline = time.monotonic() + 10
        while not all(connection.streams[s].done for s in (forged, plain)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert connection.streams[forged].reset and not connection.streams[forged].body
        assert connection.streams[plain].ended, "the same connection's next request is served"
    finally:
        connection.close()
    assert upstream_saw(stack, mark_forged) == []
    assert len(upstream_saw(stack, mark_plain)) == 1


# -- the static route takes plain paths only ---------------------------------------------------

THROUGH_SIDECAR = [
    "/static/..;/internal/report",
    "/static/%2e%2e;/internal/report",
    "/static/.%2e;/internal/report",
    "/static/%2E%2E%3B/internal/report",
    "/static/..;jsessionid=1/internal/report",
    "/STATIC/x.css",
    "/Static/x.css",
    "/static/a;b/x.css",
    "/static/x.css;.js",
    "/static/a%3bb/x.css",
    "/static/.git/config",
    "/static/.hidden",
    "/static/PROGRA~1/x.css",
    "/static/x%20y.css",
    "/static/",
]
REDIRECTED = ["/static/..%5cinternal", "/static/..%5Cinternal/report", "/static/%2e%2e%2finternal"]
SKIPS_SIDECAR = ["/static/app.css", "/static/img/logo.png", "/static/js/app-1.2_min.js", "/static/a..b/x.css",
                 # Envoy resolves these itself (it reads '..;' and '.;' as '..' and '.', as Tomcat
                 # does), so the app is sent the plain path it routed on.
                 "//static//app.css", "/static/%61pp.css", "/static/.;/app.css", "/static/img/..;/app.css"]


def assert_reached_the_sidecar(stack, path: str) -> None:
    before, mark = streams_started(stack), marker()
    response = raw_get(stack, with_marker(path, mark))
    assert streams_started(stack) == before + 1, f"{path} skipped the sidecar: {response}"
    if response.status == 200:  # allowed: the sidecar tagged what the app got
        assert tags_seen(response.body) == ["site"], response
    else:  # denied by the sidecar (its opaque JSON denial: 403, or 400 for a path with no single
        # reading), never seen by the app
        assert response.status in (400, 403) and b"request_id" in response.body, response
        assert upstream_saw(stack, mark) == []


@pytest.mark.parametrize("path", THROUGH_SIDECAR)
def test_other_spellings_of_a_static_path_go_through_the_sidecar(stack, path):
    assert_reached_the_sidecar(stack, path)


@pytest.mark.parametrize("path", REDIRECTED)
def test_escaped_separators_are_redirected_and_the_new_path_goes_through_the_sidecar(stack, path):
    before, mark = streams_started(stack), marker()
    response = raw_get(stack, with_marker(path, mark))
    assert response.status in (301, 302, 307, 308), response
    assert streams_started(stack) == before and upstream_saw(stack, mark) == []
    assert_reached_the_sidecar(stack, urllib.parse.urlsplit(response.header("location")).path)


@pytest.mark.parametrize("path", SKIPS_SIDECAR)
def test_plain_static_paths_still_skip_the_sidecar(stack, path):
    before, mark = streams_started(stack), marker()
    response = raw_get(stack, with_marker(path, mark))
    assert response.status == 200, response
    assert tags_seen(response.body) == []
    assert streams_started(stack) == before
    (seen,) = upstream_saw(stack, mark)
    sent = seen["path"].partition("?")[0]
    assert sent.startswith("/static/") and ";" not in sent and "/." not in sent and "%" not in sent, sent


# -- named routes in any case ------------------------------------------------------------------

@pytest.mark.parametrize("path, route", [
    ("/API/orders", "api"), ("/Api/orders/1", "api"), ("/api/orders", "api"),
    ("/UPLOAD/file", "upload"), ("/Upload/file", "upload"),
    ("/apiary/orders", "site"), ("/page", "site"),
])
def test_named_routes_match_in_any_case(stack, path, route):
    response = get(stack.listen_port, path)
    assert response.status == 200, response
    assert tags_seen(response.body) == [route]


@pytest.mark.parametrize("path", ["/API/orders", "/aPI/orders/1"])
def test_the_api_policy_applies_to_an_upper_case_api_path(stack, path):
    mark = marker()
    response = request(stack.listen_port, "DELETE", with_marker(path, mark))
    assert response.status == 403, response
    assert upstream_saw(stack, mark) == []
