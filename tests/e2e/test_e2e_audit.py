"""Audit records end to end: SIGTERM the sidecar under traffic; every request it denied must be in
the audit file (queued records are written on drain), and nothing it did not deny."""
from __future__ import annotations

import threading

import orjson
from tests.support.e2e_support import BLOCKING_POLICY, get, marker, started_stack, wait_for


class Traffic(threading.Thread):
    """Denied and allowed requests back to back; remembers the request id of every 403."""

    def __init__(self, port: int) -> None:
        super().__init__(name="audit-traffic", daemon=True)
        self.port = port
        self.stopping = threading.Event()
        self.denied: dict[str, str] = {}  # request id -> path
        self.allowed = 0

    def run(self) -> None:
        while not self.stopping.is_set():
            path = f"/blocked/{marker()}" if len(self.denied) <= self.allowed else f"/fine/{marker()}"
            try:
                resp = get(self.port, path, timeout=5)
            except OSError:
                continue
            if resp.status == 403:
                self.denied[resp.json()["request_id"]] = path
            elif resp.status == 200:
                self.allowed += 1

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


def test_every_denied_request_is_audited_even_when_sigterm_arrives_under_traffic(tmp_path):
    audit = tmp_path / "audit.jsonl"
    args = ["--audit-log", str(audit), "--drain-seconds", "2"]
    with started_stack("audit stack", BLOCKING_POLICY, tmp_path, sidecar_args=args) as stack:
        traffic = Traffic(stack.listen_port)
        traffic.start()
        try:
            wait_for(lambda: len(traffic.denied) >= 50, 30, what="50 denied requests")
            assert stack.sidecar.stop() == 0  # SIGTERM while requests are in flight
        finally:
            traffic.stop()

    records = [orjson.loads(line) for line in audit.read_text().splitlines()]
    audited = {record["request_id"]: record for record in records}
    missing = set(traffic.denied) - set(audited)
    assert not missing, f"{len(missing)} of {len(traffic.denied)} denied requests have no audit record"
    assert all(record["decision"] == "deny" for record in records)  # allows are not sampled by default
    for request_id, path in traffic.denied.items():
        record = audited[request_id]
        assert record["path"] == path and record["denied_by"] == "rules" and record["status"] == 403
