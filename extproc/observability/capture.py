"""Capture: a sample of whole requests, as request records (JSON Lines), with the decision attached.

Audit records leave out the query, headers and body (they carry credentials), so they teach
``extproc learn`` and the models nothing. ``extproc serve --capture FILE --capture-sample 0.01``
writes a share of requests whole, in the records format that ``extproc learn``, ``extproc score``,
the red team and training read:

    {"id": <request id>, "source": "capture", "set": <route>, "label": "benign" | "attack",
     "family": "benign" | "unknown", "time": ..., "policy": <digest>,
     "request": {"method", "path", "query", "headers": [[name, value], ...], "body" | "body_b64"},
     "client": {"ip"}, "action": "allow" | "deny", "status", "denied_by", "would_deny": [...],
     "layers": [<each layer's verdict, as in audit records>], "redacted": [<what was redacted>]}

``label`` is the sidecar's own verdict (a deny or would-be deny is ``attack``): review it before
training on it. Secrets and personal data are redacted by default (scrub.py); ``--capture-unredacted``
turns that off for a lab. The body is the one the layers read (content codings undone, so
Content-Encoding and Content-Length are dropped); on a route whose layers do not read bodies it was
never received: the record keeps the request's Content-Length and says ``"body_unread": true``.
The request path queues a reference; the writer thread builds and redacts the record.
"""
from __future__ import annotations

import base64
import random
import time
from typing import NamedTuple

from extproc.core.request import Request
from extproc.core.verdict import Decision
from extproc.observability.jsonl import JsonLinesWriter, dump_line, timestamp
from extproc.observability.redact import REDACTED
from extproc.observability.scrub import Scrubber, scrub_json_body, scrub_multipart

BODY_HEADERS = ("content-encoding", "content-length", "transfer-encoding")  # what the captured body no longer matches
TEXT_MEDIA = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded", "+json", "+xml")


class Entry(NamedTuple):
    time: float
    decision: Decision
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    has_body: bool
    source_ip: str
    policy: str
    redact: bool


class CaptureWriter:
    """Append a sampled share of requests to ``path`` as redacted request records."""

    def __init__(self, path: str, rate: float, redact: bool = True, rng: random.Random | None = None,
                 max_bytes: int = 0, backups: int = 0) -> None:
        if not 0.0 < rate <= 1.0:
            raise ValueError("the capture sampling rate must be above 0 and at most 1")
        self.rate, self.redact = rate, redact
        self._random = (rng or random.Random()).random
        self._lines: JsonLinesWriter[Entry] = JsonLinesWriter(path, render, max_bytes, backups, name="capture-writer")

    @property
    def dropped(self) -> int:
        return self._lines.dropped

    def wants(self) -> bool:
        return self.rate >= 1.0 or self._random() < self.rate

    def write(self, decision: Decision, request: Request, policy: str) -> None:
        self._lines.put(Entry(time.time(), decision, request.method, request.path, request.headers, request.body,
                              request.has_body, request.source_ip, policy, self.redact))

    def close(self) -> None:
        self._lines.close()


def render(entry: Entry) -> bytes:
    return dump_line(record(entry))


def record(entry: Entry) -> dict:
    decision = entry.decision
    scrubber = Scrubber() if entry.redact else None
    flagged = not decision.allowed or bool(decision.would_deny)
    out = {
        "id": decision.request_id, "source": "capture", "set": decision.route,
        "label": "attack" if flagged else "benign", "family": "unknown" if flagged else "benign",
        "time": timestamp(entry.time), "policy": entry.policy,
        "request": _request(entry, scrubber),
        "client": {"ip": entry.source_ip},
        "action": "allow" if decision.allowed else "deny", "status": decision.status,
        "denied_by": decision.denied_by or None, "would_deny": list(decision.would_deny),
        "layers": [result.record() for result in decision.results],
    }
    if scrubber is not None:
        out["redacted"] = sorted(scrubber.found)
    return out


def _request(entry: Entry, scrubber: Scrubber | None) -> dict:
    path, _, query = entry.path.partition("?")
    unread = entry.has_body and not entry.body
    headers = [(name, value) for name, value in entry.headers if unread or name not in BODY_HEADERS]
    media = next((value for name, value in entry.headers if name == "content-type"), "")
    out: dict = {"method": entry.method, "path": path, "query": query}
    if scrubber is not None:
        out["path"] = scrubber.text(path)
        out["query"] = scrubber.pairs("query", query) if query else ""
        headers = [(name, scrubber.header(name, value)) for name, value in headers]
    out["headers"] = [list(pair) for pair in headers]
    if unread:
        out["body_unread"] = True
    elif entry.body:
        out.update(_body(entry.body, media, scrubber))
    return out


def _body(body: bytes, content_type: str, scrubber: Scrubber | None) -> dict:
    if scrubber is None:
        return _as_record_body(body)
    media = content_type.lower()
    if media.startswith("application/x-www-form-urlencoded"):
        return _as_record_body(scrubber.pairs("form", body.decode("utf-8", "surrogateescape")).encode(
            "utf-8", "surrogateescape"))
    if media.startswith("multipart/form-data"):
        rebuilt = scrub_multipart(scrubber, body, content_type)  # the boundary's case matters
        if rebuilt is not None:
            return _as_record_body(rebuilt)
    if "json" in media:
        scrubbed = scrub_json_body(scrubber, body)
        if scrubbed is not None:
            return _as_record_body(scrubbed)
    if any(kind in media for kind in TEXT_MEDIA) and not media.startswith("multipart/"):
        return _as_record_body(scrubber.text(body.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape"))
    scrubber.found.add("body " + (media.partition(";")[0] or "without a type"))
    return {"body": REDACTED}


def _as_record_body(body: bytes) -> dict:
    """``body`` when it is UTF-8 text, else ``body_b64`` (the records format)."""
    try:
        return {"body": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"body_b64": base64.b64encode(body).decode("ascii")}
