"""The one JSON Lines writer (decision, MCP and AI gateway audit) and the one traceparent reader."""
from __future__ import annotations

import json

from extproc.observability.jsonl import JsonLinesWriter, dump_line
from extproc.mcp.audit import query
from extproc.observability.tracing import trace_id_of


def test_lines_are_whole_in_order_and_rotate_by_size(tmp_path):
    path = tmp_path / "audit.jsonl"
    writer = JsonLinesWriter(str(path), dump_line, max_bytes=400, backups=2)
    for index in range(60):
        writer.put({"n": index, "pad": "x" * 20})
    writer.close()
    writer.close()  # a second close (atexit after a drain) does nothing
    files = [tmp_path / "audit.jsonl.2", tmp_path / "audit.jsonl.1", path]
    assert all(f.stat().st_size <= 400 for f in files) and not (tmp_path / "audit.jsonl.3").exists()
    numbers = [json.loads(line)["n"] for f in files for line in f.read_text().splitlines()]
    assert numbers == sorted(numbers) and numbers[-1] == 59  # the oldest went, the rest in order
    assert [r["n"] for r in query([str(path)])] == numbers  # the audit query reads rotated files oldest first


def test_a_record_that_cannot_be_rendered_is_skipped_not_fatal(tmp_path):
    path = tmp_path / "a.jsonl"
    writer = JsonLinesWriter(str(path), lambda item: dump_line({"v": 1 / item}))
    for item in (1, 0, 2):  # 1/0 raises in the writer thread
        writer.put(item)
    writer.close()
    assert [json.loads(line)["v"] for line in path.read_text().splitlines()] == [1.0, 0.5]


def test_invalid_utf8_in_a_record_is_written_as_latin1():
    assert json.loads(dump_line({"ua": "agent \udcff"})) == {"ua": "agent \u00ff"}


def test_trace_ids_come_only_from_well_formed_traceparents():
    good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert trace_id_of(good) == "4bf92f3577b34da6a3ce929d0e0e4736"
    for bad in ("", "00-xyz-00f067aa0ba902b7-01", "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
                "00-4bf92f3577b34da6a3ce929d0e0e473G-00f067aa0ba902b7-01", good + "-extra"):
        assert trace_id_of(bad) is None
