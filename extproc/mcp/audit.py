"""MCP audit records: one JSON line per MCP message, the operator's own trail of agent traffic.

Schema (``v`` 1): ``time``, ``request_id``, ``trace_id``, ``route``, ``server``, ``identity``,
``groups``, ``client`` (``ip``, ``user_agent``, ``session``), ``method``, ``id`` (JSON-RPC),
``target`` (tool, resource or prompt), ``arguments`` (``sha256`` and ``bytes``; never the
arguments themselves), ``decision`` (allow | deny | filtered | withheld), ``reason``, ``latency_us``; a
filtered list answer adds ``listed`` and ``shown``.

Records go through a queue to a writer thread (``logging``'s QueueListener) so the request path
never waits on disk; files rotate by size; ``close()`` flushes what is queued.
"""
from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import orjson

from extproc.text import library_value

SCHEMA_VERSION = 1


class _Line(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()


class McpAudit:
    def __init__(self, path: str, max_bytes: int = 50 << 20, backups: int = 5) -> None:
        if path == "-":
            handler: logging.Handler = logging.StreamHandler(sys.stdout)
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups,
                                                           encoding="utf-8")
        handler.setFormatter(_Line())
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._listener = logging.handlers.QueueListener(self._queue, handler)
        self._listener.start()
        self._handler = handler
        self._lock = threading.Lock()
        self._closed = False
        atexit.register(self.close)

    def write(self, record: dict) -> None:
        record = {"v": SCHEMA_VERSION, "time": _now(), **record}
        try:
            line = orjson.dumps(record, default=str).decode()
        except TypeError:  # invalid UTF-8 in a client's header (user agent, session), kept as surrogates
            line = orjson.dumps(library_value(record), default=str).decode()
        self._queue.put(logging.makeLogRecord({"msg": line, "levelno": logging.INFO, "levelname": "INFO"}))

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._listener.stop()  # drains the queue first
        self._handler.close()


def _now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


_writers: dict[tuple, McpAudit] = {}


def audit_writer(path: str, max_bytes: int, backups: int) -> McpAudit:
    """One writer per file, shared by every route and policy version that names it."""
    key = (path, max_bytes, backups)
    if key not in _writers:
        _writers[key] = McpAudit(path, max_bytes, backups)
    return _writers[key]


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
