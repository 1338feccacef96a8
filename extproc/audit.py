"""Decision audit records: one JSON line per deny and per sampled allow.

The request path only queues a small tuple; a writer thread builds the JSON and appends whole
lines with one ``write`` per batch (``O_APPEND``), so workers sharing a file never interleave
inside a line. ``close()`` drains the queue and is called when the server drains, so nothing
queued before SIGTERM is lost. The schema is documented in docs/observability.md ("Audit records").
"""
from __future__ import annotations

import logging
import os
import queue
import random
import sys
import threading
import time
from typing import NamedTuple

import orjson

from extproc.redact import redact_url
from extproc.request import Request
from extproc.text import library_value
from extproc.verdict import Decision

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1
_STOP = object()
_BATCH = 256  # lines per write at most: bounds the latency of a line under a burst


class Entry(NamedTuple):
    """What the writer needs, taken from the request on the hot path (cheap attribute reads)."""

    time: float
    decision: Decision
    trace_id: str | None
    source_ip: str
    method: str
    host: str
    path: str
    policy: str
    latency_us: float


class AuditWriter:
    """Append records to ``path`` (``-`` for stdout). Every deny is written, allows at ``allow_rate``."""

    def __init__(self, path: str, allow_rate: float = 0.0, rng: random.Random | None = None) -> None:
        if not 0.0 <= allow_rate <= 1.0:
            raise ValueError("the audit allow sampling rate must be between 0 and 1")
        self.path = path
        self.allow_rate = allow_rate
        self._random = (rng or random.Random()).random
        self._fd = sys.stdout.fileno() if path == "-" else os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()
        self.dropped = 0  # lines that could not be written (disk full, closed pipe); logged too

    def wants(self, decision: Decision) -> bool:
        """Decide before gathering anything: a deny always, an allow by sampling."""
        if not decision.allowed or decision.would_deny:
            return True
        return self.allow_rate > 0.0 and self._random() < self.allow_rate

    def write(self, decision: Decision, request: Request, trace_id: str | None, policy: str,
              latency_us: float) -> None:
        self._queue.put(Entry(time.time(), decision, trace_id, request.source_ip, request.method,
                              request.host, redact_url(request.url_path), policy, latency_us))

    def close(self) -> None:
        """Write everything queued so far, then stop the thread."""
        self._queue.put(_STOP)
        self._thread.join()
        if self.path != "-":
            os.close(self._fd)

    # -- the writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            lines = []
            item = self._queue.get()  # block for the first, then take what else is waiting
            while True:
                if item is _STOP:
                    stopping = True
                    break
                lines.append(render(item))
                if len(lines) >= _BATCH or self._queue.empty():
                    break
                item = self._queue.get()
            if lines:
                self._append(b"".join(lines))

    def _append(self, data: bytes) -> None:
        try:
            while data:
                written = os.write(self._fd, data)
                data = data[written:]
        except OSError as exc:
            self.dropped += data.count(b"\n")
            log.error("audit write failed", extra={"error": str(exc), "path": self.path})


def render(entry: Entry) -> bytes:
    """One record as a JSON line (the schema in docs/observability.md)."""
    decision = entry.decision
    record = {
        "v": SCHEMA_VERSION,
        "time": _timestamp(entry.time),
        "request_id": decision.request_id,
        "trace_id": entry.trace_id,
        "route": decision.route,
        "decision": "allow" if decision.allowed else "deny",
        "status": decision.status,
        "denied_by": decision.denied_by or None,
        "would_deny": list(decision.would_deny),
        "layers": [_layer(result) for result in decision.results],
        "source_ip": entry.source_ip,
        "method": entry.method,
        "host": entry.host,
        "path": entry.path,
        "policy": entry.policy,
        "latency_us": round(entry.latency_us, 1),
    }
    try:
        return orjson.dumps(record) + b"\n"
    except TypeError:  # invalid UTF-8 from a request (path, reasons): shown as in every library
        return orjson.dumps(library_value(record)) + b"\n"


def _layer(result) -> dict:
    verdict = result.verdict
    return {
        "layer": verdict.layer, "action": verdict.action.value, "mode": result.mode.value,
        "outcome": result.outcome.value, "elapsed_us": round(result.elapsed_us, 1),
        "scores": dict(verdict.scores), "labels": list(verdict.labels), "reasons": list(verdict.reasons),
    }


def _timestamp(seconds: float) -> str:
    millis = int(seconds * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
