"""The held-out evaluation over several seeds: counts pooled, the spread across seeds shown."""
from __future__ import annotations

from extproc_lab.attack.evaluate import combine
from extproc_lab.attack.report import render


def _run(seed: int, detected: int, false_positives: int, auc: float) -> dict:
    return {
        "config": {"seed": seed, "epochs": 3},
        "folds": [
            {"held_out": "patt", "threshold_probability": 0.9 + seed / 100, "benign": 0, "false_positives": 0,
             "fp_rate": None,
             "families": {"rce": {"detected": detected, "total": 100, "rate": detected / 100, "payload_not_scored": 2}}},
            {"held_out": "traffic", "threshold_probability": 0.9, "benign": 1000, "false_positives": false_positives,
             "fp_rate": false_positives / 1000, "families": {}},
        ],
        "roc": {"auc": auc, "detection_at_fp_0.001": 0.2, "detection_at_fp_0.005": 0.8, "detection_at_fp_0.01": 0.9},
    }


def test_seeds_are_pooled_and_their_spread_is_reported():
    report = combine([_run(7, 48, 1, 0.97), _run(8, 32, 6, 0.96)])
    patt, traffic = report["folds"]
    assert patt["families"]["rce"] == {"detected": 80, "total": 200, "rate": 0.4, "rate_range": [0.32, 0.48],
                                       "payload_not_scored": 4}
    assert (traffic["false_positives"], traffic["fp_rate"], traffic["fp_rate_range"]) == (7, 0.0035, [0.001, 0.006])
    assert report["roc"]["auc"] == 0.965 and report["roc_range"]["auc"] == [0.96, 0.97]
    assert report["config"]["seed"] == [7, 8]
    table = render(report)
    assert "rce 80/200 (40.0%; 32-48%)" in table
    assert "| traffic | 2000 | 7 | 0.35% (0.10%-0.60%) |" in table
    assert "seeds 7, 8" in table


def test_one_seed_is_reported_as_it_was():
    run = _run(7, 48, 1, 0.97)
    assert combine([run]) is run
    table = render(run)
    assert "rce 48/100 (48.0%) [2 not scored]" in table
    assert "across seeds" not in table and "seeds 7" not in table


def test_each_held_out_source_and_family_gets_its_own_roc():
    from extproc_lab.attack.evaluate import per_group_roc

    held = [("payloads", "sqli", True, 0.5), ("payloads", "xss", True, 0.9), ("urls", "benign", False, 0.1),
            ("urls", "benign", False, 0.7), ("forms", "benign", False, 0.0)]
    groups = per_group_roc(held)
    # 0.5 beats two of the three benign margins, 0.9 all three
    assert groups["roc_by_source"]["payloads"]["attacks_vs_all_benign"]["auc"] == round(5 / 6, 5)
    assert groups["roc_by_source"]["payloads"]["benign_vs_all_attacks"] is None
    assert groups["roc_by_source"]["urls"]["benign_vs_all_attacks"]["auc"] == 0.75  # 0.7 beats one of two attacks
    assert groups["roc_by_family"]["sqli"]["auc"] == round(2 / 3, 5)
    assert groups["roc_by_family"]["xss"]["detection_at_fp_0.001"] == 1.0
    report = {**_run(7, 48, 1, 0.97), **groups}
    assert "| urls | benign | 2 | 0.750 |" in render(report)
    assert "| sqli | 1 | 0.667 |" in render(report)


def test_runs_over_different_folds_merge_into_the_report_of_one_run(tmp_path):
    import json

    import pytest

    from extproc_lab.attack.evaluate import main, roc_of

    def part(seed: int, source: str, held: list) -> dict:
        attack = source == "patt"
        fold = {"held_out": source, "threshold_probability": 0.9, "benign": 0 if attack else len(held),
                "false_positives": 0 if attack else sum(h[3] >= 0 for h in held),
                "fp_rate": None if attack else sum(h[3] >= 0 for h in held) / len(held),
                "families": {"rce": {"detected": sum(h[3] >= 0 for h in held), "total": len(held), "rate": 0.5,
                                     "payload_not_scored": 0}} if attack else {}}
        run = {"config": {"seed": seed, "epochs": 3}, "folds": [fold], **roc_of(held), "held": held}
        return {"data": {"sha256": "d" * 64}, "config": run["config"], "runs": [run]}

    attacks = [["patt", "rce", True, m] for m in (0.2, 0.1, -0.05, 0.3)]
    benign = [["traffic", "benign", False, m] for m in (-0.5, -0.2, 0.01, -0.3, -0.1)]
    paths = []
    for name, report in (("a", part(7, "patt", attacks)), ("b", part(7, "traffic", benign))):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(report))
    out = tmp_path / "merged.json"
    main(["--merge", *map(str, paths), "--json", str(out)])
    merged = json.loads(out.read_text())
    assert [f["held_out"] for f in merged["folds"]] == ["patt", "traffic"]
    assert merged["roc"] == roc_of(attacks + benign)["roc"]  # pooled as if one run had held out both
    assert merged["roc_by_source"]["patt"]["attacks_vs_all_benign"]["n"] == 4
    paths[1].write_text(json.dumps(part(7, "patt", attacks)))  # the same fold twice
    with pytest.raises(SystemExit, match="more than one"):
        main(["--merge", *map(str, paths)])
