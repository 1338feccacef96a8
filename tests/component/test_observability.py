"""Traces, audit records and state-size metrics, through the real grpc.aio server in-process."""
from __future__ import annotations

import orjson
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

from extproc.observability.audit import AuditWriter
from extproc.observability.metrics import Metrics
from extproc.wire.server import Observers
from extproc.observability.tracing import Tracing, enabled_by_env
from extproc.wire import messages
from tests.component.test_server import form_post, headers_msg, policy_store, run, running

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
ENVOY_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{ENVOY_SPAN}-01"


def in_memory_tracing(sampler=None) -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler) if sampler else TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider.get_tracer("test"), provider), exporter


async def process(srv, *messages, metadata=()) -> list:
    """One stream: each message and its reply (none after a deny), then half-close."""
    call = srv.stub.Process(timeout=5, metadata=metadata)
    replies = []
    for message in messages:
        await call.write(message)
        replies.append(await call.read())
        if replies[-1].WhichOneof("response") == "immediate_response":
            break
    await call.done_writing()
    await call.code()
    return replies


# -- traces --------------------------------------------------------------------------------


def test_span_continues_envoys_trace_with_route_decision_and_rule_attributes(tmp_path):
    tracing, exporter = in_memory_tracing()

    async def body():
        async with running(policy_store(tmp_path), observers=Observers(tracing=tracing)) as srv:
            await process(srv, headers_msg(path="/a/secret"), metadata=(("traceparent", TRACEPARENT),))
            await process(srv, headers_msg(path="/ok"))  # no trace context: a new trace

    run(body())
    denied, allowed = exporter.get_finished_spans()
    assert f"{denied.context.trace_id:032x}" == TRACE_ID
    assert f"{denied.parent.span_id:016x}" == ENVOY_SPAN and denied.parent.is_remote
    assert denied.name == "extproc default"
    attrs = denied.attributes
    assert attrs["extproc.decision"] == "deny" and attrs["extproc.denied_by"] == "rules"
    assert attrs["http.response.status_code"] == 403
    assert list(attrs["extproc.rule_ids"]) == ["deny-path-a"]
    assert attrs["url.path"] == "/a/secret" and attrs["client.address"] == "1.2.3.4"
    assert [event.name for event in denied.events] == ["layer rules"]
    assert denied.events[0].attributes["action"] == "deny"
    assert allowed.parent is None and allowed.context.trace_id != denied.context.trace_id
    assert allowed.attributes["extproc.decision"] == "allow"
    assert list(allowed.attributes["extproc.rule_ids"]) == ["tag-curl"]


def test_span_covers_the_body_phase_and_unsampled_requests_export_nothing(tmp_path):
    tracing, exporter = in_memory_tracing()
    never, silent = in_memory_tracing(TraceIdRatioBased(0.0))

    async def body():
        async with running(policy_store(tmp_path), observers=Observers(tracing=tracing)) as srv:
            await process(srv, form_post(), messages.request_body(b"x=evil-a"))
        async with running(policy_store(tmp_path), observers=Observers(tracing=never)) as srv:
            await process(srv, headers_msg(path="/a"))

    run(body())
    (span,) = exporter.get_finished_spans()
    assert span.attributes["extproc.decision"] == "deny"
    assert list(span.attributes["extproc.rule_ids"]) == ["deny-body-a"]
    assert silent.get_finished_spans() == ()


def test_a_stream_without_a_decision_ends_its_span_as_an_error(tmp_path):
    tracing, exporter = in_memory_tracing()

    async def body():
        async with running(policy_store(tmp_path), observers=Observers(tracing=tracing)) as srv:
            call = srv.stub.Process(timeout=5)
            await call.write(messages.request_body(b"x"))  # a body before any headers: a protocol error
            await call.code()

    run(body())
    (span,) = exporter.get_finished_spans()
    assert not span.status.is_ok


