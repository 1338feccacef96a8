"""Traces end to end: Envoy's OpenTelemetry tracer and the sidecar both export OTLP/gRPC to a
receiver in the test; the sidecar's span must sit in Envoy's trace, under Envoy's ext_proc span."""
from __future__ import annotations

import pytest
from e2e_support import BLOCKING_POLICY, get, marker, started_stack, wait_for

from extproc.otlp_receiver import OtlpReceiver

CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    with OtlpReceiver() as receiver:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_SERVICE_NAME": "extproc",
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # export within 0.1 s instead of 5 s
        }
        with started_stack("tracing stack", BLOCKING_POLICY, tmp_path_factory.mktemp("tracing"),
                           otlp_port=receiver.port, sidecar_env=env) as stack:
            yield stack, receiver


def sidecar_span(receiver, path: str):
    # By path, not request id: with tracing on, Envoy rewrites a client's x-request-id.
    spans = [s for s in receiver.spans("extproc") if s.attributes.get("url.path") == path]
    return spans[0] if spans else None


def test_sidecar_spans_continue_envoys_trace_under_its_ext_proc_span(traced):
    stack, receiver = traced
    paths = {}
    # Envoy flushes its spans every 5 s or every 5 spans: send enough to fill a batch.
    for _ in range(6):
        for prefix, expected in (("/blocked", 403), ("/fine", 200)):
            path = f"{prefix}/{marker()}"
            resp = get(stack.listen_port, path)
            assert resp.status == expected, resp
            paths[path] = expected

    spans = {path: wait_for(lambda path=path: sidecar_span(receiver, path), 20, what=f"the sidecar span of {path}")
             for path in paths}
    wait_for(lambda: {s.trace_id for s in spans.values()} <= {e.trace_id for e in receiver.spans("envoy")}, 20,
             what="Envoy's spans of the same traces")
    envoy_spans = {(s.trace_id, s.span_id): s for s in receiver.spans("envoy")}
    for path, status in paths.items():
        span = spans[path]
        parent = envoy_spans.get((span.trace_id, span.parent_span_id))
        assert parent is not None, f"the sidecar span of {path} has no Envoy parent in its trace"
        assert "ext_proc" in parent.name or "ExternalProcessor" in parent.name, parent
        assert span.attributes["extproc.decision"] == ("deny" if status == 403 else "allow")
        assert span.attributes["extproc.route"] == "default"
    denied = next(s for path, s in spans.items() if paths[path] == 403)
    assert denied.attributes["extproc.rule_ids"] == ["deny-blocked"]


def test_a_client_trace_id_is_kept_through_envoy_and_the_sidecar(traced):
    stack, receiver = traced
    path = f"/blocked/{marker()}"
    resp = get(stack.listen_port, path, headers=[("traceparent", f"00-{CLIENT_TRACE}-b7ad6b7169203331-01")])
    assert resp.status == 403
    span = wait_for(lambda: sidecar_span(receiver, path), 20, what="the sidecar span")
    assert span.trace_id == CLIENT_TRACE
