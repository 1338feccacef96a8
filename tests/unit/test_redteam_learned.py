"""`extproc redteam learned`: learn from part of an application's traffic, measure on the rest and on
anomalies made from it. On the team's CSIC 2010 copy (when this checkout has ../shared), the
issue's bars: the document passes check-config, no layer faults, at most 0.5% of held-out normal
requests flagged."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from extproc import cli
from extproc.api_shield.shapes import STRICTNESS
from extproc.core.records import read_records
from extproc_lab.redteam import anomalies, learned
from tests.support import SHARED_DATA
from tests.support.form_traffic import shop_traffic

CSIC = SHARED_DATA / "train" / "csic2010-train.jsonl"


def test_the_split_keeps_a_filled_in_form_on_one_side_and_attacks_out_of_learning():
    traffic = shop_traffic(600)
    attack = {**traffic[0], "id": "recorded-attack", "label": "attack", "family": "sqli"}
    learn, held = learned.split(traffic + [attack], 0.3, seed=1)
    assert attack in held and attack not in learn
    held_ids = {r["id"] for r in held}
    sides: dict[str, list[bool]] = {}
    for record in traffic:
        text = record["request"]["query"] or record["request"]["body"]
        if text:
            sides.setdefault(text, []).append(record["id"] in held_ids)
    fillings = [s for s in sides.values() if len(s) == 2]  # one form filled in once, sent by GET and by POST
    assert len(fillings) > 100 and all(s[0] == s[1] for s in fillings)
    plain = [r for r in learn + held if not r["request"]["query"] and not r["request"]["body"]]
    assert {r["id"] in {h["id"] for h in held} for r in plain} == {True, False}  # plain pages on both sides
    assert 0.2 < len([r for r in held if r["label"] == "benign"]) / len(traffic) < 0.4


def test_anomalies_change_one_thing_of_a_real_request_and_are_the_same_for_a_seed():
    normal = shop_traffic(300)
    made = anomalies.generate(normal, per_family=2, seed=4)
    assert made == anomalies.generate(normal, per_family=2, seed=4)
    kinds = Counter(r["kind"] for r in made)
    assert set(kinds) == {"payload", "appended", "static", "tampering", "method"}
    paths = {r["request"]["path"] for r in normal}
    for record in made:
        assert record["label"] == "attack"
        if record["kind"] == "method":
            assert record["request"]["method"] in anomalies.METHODS
        elif record["kind"] != "static":
            assert record["request"]["path"] in paths  # the application's own pages and parameters
            assert record["parameter"] or record["family"] == "extra"
        else:
            assert record["request"]["path"] not in paths


def test_the_report_of_a_small_shop(tmp_path, capsys):
    records = tmp_path / "shop.jsonl"
    records.write_text("".join(json.dumps(r) + "\n" for r in shop_traffic(1500)), encoding="utf-8")
    report = tmp_path / "report.json"
    spec = tmp_path / "learned.yaml"
    assert cli.main(["redteam", "learned", str(records), "--per-family", "3", "--json", str(report),
                     "--spec-out", str(spec)]) == 0
    printed = capsys.readouterr().out
    assert "held-out normal requests flagged" in printed and "payload/sqli" in printed
    summary = json.loads(report.read_text())["summary"]
    assert summary["normal"]["total"] > 250 and summary["normal"]["rate"] <= 0.01
    rows = summary["anomalies"]["by_kind"]
    assert rows["payload/*"]["rate"] >= 0.9 and rows["static/*"]["rate"] >= 0.9
    assert rows["tampering/missing"]["api_shield_alone"] == 1.0 and rows["tampering/missing"]["attack_alone"] == 0.0
    assert summary["layer_faults"] == {"both": {}, "api_shield": {}, "attack": {}}
    assert spec.exists()


@pytest.mark.skipif(not CSIC.exists(), reason="needs the team's data in ../shared")
def test_csic_2010_learned_document_holds_the_bars_on_held_out_traffic(tmp_path):
    records = list(read_records(CSIC))
    summary = learned.evaluate(records, STRICTNESS["balanced"], tmp_path, share=0.2, seed=1, per_family=10)
    policy = tmp_path / "policy.yaml"
    policy.write_text(learned.policy_text(tmp_path / "learned-openapi.yaml", ("api_shield", "attack")))
    assert cli.main(["check-config", str(policy)]) == 0
    assert summary["layer_faults"] == {"both": {}, "api_shield": {}, "attack": {}}
    assert summary["normal"]["total"] > 6000 and summary["normal"]["rate"] <= 0.005
    rows = summary["anomalies"]["by_kind"]
    assert rows["*/*"]["rate"] >= 0.6
    assert rows["*/*"]["api_shield_alone"] > rows["*/*"]["attack_alone"]  # what signatures cannot catch