@pytest.mark.parametrize("environ, expected", [
    ({}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4317"}, True),
    ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
    ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317"}, False),
    ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
])
def test_tracing_is_off_unless_the_otel_variables_ask_for_it(environ, expected):
    assert enabled_by_env(environ) is expected


# -- audit ---------------------------------------------------------------------------------


def read_records(path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_text().splitlines()]


def test_audit_writes_every_deny_and_no_unsampled_allow(tmp_path):
    log = tmp_path / "audit.jsonl"
    audit = AuditWriter(str(log), allow_rate=0.0)

    async def body():
        async with running(policy_store(tmp_path), observers=Observers(audit=audit)) as srv:
            for i in range(5):
                await process(srv, headers_msg(path=f"/a/{i}?token=secret"), metadata=(("traceparent", TRACEPARENT),))
                await process(srv, headers_msg(path=f"/fine/{i}"))

    run(body())  # serve() returning closed the writer: every line is on disk
    records = read_records(log)
    assert [r["path"] for r in records] == [f"/a/{i}" for i in range(5)]  # no query: it may hold secrets
    first = records[0]
    assert first["decision"] == "deny" and first["status"] == 403 and first["denied_by"] == "rules"
    assert first["trace_id"] == TRACE_ID and first["route"] == "default"
    assert first["method"] == "GET" and first["host"] == "example.com" and first["source_ip"] == "1.2.3.4"
    assert len(first["policy"]) == 12 and first["latency_us"] > 0
    (layer,) = first["layers"]
    assert layer["layer"] == "rules" and layer["action"] == "deny"
    assert layer["reasons"] == ["rule:deny-path-a"]
    assert set(layer) == {"layer", "action", "mode", "outcome", "elapsed_us", "scores", "labels", "reasons"}


def test_audit_samples_allows_at_the_given_rate(tmp_path):
    log = tmp_path / "audit.jsonl"

    async def body():
        async with running(policy_store(tmp_path), observers=Observers(audit=AuditWriter(str(log), 1.0))) as srv:
            await process(srv, headers_msg(path="/fine"))

    run(body())
    (record,) = read_records(log)
    assert record["decision"] == "allow" and record["status"] == 200 and record["trace_id"] is None
    with pytest.raises(ValueError):
        AuditWriter(str(tmp_path / "other.jsonl"), 1.5)


def test_audit_record_survives_invalid_utf8_in_the_path(tmp_path):
    log = tmp_path / "audit.jsonl"
    audit = AuditWriter(str(log), 1.0)

    async def body():
        async with running(policy_store(tmp_path), observers=Observers(audit=audit)) as srv:
            message = headers_msg(path="/a")
            message.request_headers.headers.headers[1].raw_value = b"/a/\xff\xfe"
            await process(srv, message)

    run(body())
    (record,) = read_records(log)
    assert record["path"] == "/a/\u00ff\u00fe"  # bytes that are not UTF-8 read as Latin-1, as rules read them


# -- state sizes -----------------------------------------------------------------------------


def test_state_sizes_are_exported(tmp_path):
    metrics = Metrics()
    store = policy_store(tmp_path)
    metrics.watch_state(store)
    for state in ("bot_clients", "attack_memo", "access_token_cache"):
        assert metrics.registry.get_sample_value("extproc_state_entries", {"state": state}) is not None


def test_audit_close_writes_everything_still_queued(tmp_path):
    from extproc.core.request import Request
    from extproc.core.verdict import Decision

    log = tmp_path / "audit.jsonl"
    audit = AuditWriter(str(log))
    request = Request(method="GET", path="/x", source_ip="1.2.3.4")
    for i in range(20_000):  # far faster than the thread writes: most are still queued at close()
        audit.write(Decision(f"id-{i}", "r", allowed=False), request, None, "digest", 1.0)
    audit.close()
    assert [r["request_id"] for r in read_records(log)] == [f"id-{i}" for i in range(20_000)]


def test_decisions_verdicts_and_layer_latency_are_exported_as_prometheus_reads_them():
    from prometheus_client import generate_latest

    from extproc.core.verdict import Action, Decision, LayerResult, Mode, Outcome, Verdict

    metrics = Metrics()
    fast = LayerResult(Verdict("rules", Action.ALLOW), Mode.ENFORCE, Outcome.OK, 10.0)  # exactly on the 10 us bound
    slow = LayerResult(Verdict("rules", Action.DENY, 403), Mode.ENFORCE, Outcome.OK, 300.0)
    metrics.record(Decision("r1", "api", True, results=(fast,)))
    metrics.record(Decision("r2", "api", False, 403, results=(slow,)))
    get = metrics.registry.get_sample_value
    assert get("extproc_decisions_total", {"route": "api", "action": "allow"}) == 1
    assert get("extproc_decisions_total", {"route": "api", "action": "deny"}) == 1
    assert get("extproc_layer_verdicts_total", {"layer": "rules", "action": "deny", "mode": "enforce"}) == 1
    assert get("extproc_layer_duration_seconds_bucket", {"layer": "rules", "le": "1e-05"}) == 1  # le: bound included
    assert get("extproc_layer_duration_seconds_bucket", {"layer": "rules", "le": "0.00025"}) == 1
    assert get("extproc_layer_duration_seconds_bucket", {"layer": "rules", "le": "+Inf"}) == 2
    assert get("extproc_layer_duration_seconds_count", {"layer": "rules"}) == 2
    assert get("extproc_layer_duration_seconds_sum", {"layer": "rules"}) == pytest.approx(310e-6)
    text = generate_latest(metrics.registry).decode()
    assert "# TYPE extproc_decisions_total counter" in text
    assert "# TYPE extproc_layer_duration_seconds histogram" in text
