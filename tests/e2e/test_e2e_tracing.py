"""Traces end to end: Envoy's OpenTelemetry tracer and the sidecar both export OTLP/gRPC to a
receiver in the test; the sidecar's span must sit in Envoy's trace, under Envoy's ext_proc span.
Credentials in a URL reach no span, no access log line, no audit record and no sidecar log line."""
from __future__ import annotations

import json

import pytest

from extproc.local.otlp_receiver import OtlpReceiver
from tests.support.e2e_support import BLOCKING_POLICY, get, marker, started_stack, wait_for

CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tracing")
    with OtlpReceiver() as receiver:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_SERVICE_NAME": "extproc",
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # export within 0.1 s instead of 5 s
        }
        # Every decision audited, allows too, so the audit file is searched for every request.
        audit = ["--audit-log", str(workdir / "audit.jsonl"), "--audit-sample-allows", "1"]
        with started_stack("tracing stack", BLOCKING_POLICY, workdir, otlp_port=receiver.port,
                           sidecar_env=env, sidecar_args=audit) as stack:
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



SECRETS = ("QUERYSECRET1", "QUERYSECRET2")
PATH_SECRET = "PATHSECRET"  # in a ;jsessionid= path parameter: the sidecar redacts it, Envoy cannot


def lines_naming(text: str, paths) -> list[str] | None:
    """The lines of text naming each path, or None until every path is named."""
    lines = [line for line in text.splitlines() if any(f'"{path}' in line for path in paths)]
    return lines if len(lines) >= len(paths) else None


def test_credentials_in_the_url_reach_no_span_access_log_audit_record_or_log_line(traced):
    stack, receiver = traced
    sent = {}
    for _ in range(3):  # 6 requests, 12 Envoy spans: more than Envoy's batch of 5
        for prefix, expected in (("/blocked", 403), ("/fine", 200)):
            path = f"{prefix}/{marker()}"
            resp = get(stack.listen_port, f"{path};jsessionid={PATH_SECRET}?access_token={SECRETS[0]}"
                                          f"&reset={SECRETS[1]}&page=2")
            assert resp.status == expected, resp
            sent[path] = expected

    # The sidecar's span: the path kept, the path parameter's value replaced.
    spans = {path: wait_for(lambda path=path: sidecar_span(receiver, f"{path};jsessionid=REDACTED"), 20,
                            what=f"the sidecar span of {path}") for path in sent}
    traces = {span.trace_id for span in spans.values()}

    def envoy_ingress_spans():
        found = [s for s in receiver.spans("envoy") if s.trace_id in traces and "http.url" in s.attributes]
        return found if len(found) == len(traces) else None

    # Envoy's URL tag keeps the path (as the client sent it) and drops the query.
    urls = sorted(span.attributes["http.url"] for span in wait_for(envoy_ingress_spans, 20, what="Envoy's spans"))
    assert urls == sorted(f"http://127.0.0.1:{stack.listen_port}{path};jsessionid={PATH_SECRET}" for path in sent)

    access_log = wait_for(lambda: lines_naming(stack.envoy.log_text(), sent), 20, what="the access log lines")
    assert sorted(json.loads(line)["path"] for line in access_log) == sorted(
        f"{path};jsessionid={PATH_SECRET}" for path in sent)

    audit_file = stack.workdir / "audit.jsonl"
    audit = wait_for(lambda: lines_naming(audit_file.read_text(), sent), 20, what="the audit records")
    assert sorted(json.loads(line)["path"] for line in audit) == sorted(f"{path};jsessionid=REDACTED" for path in sent)

    everywhere = {
        "Envoy's spans": b"".join(span.wire for span in receiver.spans("envoy") if span.trace_id in traces),
        "the sidecar's spans": b"".join(span.wire for span in receiver.spans("extproc") if span.trace_id in traces),
        "Envoy's log": stack.envoy.log_text().encode(),
        "the audit file": audit_file.read_bytes(),
        "the sidecar's log": stack.sidecar.log_text().encode(),
    }
    for where, text in everywhere.items():
        for secret in SECRETS:
            assert secret.encode() not in text, f"{secret} found in {where}"
    for where in ("the sidecar's spans", "the audit file", "the sidecar's log"):
        assert PATH_SECRET.encode() not in everywhere[where], f"{PATH_SECRET} found in {where}"
