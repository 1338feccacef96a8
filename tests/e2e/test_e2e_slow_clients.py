"""Slow clients (issue 18): more than 1,024 uploads that announce a body and never send it, over
HTTP/1.1 and HTTP/2, hold no sidecar stream. Envoy's buffer filter keeps them away from the sidecar
until their body is in, so a normal client keeps getting its right answers while they are held,
and request_timeout ends them with 408. Without the buffer filter each held an ext_proc stream,
the extproc cluster's 1,024 filled, and every other request got 504.
"""
from __future__ import annotations

import resource
from collections import Counter

import pytest
from tests.support.e2e_support import BLOCKING_POLICY, get, marker, request, started_stack, upstream_saw, wait_for
from extproc_lab.bench.idle_uploads import Http1IdleUploads, Http2IdleUploads

IDLE_HTTP1 = 600           # one connection each
IDLE_HTTP2 = 500           # 100 streams per connection: Envoy's per-connection limit
IDLE_TOTAL = IDLE_HTTP1 + IDLE_HTTP2
BATCH = 100                # opened at a time; the next batch waits until Envoy has read these
REQUEST_TIMEOUT = 15.0     # shipped: 30 s; shorter here so the test ends sooner
FILES_NEEDED = 2 * IDLE_HTTP1 + 400  # ours and Envoy's, which inherits our limit

POLICY = BLOCKING_POLICY + """\
        - id: checked
          match: {path: {regex: '.'}}
          action: tag
          tags: [checked]
"""
FORM = [("content-type", "application/x-www-form-urlencoded")]
STREAMS_STARTED = "http.ingress.ext_proc.streams_started"
RQ_ACTIVE = "http.ingress.downstream_rq_active"
RQ_TIMEOUT = "http.ingress.downstream_rq_timeout"


def _enough_file_descriptors() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= FILES_NEEDED:
        return
    if hard != resource.RLIM_INFINITY and hard < FILES_NEEDED:
        pytest.skip(f"needs {FILES_NEEDED} open files, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (FILES_NEEDED, hard))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    _enough_file_descriptors()  # before Envoy starts: it inherits the limit
    # message_timeout 1 s: a loaded machine must not turn a normal answer into a 504.
    with started_stack("slow clients stack", POLICY, tmp_path_factory.mktemp("slow-clients"),
                       request_timeout=REQUEST_TIMEOUT, message_timeout=1.0) as s:
        yield s


def _stat(stack, name: str) -> int:
    return stack.envoy.stats(name).get(name, 0)


def _normal_client_round(stack) -> list[tuple[str, bool]]:
    """What a normal client sends, each with whether it got the right answer."""
    port, results = stack.listen_port, []
    mark = marker()
    page = get(port, f"/page?m={mark}")
    results.append(("GET allowed", page.status == 200 and ["checked"] == [
        v for k, v in page.json()["headers"] if k == "x-extproc-tags"]))
    results.append(("GET denied", get(port, f"/blocked?m={mark}").status == 403))
    form = request(port, "POST", f"/form?m={mark}", body=b"a=1&b=2", headers=FORM)
    results.append(("POST allowed", form.status == 200 and form.json()["body_bytes"] == 7))
    evil = request(port, "POST", f"/form?m={mark}-evil", body=b"a=EVIL-PAYLOAD", headers=FORM)
    results.append(("POST denied on its body", evil.status == 403 and not upstream_saw(stack, f"{mark}-evil")))
    results.append(("GET static", get(port, f"/static/app.css?m={mark}").status == 200))
    return results


SIDECAR_REQUESTS_PER_ROUND = 4  # all but the static one
ROUNDS = 3


def _open_in_batches(stack, opener, path: str, count: int, already: int) -> None:
    for start in range(0, count, BATCH):
        opener.open(path, min(BATCH, count - start))
        held = already + min(start + BATCH, count)
        wait_for(lambda: _stat(stack, RQ_ACTIVE) >= held, 30, what=f"Envoy to hold {held} idle uploads")


def test_idle_uploads_hold_no_sidecar_stream_and_end_at_request_timeout(stack):
    mark = marker()
    streams_before, timeouts_before = _stat(stack, STREAMS_STARTED), _stat(stack, RQ_TIMEOUT)
    http1, http2 = Http1IdleUploads(stack.listen_port), Http2IdleUploads(stack.listen_port, 100)
    try:
        # The default route (the sidecar asks for the body) and the upload route (always sent).
        _open_in_batches(stack, http1, f"/idle/form?m={mark}", IDLE_HTTP1, 0)
        _open_in_batches(stack, http2, f"/upload/idle?m={mark}", IDLE_HTTP2, IDLE_HTTP1)

        results = [result for _ in range(ROUNDS) for result in _normal_client_round(stack)]
        wrong = [name for name, ok in results if not ok]
        assert not wrong, f"wrong answers while {IDLE_TOTAL} idle uploads were held: {Counter(wrong)}"
        assert _stat(stack, RQ_ACTIVE) >= IDLE_TOTAL, \
            "idle uploads ended before the normal client was done: the test proves nothing (too slow a machine?)"
        # Only the normal client's requests opened a stream to the sidecar.
        assert _stat(stack, STREAMS_STARTED) - streams_before == ROUNDS * SIDECAR_REQUESTS_PER_ROUND

        wait_for(lambda: http1.answered() == IDLE_HTTP1 and http2.answered() == IDLE_HTTP2,
                 REQUEST_TIMEOUT + 30, interval=0.25, what="request_timeout to end the idle uploads")
        assert Counter(http1.answers()) == {"HTTP/1.1 408 Request Timeout": IDLE_HTTP1}
        assert Counter((a.ended, bytes(a.body)) for a in http2.answers()) == {(True, b"request timeout"): IDLE_HTTP2}
    finally:
        http1.close()
        http2.close()
    assert _stat(stack, RQ_TIMEOUT) - timeouts_before == IDLE_TOTAL
    assert upstream_saw(stack, mark) == [], "an idle upload reached the app"
    # And the service is as it was.
    assert all(ok for _, ok in _normal_client_round(stack))
