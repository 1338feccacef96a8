"""`extproc bench`'s end-to-end pieces on a trimmed run: a real Envoy in front of the do-nothing
server. No timed asserts."""
from __future__ import annotations

import json

import pytest

from extproc.cli import main
from extproc_lab.bench import endtoend, load, streaming, workload


@pytest.mark.skipif(not load.wrk_available(), reason="wrk not installed")
def test_trimmed_end_to_end_through_envoy_and_the_do_nothing_server(tmp_path):
    payloads = [workload.http_request(sample) for sample in workload.mix(20)]
    setup = endtoend.Setup("envoy + do-nothing server", "noop")
    with endtoend.running(setup, workload.write_policy(tmp_path), tmp_path) as (envoy, pids, _ports):
        fixed = endtoend.fixed_rate(envoy, payloads, rate=40, seconds=0.5)
        saturated = load.saturate(envoy.listen_port, payloads, seconds=1, connections=2)
        assert pids and endtoend.memory(pids[0])["rss_mb"] > 0
    assert fixed["sent"] == 20 and fixed["statuses"] == {200: 20}  # do-nothing: every request passes
    assert fixed["latency"]["n"] == 20
    assert saturated["requests"] > 0 and saturated["socket_errors"] == 0


def test_cpu_meter_splits_a_run_between_envoy_the_server_and_the_machine(tmp_path):
    payloads = [workload.http_request(sample) for sample in workload.mix(60)]
    setup = endtoend.Setup("envoy + do-nothing server", "noop")
    with endtoend.running(setup, workload.write_policy(tmp_path), tmp_path) as (envoy, pids, _ports):
        meter = endtoend.CpuMeter(envoy.pid, pids)
        fixed = endtoend.fixed_rate(envoy, payloads, rate=200, seconds=0.3)
        cpu = meter.report(fixed["sent"])
    assert cpu["envoy_cpu_us_per_request"] > 0 and cpu["server_cpu_us_per_request"] > 0
    assert len(cpu["server_cores_per_process"]) == len(pids)
    # The machine was busy at least as long as the two processes it measured (rounding aside).
    assert cpu["machine_cores_busy"] + 0.05 >= cpu["envoy_cores"] + sum(cpu["server_cores_per_process"])
    assert cpu["all_cpu_us_per_request"] >= cpu["envoy_cpu_us_per_request"] + cpu["server_cpu_us_per_request"] - 1


def test_streaming_scenario_reads_every_event_of_every_answer_beside_envoy_alone(tmp_path):
    out = tmp_path / "bench.json"
    assert main(["bench", "--streaming-only", "--streams", "3", "--stream-events", "20", "--event-rate", "100",
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())["streaming"]
    assert list(result["setups"]) == [setup.name for setup in streaming.SETUPS]
    for row in result["setups"].values():
        assert row["statuses"] == {"200": 3} and row["completed"] == 3 and row["cut"] == row["failed"] == 0
        assert row["events"] == row["latency"]["n"] == 3 * 20
    assert set(result["added_over_envoy_alone"]) == {setup.name for setup in streaming.SETUPS[1:]}
    assert set(streaming.bars(result)) == set(json.loads(out.read_text())["bars"])
