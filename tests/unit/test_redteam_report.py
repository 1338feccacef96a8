"""Red-team summaries, baselines (a weakened policy fails `extproc redteam replay`), and reports
(JSON keys, a self-contained HTML file with its charts)."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from extproc.cli import main
from extproc_lab.redteam import baseline, mutate, report
from extproc_lab.redteam.replay import Outcome
from extproc_lab.redteam.results import summarize
from extproc.local.stack import DEMO_POLICY
from tests.support import SHARED_DATA
from extproc_lab.attack.payloads import benign_lookalikes

DATA = SHARED_DATA / "train"
DEMO = DEMO_POLICY.read_text()


def write_records(path: Path) -> Path:
    """Attacks under a few mutations plus benign look-alikes, as a JSONL corpus."""
    names = ("none", "url-encode", "html-entities", "json-nested", "charset-ibm037")
    records = list(mutate.mutation_records(("sqli", "xss", "lfi"), 4, seed=5, names=names))
    carriers = ("none", "form", "json-nested", "multipart-field")  # the attacks' shape: only the value differs
    records += [{"id": f"benign-{i}", "label": "benign", "family": "benign",
                 "request": mutate.mutated_request(value, mutate.BY_NAME[carriers[i % len(carriers)]])}
                for i, value in enumerate(benign_lookalikes(40, seed=5))]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_records(tmp_path_factory.mktemp("redteam") / "records.jsonl")


def policy_file(tmp_path: Path, text: str, name: str = "policy.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_run_against_its_own_baseline_passes_and_a_weakened_policy_fails(corpus, tmp_path, capsys):
    saved = tmp_path / "baseline.json"
    demo = policy_file(tmp_path, DEMO)
    assert main(["redteam", "replay", str(corpus), "--config", demo, "--save-baseline", str(saved), "--quiet"]) == 0
    assert main(["redteam", "replay", str(corpus), "--config", demo, "--baseline", str(saved), "--quiet"]) == 0
    assert "no regression" in capsys.readouterr().out

    lowered = policy_file(tmp_path, DEMO.replace("threshold: 20 ", "threshold: 2 "), "lowered.yaml")
    assert main(["redteam", "replay", str(corpus), "--config", lowered, "--baseline", str(saved), "--quiet"]) == 1
    assert "REGRESSION attacks stopped" in capsys.readouterr().out

    off = policy_file(tmp_path, DEMO.replace("      threshold: 20 ", "      mode: off\n      threshold: 20 "), "off.yaml")
    assert main(["redteam", "replay", str(corpus), "--config", off, "--baseline", str(saved), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION family sqli" in out and "REGRESSION mutation none" in out


def test_a_stricter_policy_that_blocks_benign_requests_is_a_regression(corpus, tmp_path, capsys):
    saved = tmp_path / "baseline.json"
    demo = policy_file(tmp_path, DEMO)
    main(["redteam", "replay", str(corpus), "--config", demo, "--save-baseline", str(saved), "--quiet"])
    paranoid = policy_file(tmp_path, DEMO.replace("threshold: 20 ", "threshold: 98 "), "paranoid.yaml")
    assert main(["redteam", "replay", str(corpus), "--config", paranoid, "--baseline", str(saved), "--quiet"]) == 1
    assert "REGRESSION benign blocked" in capsys.readouterr().out


def test_compare_tolerates_small_drops_and_notes_groups_only_one_side_has():
    before = summarize([_attack("a", "sqli", stopped=True) for _ in range(99)] + [_attack("b", "sqli", stopped=False)])
    after = summarize([_attack("a", "sqli", stopped=True) for _ in range(97)] + [_attack("b", "xss", stopped=False)]
                      + [_attack("c", "sqli", stopped=False) for _ in range(2)])
    regressions, notes = baseline.compare(before, after, baseline.Tolerances(detection=0.02))
    assert regressions == []
    assert notes == ["family xss only in the current run"]
    regressions, _ = baseline.compare(before, after, baseline.Tolerances(detection=0.001))
    assert regressions == ["attacks stopped: 99.0% -> 97.0%", "family sqli: 99.0% -> 98.0%"]


def test_latency_is_compared_only_with_a_tolerance():
    fast = summarize([_attack("a", "sqli", True, latency_us=100.0)])
    slow = summarize([_attack("a", "sqli", True, latency_us=300.0)])
    assert baseline.compare(fast, slow)[0] == []
    assert baseline.compare(fast, slow, baseline.Tolerances(latency=0.5))[0] == ["latency p99: 100 us -> 300 us"]


def test_slip_rate_counts_payloads_caught_plain_that_a_mutation_lets_through():
    outcomes = [
        _attack("p1-none", "sqli", True, mutation="none", base="p1"),
        _attack("p1-enc", "sqli", False, mutation="url-encode", base="p1"),
        _attack("p2-none", "sqli", True, mutation="none", base="p2"),
        _attack("p2-enc", "sqli", True, mutation="url-encode", base="p2"),
        _attack("p3-none", "sqli", False, mutation="none", base="p3"),  # missed plain: not a slip
        _attack("p3-enc", "sqli", False, mutation="url-encode", base="p3"),
    ]
    row = summarize(outcomes)["by_mutation"]["url-encode"]
    assert (row["caught_plain"], row["slipped"], row["slip_rate"], row["examples"]) == (2, 1, 0.5, ["p1-enc"])


def test_json_report_has_the_schema_keys(corpus, tmp_path):
    out = tmp_path / "report.json"
    assert main(["redteam", "replay", str(corpus), "--config", policy_file(tmp_path, DEMO), "--json", str(out),
                 "--quiet"]) == 0
    doc = json.loads(out.read_text())
    assert doc["schema"] == report.SCHEMA and doc["kind"] == "replay"
    assert set(doc["summary"]) >= {"total", "attacks", "benign", "by_family", "by_layer", "by_mutation",
                                   "latency_us", "scores", "layer_faults", "rejected_by_envoy", "errors"}
    assert set(doc["summary"]["latency_us"]) == {"p50", "p95", "p99", "max", "mean"}
    assert len(doc["rows"]) == doc["summary"]["total"]
    assert {"id", "label", "result", "latency_us"} <= set(doc["rows"][0])
    assert doc["summary"]["benign"]["total"] == 40 and doc["summary"]["attacks"]["total"] > 40


def test_html_report_is_self_contained_with_its_charts(corpus, tmp_path):
    out = tmp_path / "report.html"
    assert main(["redteam", "replay", str(corpus), "--config", policy_file(tmp_path, DEMO), "--html", str(out),
                 "--quiet"]) == 0
    page = out.read_text()
    for chart in ("detection-by-family", "slip-by-mutation", "score-distribution"):
        assert f"<svg id='{chart}'" in page
    assert "<script" not in page and "<link" not in page and " src=" not in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page
    assert "charset-ibm037" in page and page.rstrip().endswith("</html>")


def test_terminal_table_and_progress(capsys):
    summary = summarize([_attack("a", "sqli", True, mutation="none", base="a"), _benign("b", blocked=True)])
    report.print_replay(summary, "in-process")
    out = capsys.readouterr().out
    assert "attacks stopped: 1/1 (100.0%)" in out and "benign blocked: 1/1" in out and "sqli" in out
    stream = io.StringIO()
    progress = report.Progress("replay", stream)
    for done in range(1, 101):
        progress(done, 100)
    assert stream.getvalue().splitlines() == [f"replay: {n}/100" for n in (1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)]


def test_bad_input_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    assert main(["redteam", "replay", str(bad), "--quiet"]) == 2
    assert main(["redteam", "mutate", "--families", "nope", "--quiet"]) == 2
    assert "unknown family nope" in capsys.readouterr().err


@pytest.mark.skipif(not (DATA / "blns.jsonl").exists(), reason="labelled data not present")
def test_replay_of_labelled_data(tmp_path):
    out = tmp_path / "blns.json"
    assert main(["redteam", "replay", str(DATA / "blns.jsonl"), "--layers", "attack", "--json", str(out),
                 "--quiet"]) == 0
    summary = json.loads(out.read_text())["summary"]
    assert summary["attacks"]["total"] == 266 and summary["benign"]["total"] == 223
    assert summary["attacks"]["rate"] > 0.5 and summary["by_layer"].keys() == {"attack"}


def _attack(id_: str, family: str, stopped: bool, latency_us: float = 10.0, mutation: str = "", base: str = "") -> Outcome:
    return Outcome(id_, "attack", family, "blocked" if stopped else "allowed", latency_us=latency_us,
                   mutation=mutation, mutation_class="x" if mutation else "", base=base,
                   attack_score=5 if stopped else 90)


def _benign(id_: str, blocked: bool) -> Outcome:
    return Outcome(id_, "benign", "benign", "blocked" if blocked else "allowed", attack_score=50)
