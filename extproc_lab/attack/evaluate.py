"""Evaluate the attack model with whole sources held out: train without a source, test on it.

    python -m extproc_lab.attack.evaluate ../shared/data/train [--generated 20000] [--json out.json]

For every source (each file of the training data, and the generated traffic, whose templates are
split in two halves so the test half uses templates never seen in training): train on the
others, set the threshold on a validation split of the training sources, then report on the
held-out source: detection per attack family and false positives on its benign requests at the
default threshold, and a ROC summary over all held-out predictions.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from extproc_lab.attack.dataset import RecordValues, collect
from extproc_lab.attack.report import render
from extproc_lab.attack.train import (
    TrainConfig, add_model_options, benign_traffic, config_from, fit, load_records, record_maxima,
    split_validation, synthetic_values, training_data_digest,
)

def generated_halves(count: int, seed: int) -> tuple[list[dict], list[dict]]:
    """Generated benign traffic from two disjoint halves of the templates."""
    if count <= 0:
        return [], []
    from extproc_lab.attack import datagen

    templates = sorted(datagen.BENIGN_TEMPLATES)
    first, second = templates[0::2], templates[1::2]
    return (list(datagen.benign_records(count // 2, seed, first)),
            list(datagen.benign_records(count // 2, seed + 1, second)))


def fold_report(name: str, test: list[RecordValues], maxima: np.ndarray, threshold: float) -> dict:
    flagged = maxima >= threshold
    families: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # detected, total, payload not scored
    benign_total = benign_flagged = 0
    for record, hit in zip(test, flagged):
        if record.is_attack:
            entry = families[record.family]
            entry[0] += int(hit)
            entry[1] += 1
            entry[2] += int(not record.payload_found)
        else:
            benign_total += 1
            benign_flagged += int(hit)
    return {
        "held_out": name,
        "threshold_probability": round(threshold, 4),
        "benign": benign_total,
        "false_positives": benign_flagged,
        "fp_rate": round(benign_flagged / benign_total, 5) if benign_total else None,
        "families": {
            family: {"detected": d, "total": t, "rate": round(d / t, 4), "payload_not_scored": u}
            for family, (d, t, u) in sorted(families.items())
        },
    }


def roc_summary(labels: np.ndarray, scores: np.ndarray) -> dict:
    """AUC and detection at fixed false-positive rates, pooled over the held-out folds.

    Ties count honestly: a cut flags every request scoring at or above it, so saturated scores
    shared by benign and attack requests cannot be split by picking a cut between them.
    """
    benign, attack = np.sort(scores[labels == 0]), np.sort(scores[labels == 1])
    if not len(benign) or not len(attack):
        return {}
    below = np.searchsorted(benign, attack, side="left")
    ties = np.searchsorted(benign, attack, side="right") - below
    summary = {"auc": round(float((below + 0.5 * ties).mean() / len(benign)), 5)}
    cuts = np.append(np.unique(benign), np.nextafter(benign[-1], np.inf))  # the last: above every benign one
    flagged_benign = 1 - np.searchsorted(benign, cuts, side="left") / len(benign)
    detected = 1 - np.searchsorted(attack, cuts, side="left") / len(attack)
    for fp in (0.001, 0.005, 0.01):
        allowed = flagged_benign <= fp
        summary[f"detection_at_fp_{fp}"] = round(float(detected[allowed].max()) if allowed.any() else 0.0, 4)
    return summary


def evaluate(values: list[RecordValues], generated: tuple[list[RecordValues], list[RecordValues]],
             config: TrainConfig, log=print, always_train: list[RecordValues] = (),
             only: frozenset[str] = frozenset()) -> dict:
    """``always_train`` (grammar attacks, look-alikes) joins every fold's training set and is
    never a test set: it is our own knowledge, not an independent source. ``only`` limits the
    folds to those sources (quicker while iterating)."""
    gen_train, gen_test = generated
    gen_train = list(gen_train) + list(always_train)
    sources = sorted({r.source for r in values}) + (["generated"] if gen_test else [])
    sources = [s for s in sources if not only or s in only]
    folds, pooled_labels, pooled_scores, held = [], [], [], []
    for held_out in sources:
        if held_out == "generated":
            train_values, test = values + gen_train, gen_test
        else:
            train_values = [r for r in values if r.source != held_out] + gen_train
            test = [r for r in values if r.source == held_out]
        log(f"-- held out: {held_out} ({len(test)} records)")
        train, validation = split_validation(train_values, 0.1, config.seed)
        trained = fit(train, validation, config, log=log)
        maxima = record_maxima(trained.weights, test, config.spec)
        folds.append(fold_report(held_out, test, maxima, trained.threshold_probability))
        # Pool as margins over each fold's own threshold, so folds are comparable.
        pooled_labels.append(np.array([r.is_attack for r in test], dtype=int))
        pooled_scores.append(maxima - trained.threshold_probability)
        held += [(held_out, r.family, r.is_attack, m) for r, m in zip(test, pooled_scores[-1])]
    return {
        "config": {"seed": config.seed, "epochs": config.epochs, "target_fp": config.target_fp,
                   "orders": list(config.spec.orders), "bits": config.spec.bits,
                   "embedding_dim": config.embedding_dim, "hidden": config.hidden,
                   "ngram_dropout": config.ngram_dropout, "tokens": config.spec.tokens,
                   "averaged_seeds": config.averaged_seeds},
        "folds": folds,
        **roc_of(held),
        "held": [[source, family, bool(is_attack), round(float(margin), 6)] for source, family, is_attack, margin in held],
    }


def roc_of(held: list) -> dict:
    """Pooled, per-source and per-family ROC of (source, family, is_attack, margin) entries."""
    labels = np.array([h[2] for h in held], dtype=int)
    margins = np.array([h[3] for h in held], dtype=float)
    return {"roc": roc_summary(labels, margins), **per_group_roc(held)}


def merge_folds(runs: list[dict]) -> list[dict]:
    """Runs of the same seeds over different folds (--only, in parallel processes) as one run per seed."""
    by_seed: dict[int, list[dict]] = {}
    for run in runs:
        by_seed.setdefault(run["config"]["seed"], []).append(run)
    merged = []
    for seed, parts in sorted(by_seed.items()):
        configs = {json.dumps(p["config"], sort_keys=True) for p in parts}
        if len(configs) != 1:
            raise SystemExit(f"seed {seed}: the runs to merge were trained with different settings")
        names = [f["held_out"] for p in parts for f in p["folds"]]
        if len(names) != len(set(names)):
            raise SystemExit(f"seed {seed}: a source is held out in more than one of the runs")
        held = [h for p in parts for h in p["held"]]
        merged.append({"config": parts[0]["config"], "folds": [f for p in parts for f in p["folds"]],
                       **roc_of(held), "held": held})
    return merged


def per_group_roc(held: list[tuple[str, str, bool, float]]) -> dict:
    """ROC per held-out source and per attack family. Most sources hold one class only, so an
    attack source is ranked against every held-out benign request, and a benign source against
    every held-out attack; each request was scored by a model that never saw its source."""
    sources = np.array([h[0] for h in held])
    families = np.array([h[1] for h in held])
    attack = np.array([h[2] for h in held], dtype=bool)
    margins = np.array([h[3] for h in held], dtype=float)

    def against(members: np.ndarray, other: np.ndarray) -> dict:
        scores = np.concatenate([margins[members], margins[other]])
        labels = np.concatenate([attack[members], attack[other]]).astype(int)
        return {"n": int(members.sum()), **roc_summary(labels, scores)}

    by_source = {}
    for source in sorted(set(sources)):
        mine = sources == source
        by_source[source] = {
            "attacks_vs_all_benign": against(mine & attack, ~attack) if (mine & attack).any() else None,
            "benign_vs_all_attacks": against(mine & ~attack, attack) if (mine & ~attack).any() else None,
        }
    by_family = {family: against((families == family) & attack, ~attack)
                 for family in sorted(set(families[attack]))}
    return {"roc_by_source": by_source, "roc_by_family": by_family}


def combine(reports: list[dict]) -> dict:
    """One report from runs with different seeds: counts pooled, each rate's range across seeds.

    The seed picks the validation templates that set the threshold and seeds the generated data;
    held-out figures move by 10-50 points between seeds, so one seed cannot rank two models."""
    if len(reports) == 1:
        return reports[0]
    folds = []
    for name in [fold["held_out"] for fold in reports[0]["folds"]]:
        runs = [next(f for f in report["folds"] if f["held_out"] == name) for report in reports]
        benign, flagged = sum(f["benign"] for f in runs), sum(f["false_positives"] for f in runs)
        rates = [f["fp_rate"] for f in runs if f["fp_rate"] is not None]
        families = {}
        for family in sorted({k for f in runs for k in f["families"]}):
            entries = [f["families"][family] for f in runs if family in f["families"]]
            detected, total = sum(e["detected"] for e in entries), sum(e["total"] for e in entries)
            families[family] = {"detected": detected, "total": total, "rate": round(detected / total, 4),
                                "rate_range": [min(e["rate"] for e in entries), max(e["rate"] for e in entries)],
                                "payload_not_scored": sum(e["payload_not_scored"] for e in entries)}
        folds.append({
            "held_out": name,
            "threshold_probability": [min(f["threshold_probability"] for f in runs),
                                      max(f["threshold_probability"] for f in runs)],
            "benign": benign, "false_positives": flagged,
            "fp_rate": round(flagged / benign, 5) if benign else None,
            "fp_rate_range": [min(rates), max(rates)] if rates else None,
            "families": families,
        })
    roc = {key: round(float(np.mean([r["roc"][key] for r in reports])), 5) for key in reports[0]["roc"]}
    roc_range = {key: [min(r["roc"][key] for r in reports), max(r["roc"][key] for r in reports)]
                 for key in reports[0]["roc"]}
    return {"config": {**reports[0]["config"], "seed": [r["config"]["seed"] for r in reports]},
            "folds": folds, "roc": roc, "roc_range": roc_range,
            "roc_by_source": {source: {side: _mean_roc([r["roc_by_source"][source][side] for r in reports])
                                       for side in entry}
                              for source, entry in reports[0].get("roc_by_source", {}).items()},
            "roc_by_family": {family: _mean_roc([r["roc_by_family"].get(family) for r in reports])
                              for family in reports[0].get("roc_by_family", {})}}


def _mean_roc(entries: list[dict | None]) -> dict | None:
    """Each figure's mean across seeds, with its range."""
    entries = [e for e in entries if e]
    if not entries:
        return None
    out: dict = {"n": entries[0]["n"]}
    for key in entries[0]:
        if key != "n":
            values = [e[key] for e in entries if key in e]
            out[key] = round(float(np.mean(values)), 5)
            out[key + "_range"] = [min(values), max(values)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m extproc_lab.attack.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="*", type=Path, help="JSONL files or directories (not with --merge)")
    parser.add_argument("--generated", type=int, default=20_000)
    parser.add_argument("--grammar", type=int, default=5_000)
    parser.add_argument("--benign-traffic", type=Path, nargs="*", default=[])
    add_model_options(parser)
    parser.add_argument("--json", type=Path, help="write the full report here")
    parser.add_argument("--only", default="", help="comma-separated sources to hold out (default: every source)")
    parser.add_argument("--merge", type=Path, nargs="*", default=[],
                        help="instead of training: join the --json reports of runs over different folds "
                             "(and seeds) of the same data into one report")
    parser.add_argument("--seeds", default="",
                        help="comma-separated seeds, e.g. 7,8,9: one evaluation each, reported together "
                             "(default: --seed alone)")
    args = parser.parse_args(argv)
    if args.merge:
        return write_merged(args.merge, args.json)
    if not args.inputs:
        parser.error("give the training data (or --merge reports)")
    log = lambda message: print(message, file=sys.stderr)  # noqa: E731
    values = collect(load_records(args.inputs) + benign_traffic(args.benign_traffic))
    only = frozenset(filter(None, args.only.split(",")))
    reports = []
    for seed in [int(s) for s in args.seeds.split(",") if s] or [args.seed]:
        config = replace(config_from(args), seed=seed)
        first, second = generated_halves(args.generated, seed)
        always = collect(synthetic_values(args.grammar, seed))
        log(f"== seed {seed}")
        reports.append(evaluate(values, (collect(first), collect(second)), config, log, always, only))
    report = combine(reports)
    report["config"]["max_values_per_source"] = args.max_values_per_source
    report["data"] = training_data_digest(args)  # train --metrics accepts the report only for this data
    write_report(report, reports, args.json)
    return 0


def write_report(report: dict, runs: list[dict], out: Path | None) -> None:
    """The combined report (printed and as JSON); the JSON keeps each seed's run, with its scored
    requests, so runs of other folds or seeds can join it later (--merge)."""
    if out:
        combined = {key: value for key, value in report.items() if key != "held"}
        out.write_text(json.dumps({**combined, "runs": runs}) + "\n")
    print(render(report))


def write_merged(paths: list[Path], out: Path | None) -> int:
    reports = [json.loads(path.read_text()) for path in paths]
    digests = {r["data"]["sha256"] for r in reports}
    if len(digests) != 1:
        raise SystemExit("the reports to merge were measured on different training data")
    runs = merge_folds([run for r in reports for run in r["runs"]])
    report = combine(runs)
    report["config"]["max_values_per_source"] = reports[0]["config"].get("max_values_per_source")
    report["data"] = reports[0]["data"]
    write_report(report, runs, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
