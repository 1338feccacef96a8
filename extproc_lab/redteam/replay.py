"""Replay request records in-process (the serving pipeline, no network) or through a running
Envoy + sidecar (HTTP to a base URL, several requests at a time), one Outcome per record.

In-process, the layer that denied and the attack score come from the Decision. Through Envoy
the client only sees a status and a request id (the sidecar never tells clients why); pass the
sidecar's audit log (``extproc serve --audit-log FILE``) and denials are attributed to their layer
from it by request id.
"""
from __future__ import annotations

import http.client
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Protocol
from urllib.parse import urlsplit

from extproc.core.transaction import Transaction
from extproc.core.policy import Policy
from extproc.core.records import request_from_record
from extproc.core.verdict import Decision
from extproc.core.verdict import Outcome as LayerOutcome

# What the client sees of each outcome.
ALLOWED, BLOCKED, REJECTED, ERROR = "allowed", "blocked", "rejected", "error"
STOPPED = (BLOCKED, REJECTED)  # the request did not reach the app


@dataclass
class Outcome:
    id: str
    label: str
    family: str
    result: str  # allowed | blocked (by the sidecar) | rejected (answered by Envoy itself) | error
    status: int = 0
    layer: str = ""  # the layer that denied, when known
    attack_score: int | None = None
    latency_us: float = 0.0
    mutation: str = ""
    mutation_class: str = ""
    base: str = ""  # the payload a mutation was applied to
    request_id: str = ""
    error: str = ""
    faults: tuple[str, ...] = ()  # layers that raised or were skipped (their on_error decided)

    @property
    def stopped(self) -> bool:
        return self.result in STOPPED

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in ("", None, ())}


def outcome_for(record: dict, result: str, **fields) -> Outcome:
    return Outcome(id=str(record.get("id", "")), label=str(record.get("label", "")),
                   family=str(record.get("family", "")), result=result,
                   mutation=str(record.get("mutation", "")), mutation_class=str(record.get("mutation_class", "")),
                   base=str(record.get("base", "")), **fields)


class Sender(Protocol):
    def send(self, record: dict) -> Outcome: ...


def _frozen_clock() -> int:
    return 0


class InProcess:
    """The pipeline of a policy, as `extproc score` runs it; latency is the transaction's time.

    The transaction's clock stands still, so no layer is skipped for a spent deadline: a replay
    judges verdicts, and the same records and policy give the same result on a busy CI machine."""

    concurrency = 1  # per-client state (the bot layer) is built in record order

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def send(self, record: dict) -> Outcome:
        request, body = request_from_record(record)
        start = time.perf_counter()
        transaction = Transaction(self.policy, request, clock=_frozen_clock)
        decision = transaction.on_headers()
        if decision is None:
            decision = transaction.on_body(body)
        elapsed_us = (time.perf_counter() - start) * 1e6
        return outcome_for(record, ALLOWED if decision.allowed else BLOCKED, status=decision.status,
                           layer=decision.denied_by, attack_score=attack_score(decision), latency_us=elapsed_us,
                           request_id=decision.request_id, faults=faults(decision))


def attack_score(decision: Decision) -> int | None:
    for result in decision.results:
        if "attack" in result.verdict.scores:
            return result.verdict.scores["attack"]
    return None


def faults(decision: Decision) -> tuple[str, ...]:
    return tuple(r.verdict.layer for r in decision.results if r.outcome in (LayerOutcome.ERROR, LayerOutcome.SKIPPED))


class Remote:
    """HTTP/1.1 to a base URL (Envoy's listener); one connection per request, nothing shared."""

    def __init__(self, base_url: str, timeout: float = 10.0, concurrency: int = 4) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"--target must be http://HOST:PORT, not {base_url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.timeout = timeout
        self.concurrency = concurrency

    def send(self, record: dict) -> Outcome:
        start = time.perf_counter()
        try:
            status, headers, body = self._exchange(record["request"], request_from_record(record)[1])
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return outcome_for(record, ERROR, error=f"{type(exc).__name__}: {exc}"[:200],
                               latency_us=(time.perf_counter() - start) * 1e6)
        latency_us = (time.perf_counter() - start) * 1e6
        # Envoy's router adds this header to what an upstream answered, never to its own replies.
        upstream_answered = "x-envoy-upstream-service-time" in headers
        return outcome_for(record, classify(status, body, upstream_answered), status=status, latency_us=latency_us,
                           request_id=headers.get("x-request-id", ""))

    def _exchange(self, spec: dict, body: bytes) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            query = spec.get("query") or ""
            target = (spec.get("path") or "/") + (f"?{query}" if query else "")
            conn.putrequest(str(spec.get("method", "GET")), target, skip_host=True, skip_accept_encoding=True)
            for name, value in spec.get("headers", ()):
                if name.lower() not in ("content-length", "transfer-encoding"):
                    conn.putheader(name, value)
            _send_body(conn, body, spec.get("chunk_size"))
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()


def _send_body(conn: http.client.HTTPConnection, body: bytes, chunk_size: int | None) -> None:
    if chunk_size:
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for offset in range(0, len(body), chunk_size):
            piece = body[offset:offset + chunk_size]
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        conn.send(b"0\r\n\r\n")
        return
    if body:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    if body:
        conn.send(body)


def classify(status: int, body: bytes, upstream_answered: bool = True) -> str:
    """The sidecar's denials carry a JSON body with a request id (503 too, when a failing layer's
    on_error is closed). Other 4xx, and redirects no upstream produced (Envoy's path normalisation
    answers 307 itself), are Envoy's own; other 5xx are errors (a timeout, a dead sidecar)."""
    if status < 400:
        return ALLOWED if upstream_answered or status < 300 else REJECTED
    try:
        if "request_id" in json.loads(body):
            return BLOCKED
    except (ValueError, TypeError):
        pass
    return ERROR if status >= 500 else REJECTED


def replay(records: list[dict], sender: Sender, progress: Callable[[int, int], None] | None = None) -> list[Outcome]:
    """Every record through the sender, in order; progress(done, total) after each."""
    concurrency = getattr(sender, "concurrency", 1)
    if concurrency <= 1:
        return _collect(map(sender.send, records), len(records), progress)
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="redteam") as pool:
        return _collect(pool.map(sender.send, records), len(records), progress)


def _collect(results: Iterable[Outcome], total: int, progress) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for outcome in results:
        outcomes.append(outcome)
        if progress is not None:
            progress(len(outcomes), total)
    return outcomes


def attribute_from_audit(outcomes: list[Outcome], audit_path: Path, wait_s: float = 3.0) -> int:
    """Fill the layer and attack score of sidecar denials from its audit log; returns how many.

    The sidecar writes audit lines off the request path, so the last ones may land a moment after
    their responses: read again until every denial is found or wait_s has passed."""
    wanted = {o.request_id: o for o in outcomes if o.result == BLOCKED and o.request_id}
    deadline, found = time.monotonic() + wait_s, {}
    while True:
        found = _audit_records(audit_path, set(wanted))
        if len(found) == len(wanted) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for request_id, record in found.items():
        outcome = wanted[request_id]
        outcome.layer = record.get("denied_by") or ""
        scores = [layer.get("scores", {}).get("attack") for layer in record.get("layers", ())]
        outcome.attack_score = next((s for s in scores if s is not None), None)
    return len(found)


def _audit_records(path: Path, ids: set[str]) -> dict[str, dict]:
    found = {}
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return found
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line being written
        if record.get("request_id") in ids:
            found[record["request_id"]] = record
    return found
