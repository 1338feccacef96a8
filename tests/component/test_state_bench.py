"""`extproc bench --state-only` on a trimmed run: both backends measured on the same requests, the
Redis one through a redis-server the run starts and stops. Figures are printed, never asserted."""
from __future__ import annotations

import argparse
import json

from extproc_lab.bench import state
from tests.support.redis_server import require_redis


def test_the_state_bench_measures_both_backends_on_every_request(tmp_path, capsys):
    require_redis()
    out = tmp_path / "state.json"
    parser = argparse.ArgumentParser()
    state.add_arguments(parser)
    parser.add_argument("--json")
    args = parser.parse_args(["--state-only", "--state-requests", "200", "--json", str(out)])
    assert state.run(args) == 0
    results = json.loads(out.read_text())
    assert len(results) == 2
    for rows in results.values():
        assert rows["memory"]["n"] == rows["redis"]["n"] == 200  # measured after a quarter as many of warm-up
        assert "p50_us" in rows["added by redis"]
    printed = capsys.readouterr().out
    assert printed.count("added p50") == 2 and "store round trips" in printed
