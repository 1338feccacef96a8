"""MCP audit records: one JSON line per MCP message, the operator's own trail of agent traffic.

Schema (``v`` 1): ``time``, ``request_id``, ``trace_id``, ``route``, ``server``, ``identity``,
``groups``, ``client`` (``ip``, ``user_agent``, ``session``), ``method``, ``id`` (JSON-RPC),
``target`` (tool, resource or prompt), ``arguments`` (``sha256`` and ``bytes``; never the
arguments themselves), ``decision`` (allow | deny | filtered | withheld), ``reason``, ``latency_us``; a
filtered list answer adds ``listed`` and ``shown``.

Records go through a queue to a writer thread (extproc/observability/jsonl.py) so the request path never waits
on disk; files rotate by size; ``close()`` flushes what is queued.
"""
from __future__ import annotations

import atexit
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import orjson

from extproc.core.durable import DURABLE
from extproc.observability.jsonl import JsonLinesWriter, dump_line, timestamp

SCHEMA_VERSION = 1


class McpAudit:
    """One file's writer; the time is taken when the record is written, the JSON made off the request path."""

    def __init__(self, path: str, max_bytes: int = 50 << 20, backups: int = 5) -> None:
        self._lines: JsonLinesWriter[dict] = JsonLinesWriter(path, dump_line, max_bytes, backups, name="mcp-audit")
        atexit.register(self.close)

    def write(self, record: dict) -> None:
        self._lines.put({"v": SCHEMA_VERSION, "time": timestamp(time.time()), **record})

    def close(self) -> None:
        self._lines.close()


def audit_writer(path: str, max_bytes: int, backups: int) -> McpAudit:
    """One writer per file, shared by every route and policy version that names it."""
    return DURABLE.get("audit_files", (path, max_bytes, backups), lambda: McpAudit(path, max_bytes, backups))


def close_all() -> None:
    """Write what every audit file has queued and close them (tests read the files after)."""
    for writer in DURABLE.values("audit_files"):
        writer.close()
    DURABLE.clear("audit_files")


# -- querying (``extproc audit``) -----------------------------------------------------------------


def query(paths: list[str], identity: str | None = None, tool: str | None = None, decision: str | None = None,
          server: str | None = None, since: str | None = None, until: str | None = None) -> Iterator[dict]:
    """Records of the files (rotated ones included, oldest first) that match every given filter."""
    low, high = _instant(since), _instant(until)
    for path in paths:
        for file in _with_rotations(Path(path)):
            with open(file, "rb") as lines:
                for line in lines:
                    try:
                        record = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        continue
                    if _matches(record, identity, tool, decision, server, low, high):
                        yield record


def _with_rotations(path: Path) -> list[Path]:
    rotated = sorted(path.parent.glob(path.name + ".*"), key=lambda p: -int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0)
    return [p for p in rotated if p.suffix[1:].isdigit()] + ([path] if path.exists() else [])


def _matches(record: dict, identity, tool, decision, server, low, high) -> bool:
    if identity and record.get("identity") != identity:
        return False
    if tool and record.get("target") != tool:
        return False
    if decision and record.get("decision") != decision:
        return False
    if server and record.get("server") != server:
        return False
    when = _instant(record.get("time"))
    return (low is None or (when is not None and when >= low)) and (high is None or (when is not None and when <= high))


def _instant(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
