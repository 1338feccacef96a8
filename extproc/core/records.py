"""Request records (JSON Lines): the interchange format of training data, `score` and replay.

    {"id": "x-1", "label": "attack", "family": "sqli",
     "request": {"method": "GET", "path": "/p", "query": "a=1", "headers": [["host", "h"], ...],
                 "body": "..." (or "body_b64")},
     "client": {"ip": "198.51.100.7", "session": "s1", "t": 12.5}}
"""
from __future__ import annotations

import base64
from pathlib import Path
from typing import Iterator

import orjson

from extproc.core.request import TEXT_ERRORS, Request


class RecordError(ValueError):
    """A line that is not a usable request record; names the line."""


def read_records(path: str | Path) -> Iterator[dict]:
    """Every record of a file; the first bad line raises RecordError."""
    for _number, record in iter_records(path):
        if isinstance(record, RecordError):
            raise record
        yield record


def iter_records(path: str | Path) -> Iterator[tuple[int, dict | RecordError]]:
    """(line number, record or the error of that line): bad lines do not stop the rest."""
    with open(path, "rb") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                yield number, _parse(line, f"{path}:{number}")


def _parse(line: bytes, where: str) -> dict | RecordError:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return RecordError(f"{where}: not JSON: {exc}")
    if not isinstance(record, dict) or not isinstance(record.get("request"), dict):
        return RecordError(f"{where}: a record needs a 'request' object")
    return record


def request_from_record(record: dict) -> tuple[Request, bytes]:
    """The Request the sidecar would see for this record, and its body (not attached yet: the
    route's inspection limits apply when it is)."""
    spec = record["request"]
    headers, authority, pseudo = [], "", []
    for name, value in spec.get("headers", ()):
        name = str(name).lower()
        if name.startswith(":"):
            pseudo.append(name)
            if name == ":authority":
                authority = value
            continue
        if name == "host":  # Envoy turns Host into :authority
            authority = authority or value
            continue
        headers.append((name, str(value)))
    query = spec.get("query") or ""
    path = (spec.get("path") or "/") + (f"?{query}" if query else "")
    body = _body(spec)
    client = record.get("client") or {}
    request = Request(
        method=str(spec.get("method", "GET")).upper(),
        path=path,
        authority=authority,
        headers=tuple(headers),
        pseudo_order=tuple(pseudo),
        source_ip=str(client.get("ip", "")),
        request_id=str(record.get("id", "")),
        received_at=_seconds(client.get("t")),
        has_body=bool(body),
    )
    return request, body


def _seconds(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _body(spec: dict) -> bytes:
    if spec.get("body_b64"):
        return base64.b64decode(spec["body_b64"])
    body = spec.get("body") or ""
    return body.encode("utf-8", TEXT_ERRORS) if isinstance(body, str) else b""
