"""Failure handling as a client notices it: the static route never needs the sidecar; a sidecar
that is down or too slow makes Envoy fail closed, and the app never sees those requests.
"""
from __future__ import annotations

import os
import signal
import threading

import pytest
from tests.support.e2e_support import (
    BLOCKING_POLICY,
    assert_still_serving,
    extproc_headers,
    get,
    marker,
    request,
    started_stack,
    upstream_saw,
    wait_for,
)

# Fault paths: every test here once through each transport (tests/e2e/conftest.py); the stack
# fixtures take `transport` too, so each transport gets stacks of its own.
pytestmark = pytest.mark.usefixtures("transport")

POLICY = BLOCKING_POLICY

STREAMS_STARTED = "http.ingress.ext_proc.streams_started"


@pytest.fixture(scope="module")
def down_stack(transport, tmp_path_factory):
    with started_stack("failure stack", POLICY, tmp_path_factory.mktemp("failure"),
                       sidecar_args=["--drain-seconds", "1"]) as s:
        yield s


@pytest.fixture
def sidecar_stopped(down_stack):
    """The module's stack with its sidecar process stopped (tests may restart it)."""
    down_stack.sidecar.stop()
    assert down_stack.sidecar.process.poll() is not None
    return down_stack


# -- 5. the static route bypasses the sidecar ----------------------------------------------


def test_static_route_never_opens_an_ext_proc_stream(down_stack):
    if down_stack.sidecar.process.poll() is not None:
        down_stack.sidecar.start()
    before = down_stack.envoy.stats(STREAMS_STARTED).get(STREAMS_STARTED, 0)
    mark = marker()
    # /static/blocked would be denied on any other route: the policy is never consulted here.
    resp = get(down_stack.listen_port, f"/static/blocked/app.css?m={mark}")
    assert resp.status == 200, resp
    assert len(upstream_saw(down_stack, mark)) == 1
    assert down_stack.envoy.stats(STREAMS_STARTED).get(STREAMS_STARTED, 0) == before
    assert get(down_stack.listen_port, "/blocked").status == 403  # elsewhere it is


def test_static_route_works_with_the_sidecar_stopped(sidecar_stopped):
    stack = sidecar_stopped
    for _ in range(3):
        mark = marker()
        resp = get(stack.listen_port, f"/static/img/logo.png?m={mark}")
        assert resp.status == 200, resp
        assert len(upstream_saw(stack, mark)) == 1


def test_forged_extproc_headers_do_not_reach_the_app_on_the_static_route(down_stack):
    mark = marker()
    resp = get(down_stack.listen_port, f"/static/app.js?m={mark}",
               headers=[("x-extproc-tags", "trusted-admin"), ("x-extproc-rules", "forged")])
    assert resp.status == 200, resp
    assert extproc_headers(resp.json()) == []


# -- 6. sidecar down or too slow: fail closed ----------------------------------------------


@pytest.mark.parametrize("method, path, body", [
    ("GET", "/", None),
    ("GET", "/api/orders", None),
    ("POST", "/form", b"a=1"),
    ("POST", "/upload/file", b"data"),
], ids=["default", "api", "post-default", "post-upload"])
def test_sidecar_down_fails_closed_with_5xx(sidecar_stopped, method, path, body):
    stack = sidecar_stopped
    mark = marker()
    sep = "&" if "?" in path else "?"
    resp = request(stack.listen_port, method, f"{path}{sep}m={mark}", body=body,
                   headers=[("content-type", "application/x-www-form-urlencoded")] if body else [])
    # deploy/envoy/envoy.yaml: failure_mode_allow false -> 500 when the sidecar is unreachable.
    assert resp.status == 500, resp
    assert resp.elapsed < 5, resp
    assert upstream_saw(stack, mark) == [], "a request reached the app without being checked"


def test_sidecar_restart_restores_service(sidecar_stopped):
    stack = sidecar_stopped
    assert get(stack.listen_port, "/before-restart").status >= 500
    stack.sidecar.start()  # same port: Envoy's cluster points at it
    wait_for(lambda: get(stack.listen_port, "/after-restart").status == 200, 10, what="service after restart")
    assert get(stack.listen_port, "/blocked").status == 403
    assert_still_serving(stack)


# -- 6b. a sidecar that answers too late ---------------------------------------------------

MESSAGE_TIMEOUT = 0.1
FROZEN_SECONDS = 1.5

# The rule below was once a way to make the sidecar slow (a backtracking regex); with RE2 it is
# linear, so the sidecar is made slow the blunt way: its process is stopped (SIGSTOP) while a
# request waits, then resumed.
SLOW_POLICY = """
version: 1
defaults:
  layers:
    rules:
      rules:
        - id: once-catastrophic-regex
          match: {headers: {x-slow: {regex: '^(a+)+$'}}}
          action: deny
"""


@pytest.fixture(scope="module")
def slow_stack(transport, tmp_path_factory):
    with started_stack("slow stack", SLOW_POLICY, tmp_path_factory.mktemp("slow"),
                       message_timeout=MESSAGE_TIMEOUT, sidecar_args=["--drain-seconds", "1"]) as s:
        yield s


def test_too_slow_sidecar_gives_504_quickly_and_recovers(slow_stack):
    stack = slow_stack
    # The first request also opens Envoy's HTTP/2 connection to the sidecar.
    wait_for(lambda: get(stack.listen_port, "/warm-up").status == 200, 10, what="a first answer in time")
    mark = marker()
    pid = stack.sidecar.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        resp = get(stack.listen_port, f"/slow?m={mark}")
    finally:
        threading.Timer(FROZEN_SECONDS, os.kill, (pid, signal.SIGCONT)).start()
    assert resp.status == 504, resp
    # Envoy gives up after message_timeout; it does not wait for the sidecar.
    assert resp.elapsed < FROZEN_SECONDS * 0.6, resp.elapsed
    assert upstream_saw(stack, mark) == []
    # Once the sidecar runs again, it answers in time.
    wait_for(lambda: get(stack.listen_port, "/after").status == 200, 15, interval=0.2,
             what="the sidecar to answer in time again")
    assert_still_serving(stack)
    # The pattern that used to take seconds on 'aaaa…a!' is now answered at once, and still matches.
    assert get(stack.listen_port, "/fast", headers=[("x-slow", "a" * 5000 + "!")]).status == 200
    assert get(stack.listen_port, "/fast", headers=[("x-slow", "aaa")]).status == 403
