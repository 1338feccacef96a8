"""Credentials in URLs never reach the sidecar's records: spans, decision audit, MCP audit, logs."""
from __future__ import annotations

import pytest

from extproc.observability.audit import AuditWriter
from extproc.mcp.audit import query
from extproc.observability.redact import REDACTED, fragments_from_env, redact_url
from extproc.wire.server import Observers
from tests.unit.test_mcp import call, policy, rpc, who  # noqa: F401 (policy is a fixture)
from tests.component.test_observability import in_memory_tracing, process, read_records
from tests.component.test_server import headers_msg, policy_store, run, running


@pytest.mark.parametrize("url, expected", [
    ("/reset?access_token=S1&reset=S2&page=2", "/reset?access_token=REDACTED&reset=REDACTED&page=2"),
    ("/a;jsessionid=S1/b?q=1&id_token=S2", "/a;jsessionid=REDACTED/b?q=1&id_token=REDACTED"),
    ("/a;v=1/b?refresh_token=S1", "/a;v=1/b?refresh_token=REDACTED"),  # a harmless path parameter first
    ("https://bob:S1@host/x?X-Amz-Signature=S2", "https://bob:REDACTED@host/x?X-Amz-Signature=REDACTED"),
    ("/cb#access_token=S1&state=ok", "/cb#access_token=REDACTED&state=ok"),  # OAuth implicit flow
    ("/x?a%5Fpassword=S1&API-KEY=S2&client_secret=S3&name=ok", "/x?a%5Fpassword=REDACTED&API-KEY=REDACTED"
                                                                "&client_secret=REDACTED&name=ok"),
    ("/oauth?code=S1&code=S2", "/oauth?code=REDACTED&code=REDACTED"),  # every copy of a repeated name
    ("/plain/path", "/plain/path"), ("/x?token", "/x?token"), ("", ""),
])
def test_sensitive_parameter_values_and_uri_passwords_are_redacted(url, expected):
    assert redact_url(url) == expected


def test_operators_add_parameter_names_and_the_defaults_stay():
    fragments = fragments_from_env({"EXTPROC_REDACT_PARAMS": "Voucher, member-no"})
    assert redact_url("/x?voucher=S1&member_no=S2&mEMBER-No=S3&token=S4&q=ok", fragments) == (
        "/x?voucher=REDACTED&member_no=REDACTED&mEMBER-No=REDACTED&token=REDACTED&q=ok")


def test_span_and_audit_record_carry_the_path_without_its_credentials(tmp_path):
    tracing, exporter = in_memory_tracing()
    log = tmp_path / "audit.jsonl"
    audit = AuditWriter(str(log), allow_rate=1.0)

    async def body():
        async with running(policy_store(tmp_path), observers=Observers(tracing=tracing, audit=audit)) as srv:
            await process(srv, headers_msg(path="/a/x;jsessionid=S1?access_token=S2"))
            await process(srv, headers_msg(path="/fine;sid=S3"))

    run(body())
    paths = [span.attributes["url.path"] for span in exporter.get_finished_spans()]
    assert paths == ["/a/x;jsessionid=REDACTED", "/fine;sid=REDACTED"]
    assert [record["path"] for record in read_records(log)] == paths
    assert not [secret for secret in ("S1", "S2", "S3") if secret in log.read_text()]


def test_mcp_audit_and_reasons_show_a_resource_uri_without_its_credentials(policy, tmp_path):  # noqa: F811
    from extproc.mcp.audit import close_all

    uri = "repo://org/app?token=S1&ref=main"
    _, allowed = call(policy, rpc("resources/read", {"uri": uri}), who("ana", "engineering"))
    _, denied = call(policy, rpc("resources/read", {"uri": "https://u:S2@files/x?sig=S3"}), who("ana", "engineering"))
    close_all()
    records = list(query([str(tmp_path / "mcp.jsonl")]))
    assert [(r["target"], r["decision"]) for r in records] == [
        (f"repo://org/app?token={REDACTED}&ref=main", "allow"), (f"https://u:{REDACTED}@files/x?sig={REDACTED}", "deny")]
    reasons = " ".join(denied.reasons if denied is not None else ())
    assert "resource_not_allowed" in reasons and "S2" not in reasons and "S3" not in reasons
    assert not [s for s in ("S1", "S2", "S3") if s in (tmp_path / "mcp.jsonl").read_text()]
