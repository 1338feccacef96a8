"""`extproc bench`: the JSON it writes and its in-process pieces (tests/e2e/test_e2e_bench.py runs the
end-to-end pieces). No timed asserts."""
from __future__ import annotations

import json

from extproc.cli import main
from extproc_lab.bench import load, workload

WRK_OUTPUT = """Running 3s test @ http://127.0.0.1:1/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    12.10ms    3.00ms  40.00ms   80.00%
  Latency Distribution
     50%  850.00us
     75%    9.00ms
     90%   15.20ms
     99%    1.20s
  4000 requests in 3.00s, 1.00MB read
  Non-2xx or 3xx responses: 120
Requests/sec:   1333.33
"""


def test_quick_in_process_run_writes_every_part_of_the_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--in-process-only", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert set(results["in_process"]) == {"baseline (no layers)", "bench policy (all layers)"}
    measured = results["in_process"]["bench policy (all layers)"]
    for part in ("total", "total_up_to_4kb"):
        assert set(measured[part]) == {"n", "p50_us", "p90_us", "p99_us", "mean_us"}
    assert set(measured["by_kind"]) == {kind for kind, _share in workload.MIX}
    assert {"access", "rules", "bot", "attack", "mcp"} <= set(measured["layers"])
    assert sum(measured["outcomes"].values()) == measured["requests"]
    assert set(results["bars"]) == {"in_process_p50_us <= 250", "in_process_p99_us <= 1000"}
    assert all(isinstance(bar["met"], bool) for bar in results["bars"].values())
    assert "layer mcp" in capsys.readouterr().out


def test_the_mix_is_mostly_allowed_and_its_attacks_denied(tmp_path):
    from extproc_lab.bench import inprocess
    from extproc.config.compile import load_policy

    policy = load_policy(workload.write_policy(tmp_path))
    samples = workload.mix(400)
    outcomes = inprocess.measure(policy, samples, 100)["outcomes"]
    assert outcomes["allow"] >= 0.8 * 300, outcomes  # a bench that mostly denies would measure the cheap path
    assert outcomes.get("deny by attack", 0) > 0


def test_http_requests_carry_the_simulated_client_and_the_body():
    sample = next(s for s in workload.mix(50) if s.body)
    raw = workload.http_request(sample)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert body == sample.body
    assert f"x-forwarded-for: {sample.client_ip}".encode() in head
    assert f"content-length: {len(sample.body)}".encode() in head


def test_wrk_output_is_parsed_with_units():
    parsed = load.parse_wrk(WRK_OUTPUT)
    assert parsed["requests_per_s"] == 1333.33
    assert parsed["requests"] == 4000 and parsed["non_2xx"] == 120
    assert parsed["latency"] == {"p50_us": 850.0, "p90_us": 15200.0, "p99_us": 1200000.0}


# -- the streaming scenario's client (issue 22) ---------------------------------------------------


class FakeTransport:
    def __init__(self) -> None:
        self.written, self.closed = b"", False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True


def answer(events: int, *, done: bool = True) -> bytes:
    from extproc_lab.bench.sse_upstream import HEAD, USAGE, chunk, content_event

    body = b"".join(chunk(content_event(1)) for _ in range(events))
    if done:
        body += chunk(USAGE % (events, events)) + chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"
    return HEAD + body


def read(data: bytes, step: int):
    import asyncio

    from extproc_lab.bench.sse_client import StreamReader, Totals

    loop = asyncio.new_event_loop()
    try:
        totals, done = Totals(), loop.create_future()
        reader = StreamReader(b"POST / HTTP/1.1\r\n\r\n", totals, done)
        transport = FakeTransport()
        reader.connection_made(transport)
        for at in range(0, len(data), step):
            if not transport.closed:
                reader.data_received(data[at:at + step])
        reader.connection_lost(None)
        return totals, transport
    finally:
        loop.close()


def test_the_streaming_client_reads_every_event_however_the_bytes_are_cut():
    data = answer(5)
    for step in (1, 7, 64, len(data)):
        totals, transport = read(data, step)
        assert transport.written.startswith(b"POST / HTTP/1.1") and transport.closed
        assert (totals.completed, totals.cut, totals.statuses) == (1, 0, {200: 1})
        assert len(totals.latencies_us) == len(totals.lateness_us) == 5


def test_an_answer_ended_before_done_counts_as_cut_and_a_504_as_a_504():
    totals, _ = read(answer(3, done=False), 16)
    assert (totals.completed, totals.cut, len(totals.latencies_us)) == (0, 1, 3)
    totals, _ = read(b"HTTP/1.1 504 Gateway Timeout\r\ncontent-length: 0\r\n\r\n", 100)
    assert (totals.completed, totals.cut, totals.statuses) == (0, 0, {504: 1})


def test_every_bench_option_has_its_own_destination():
    # `--prompt-requests` once shared its destination with the in-process `--requests` (20,000),
    # so `extproc bench --large-prompt-only` sent 20,000 1 MB prompts per setup instead of 20.
    import argparse

    from extproc_lab.bench import suite

    parser = argparse.ArgumentParser()
    suite.add_arguments(parser)
    dests = [action.dest for action in parser._actions if action.option_strings]
    assert len(dests) == len(set(dests)), sorted(d for d in dests if dests.count(d) > 1)
    args = parser.parse_args(["--large-prompt-only"])
    assert (args.prompt_requests, args.prompt_size, args.requests) == (20, 1_000_000, 20000)
