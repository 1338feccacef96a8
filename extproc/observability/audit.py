"""Decision audit records: one JSON line per deny and per sampled allow; and, when asked, the
capture of whole requests (capture.py), fed at the same point with the same decision.

The request path only queues a small tuple; the JSON Lines writer's thread (extproc/observability/jsonl.py)
builds the JSON and appends whole lines. ``close()`` drains the queue and is called when the
server drains, so nothing queued before SIGTERM is lost. The schema is documented in
docs/observability.md ("Audit records").
"""
from __future__ import annotations

import random
import time
from typing import NamedTuple

from extproc.observability.capture import CaptureWriter
from extproc.observability.jsonl import JsonLinesWriter, dump_line, timestamp
from extproc.observability.redact import redact_url
from extproc.core.request import Request
from extproc.core.verdict import Decision

SCHEMA_VERSION = 1


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
    """Append records to ``path`` (``-`` for stdout; None: no audit records, only the capture).
    Every deny is written, allows at ``allow_rate``; the capture, when given, samples on its own."""

    def __init__(self, path: str | None, allow_rate: float = 0.0, rng: random.Random | None = None,
                 capture: CaptureWriter | None = None) -> None:
        if not 0.0 <= allow_rate <= 1.0:
            raise ValueError("the audit allow sampling rate must be between 0 and 1")
        self.path = path
        self.allow_rate = allow_rate
        self.capture = capture
        self._random = (rng or random.Random()).random
        self._lines: JsonLinesWriter[Entry] | None = (
            JsonLinesWriter(path, render, name="audit-writer") if path is not None else None)
        # What wants() chose for the decision it was last asked about: write() follows it.
        self._chosen: tuple[Decision | None, bool, bool] = (None, False, False)

    @property
    def dropped(self) -> int:
        """Lines that could not be written (disk full, closed pipe); logged too."""
        return (self._lines.dropped if self._lines else 0) + (self.capture.dropped if self.capture else 0)

    def wants(self, decision: Decision) -> bool:
        """Decide before gathering anything: a deny always, an allow by sampling; the capture by its rate."""
        audit = self._lines is not None and self._audits(decision)
        capture = self.capture is not None and self.capture.wants()
        self._chosen = (decision, audit, capture)
        return audit or capture

    def _audits(self, decision: Decision) -> bool:
        if not decision.allowed or decision.would_deny:
            return True
        return self.allow_rate > 0.0 and self._random() < self.allow_rate

    def write(self, decision: Decision, request: Request, trace_id: str | None, policy: str,
              latency_us: float) -> None:
        chosen, audit, capture = self._chosen
        if chosen is not decision:  # called without wants(): the audit record is written, the capture samples
            audit = self._lines is not None
            capture = self.capture is not None and self.capture.wants()
        self._chosen = (None, False, False)
        if audit and self._lines is not None:
            self._lines.put(Entry(time.time(), decision, trace_id, request.source_ip, request.method,
                                  request.host, redact_url(request.url_path), policy, latency_us))
        if capture and self.capture is not None:
            self.capture.write(decision, request, policy)

    def close(self) -> None:
        """Write everything queued so far, then stop the threads."""
        if self._lines is not None:
            self._lines.close()
        if self.capture is not None:
            self.capture.close()


def render(entry: Entry) -> bytes:
    """One record as a JSON line (the schema in docs/observability.md)."""
    decision = entry.decision
    record = {
        "v": SCHEMA_VERSION,
        "time": timestamp(entry.time),
        "request_id": decision.request_id,
        "trace_id": entry.trace_id,
        "route": decision.route,
        "decision": "allow" if decision.allowed else "deny",
        "status": decision.status,
        "denied_by": decision.denied_by or None,
        "would_deny": list(decision.would_deny),
        "layers": [result.record() for result in decision.results],
        "source_ip": entry.source_ip,
        "method": entry.method,
        "host": entry.host,
        "path": entry.path,
        "policy": entry.policy,
        "latency_us": round(entry.latency_us, 1),
    }
    return dump_line(record)
