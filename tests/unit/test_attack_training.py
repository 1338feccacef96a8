"""Training: reproducible, and the exported ONNX graph computes what training calibrated.

The trainer is NumPy (extproc_lab/attack/numpy_net.py); onnx comes with the dev extra. Uses small
generated data, not ../shared: each training here takes a few seconds.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("onnx")

from extproc.attack.model import AttackModel  # noqa: E402
from extproc_lab.attack.placement import attack_records, benign_value_records  # noqa: E402
from extproc_lab.attack.train import TrainConfig, fit, predict, save, split_validation  # noqa: E402
from extproc_lab.attack import payloads  # noqa: E402
from extproc_lab.attack.dataset import collect  # noqa: E402


@pytest.fixture(scope="module")
def values():
    attacks = attack_records(payloads.generate_all(60, seed=1), seed=1)
    benign = benign_value_records(payloads.benign_lookalikes(900, seed=2), seed=2)
    return collect([*attacks, *benign])


def train_once(values, tmp_path, name, **options):
    config = replace(TrainConfig(), **{"epochs": 1, "target_fp": 0.05, **options})
    train, validation = split_validation(values, 0.2, config.seed)
    trained = fit(train, validation, config, log=lambda _m: None)
    out = tmp_path / name / "attack.onnx"
    save(trained, out, {"files": [], "generated": "test", "sha256": "0" * 64})
    return trained, out


def test_same_data_and_seed_give_the_same_model(values, tmp_path):
    trained_a, first = train_once(values, tmp_path, "a")
    trained_b, second = train_once(values, tmp_path, "b")
    for name, array in trained_a.weights.items():
        assert array.tobytes() == trained_b.weights[name].tobytes(), name
    assert first.read_bytes() == second.read_bytes()
    assert first.with_suffix(".json").read_text() == second.with_suffix(".json").read_text()
    assert "# Attack score model" in first.with_suffix(".md").read_text()


def test_training_lowers_the_loss_and_separates_the_classes(values, tmp_path):
    trained, _ = train_once(values, tmp_path, "loss", epochs=8, batch_size=32)  # ~1.5 s
    losses = [entry["loss"] for entry in trained.history]
    assert all(later < earlier for earlier, later in zip(losses, losses[1:]))
    attack = [f for r in values if r.is_attack for f, hit in zip(r.framed, r.value_is_attack) if hit]
    benign = [f for r in values if not r.is_attack for f in r.framed]
    spec = trained.config.spec
    attack_p, benign_p = predict(trained.weights, attack, spec)[:, 0], predict(trained.weights, benign, spec)[:, 0]
    assert np.median(attack_p) > 0.9 and np.median(benign_p) < 0.2
    assert (attack_p[:, None] > benign_p[None, :]).mean() > 0.95  # ROC AUC over the values


def test_another_seed_gives_another_model(values, tmp_path):
    first, _ = train_once(values, tmp_path, "s7")
    other, _ = train_once(values, tmp_path, "s8", seed=8)
    assert first.weights["table"].tobytes() != other.weights["table"].tobytes()


def test_ngram_dropout_is_reproducible_and_changes_the_model(values, tmp_path):
    _, plain = train_once(values, tmp_path, "plain")
    _, first = train_once(values, tmp_path, "d1", ngram_dropout=0.3)
    _, second = train_once(values, tmp_path, "d2", ngram_dropout=0.3)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != plain.read_bytes()


def test_onnx_graph_matches_the_training_time_function(values, tmp_path):
    trained, path = train_once(values, tmp_path, "c")
    model = AttackModel(path, engine="onnxruntime")
    framed = [f for record in values[:200] for f in record.framed]
    expected = predict(trained.weights, framed, trained.config.spec)
    assert np.allclose(model.probabilities(framed), expected, atol=1e-5)
    # The native kernel runs a freshly trained graph too. Its per-value sums are exact where the
    # graph's (and predict's) are differences of one running sum over the batch: a looser bound.
    native = AttackModel(path, engine="native")
    assert np.allclose(native.probabilities(framed), expected, atol=1e-4)
    # The calibration lands the operating point on the default threshold score.
    at_threshold = model.scores([trained.threshold_probability])[0]
    assert at_threshold == 20


def test_evaluate_only_holds_out_the_named_sources(values):
    from extproc_lab.attack.evaluate import evaluate

    config = replace(TrainConfig(), epochs=1, target_fp=0.05)
    report = evaluate(values, ([], []), config, log=lambda _m: None, only=frozenset({"lookalikes"}))
    assert [fold["held_out"] for fold in report["folds"]] == ["lookalikes"]


def test_lookalikes_include_addresses_and_urls_of_unknown_domains():
    # Proxies forward IPv6 clients and people link any domain: neither is an attack by itself.
    values = payloads.benign_lookalikes(3000, seed=3)
    assert any("::" in v or v.count(":") >= 7 for v in values)
    assert any(v.startswith(("http://", "https://")) and ".example" not in v for v in values)


def test_a_training_record_without_a_label_is_refused_with_its_file_and_line(tmp_path):
    from extproc.core.records import RecordError
    from extproc_lab.attack.train import load_records

    good = '{"id": "a", "label": "benign", "request": {"method": "GET", "path": "/"}}\n'
    for bad in ('{"id": "b", "request": {"method": "GET", "path": "/?q=1"}}\n',
                '{"id": "b", "label": "attak", "request": {"method": "GET", "path": "/?q=1"}}\n'):
        path = tmp_path / "mine.jsonl"
        path.write_text(good + bad)
        with pytest.raises(RecordError, match=r"mine\.jsonl:2: .*label"):
            load_records([tmp_path])


def test_the_card_takes_held_out_figures_only_from_an_evaluation_of_the_same_data(tmp_path):
    import json

    from extproc_lab.attack.train import main

    data = tmp_path / "mine.jsonl"
    data.write_text('{"id": "a", "label": "benign", "request": {"method": "GET", "path": "/"}}\n')
    other = tmp_path / "shipped-eval.json"  # e.g. the shipped model's report: another digest
    other.write_text(json.dumps({"data": {"sha256": "f" * 64}, "folds": [], "roc": {}, "config": {}}))
    with pytest.raises(SystemExit, match="not run on the training data of this model"):
        main([str(data), "--metrics", str(other), "--out", str(tmp_path / "m.onnx"), "--generated", "0"])
    assert not (tmp_path / "m.onnx").exists()


def test_an_evaluation_is_attached_to_a_trained_model_only_when_measured_on_its_data(values, tmp_path):
    import json

    from extproc_lab.attack.card import attach

    _, model = train_once(values, tmp_path, "card")
    data = json.loads(model.with_suffix(".json").read_text())["training"]["data"]
    report = {"data": data, "config": {"epochs": 1, "averaged_seeds": 1}, "roc": {},
              "folds": [{"held_out": "grammar", "threshold_probability": 0.9, "benign": 10, "false_positives": 1,
                         "fp_rate": 0.1, "families": {}}]}
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**report, "data": {"sha256": "f" * 64}}))
    with pytest.raises(SystemExit, match="not run on the training data"):
        attach(model, other)
    assert "## Quality" not in model.with_suffix(".md").read_text()
    same = tmp_path / "same.json"
    same.write_text(json.dumps(report))
    attach(model, same)
    assert json.loads(model.with_suffix(".json").read_text())["metrics"]["folds"][0]["held_out"] == "grammar"
    assert "## Quality: whole sources held out" in model.with_suffix(".md").read_text()


def test_payloads_are_also_learnt_as_paths_and_exploit_paths_are_not_learnt():
    from extproc.attack.model import plain_path
    from extproc_lab.attack.dataset import record_values

    def record(family, query, value=None, path="/index.php"):
        expect = {"value": value} if value else {}
        return {"id": "x", "label": "attack", "family": family, "expect": expect,
                "request": {"method": "GET", "path": path, "query": query, "headers": [["Host", "h"]]}}

    lfi = record_values(record("lfi", "file=..%2F..%2Fetc%2Fshadow", "../../etc/shadow"))
    assert lfi.path_copies == [b"\x02@p/../../etc/shadow\x03"] and all(plain_path(c) for c in lfi.path_copies)
    # payloads with metacharacters: one in four, chosen by a hash of the text (so the same each run)
    sqli = [record_values(record("sqli", f"id={i}%27%20or%201=1--", f"{i}' or 1=1--")) for i in range(200)]
    assert 20 < sum(bool(v.path_copies) for v in sqli) < 80
    assert [v.path_copies for v in sqli] == [record_values(record("sqli", f"id={i}%27%20or%201=1--", f"{i}' or 1=1--")).path_copies for i in range(200)]
    # an inclusion probe's script name is a page of real sites too: not copied
    assert record_values(record("lfi", "x=%2Fincludes%2Fconfig.php", "/includes/config.php")).path_copies == []
    # A whole exploit request (no expect.value): its query is the attack, its script path is not learnt.
    exploit = record_values(record("rce", "cmd=%3Bcat%20/etc/passwd", path="/cgi-bin/admin.cgi"))
    by_location = dict(zip(exploit.locations, zip(exploit.value_is_attack, exploit.value_trains)))
    assert by_location["path"][1] is False and by_location["query:cmd"] == (True, True)


def test_averaged_seeds_are_one_graph_whose_logits_are_the_members_mean(values, tmp_path):
    from extproc_lab.attack.numpy_net import averaged, init_weights

    members = [init_weights(33, 4, 6, 3, seed) for seed in (1, 2, 3)]
    merged = averaged(members)
    assert merged["table"].shape == (33, 12) and merged["w1"].shape == (12, 18)
    rng = np.random.default_rng(0)
    bags = rng.standard_normal((5, 33)).astype(np.float32)  # any mix of rows

    def logits(w):
        return np.maximum(bags @ w["table"] @ w["w1"] + w["b1"], 0) @ w["w2"] + w["b2"]

    assert np.allclose(logits(merged), np.mean([logits(m) for m in members], axis=0), atol=1e-5)
    # Trained end to end: served as any model (both engines), and not the single seed's model.
    single, _ = train_once(values, tmp_path, "one")
    trained, out = train_once(values, tmp_path, "two", averaged_seeds=2)
    assert trained.weights["table"].shape[1] == 2 * single.weights["table"].shape[1]
    assert np.array_equal(trained.weights["table"][:, :16], single.weights["table"])
    framed = [f for record in values[:200] for f in record.framed]
    served = AttackModel(out, engine="onnxruntime").raw_probabilities(framed)
    assert np.abs(served - predict(trained.weights, framed, trained.config.spec)).max() <= 1e-4


def test_training_never_sees_the_held_out_half_of_the_real_sites():
    from extproc_lab.attack.dataset import host_half
    from extproc_lab.attack.train import without_held_out_hosts

    def record(source, host):
        return {"source": source, "label": "benign", "request": {"headers": [["host", host]]}}

    hosts = [f"site{i}.example" for i in range(40)]
    urls = [record("urls", h) for h in hosts]
    kept = without_held_out_hosts(urls + [record("csic", h) for h in hosts], TrainConfig())
    kept_urls = [r for r in kept if r["source"] == "urls"]
    assert 0 < len(kept_urls) < len(urls) and all(host_half(r) == 0 for r in kept_urls)
    assert sum(r["source"] == "csic" for r in kept) == len(hosts)  # other sources keep every host
