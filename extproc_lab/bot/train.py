"""Train the bot model from request records with client sessions, and evaluate it on held-out
user agents: one command, reproducible from the same data and seed.

    python -m extproc_lab.bot.train ../shared/data/bot/train.jsonl [--out models/bot.onnx]

Records are replayed in time order through the same feature code as serving (the per-client
behaviour keyed as in production, not by the data's ground-truth sessions). Evaluation holds
out whole user-agent groups - a browser family at one major version, or a tool or crawler with
all its versions - so every figure is about clients the model has never seen. The model is a
gradient-boosted tree ensemble (LightGBM), exported to ONNX; training-only dependencies are
in the ``train`` extra.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import zlib
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from extproc.bot import evidence
from extproc.bot.behaviour import ClientTracker
from extproc.bot.crawlers import load_catalogue
from extproc.bot.features import (
    DEFAULT_CLIENT_KEY,
    FEATURE_NAMES,
    FEATURE_VERSION,
    Featurizer,
)
from extproc.bot.model import DEFAULT_MODEL, DEFAULT_THRESHOLD
from extproc.core.records import read_records, request_from_record
from extproc.core.scoring import logit_shift_for


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 7
    iterations: int = 300
    learning_rate: float = 0.08
    # Small trees with many samples per leaf and half the features per tree: the held-out user
    # agents punish trees that memorise the tools and versions of the training set.
    max_leaf_nodes: int = 7
    min_samples_leaf: int = 400
    l2_regularization: float = 1.0
    feature_fraction: float = 0.4
    target_fp: float = 0.002  # share of human requests at or below the default threshold, on validation
    folds: int = 5
    validation_fraction: float = 0.2


@dataclass
class Dataset:
    x: np.ndarray  # [requests, features] float32
    bot: np.ndarray  # [requests] 1 = automated
    classes: list[str]
    groups: list[str]  # held-out unit: user-agent family (+ major version for browsers)
    detail: list[str]  # finer provenance for reports only (spoofing technique, tool); never a feature
    sessions: list[str]  # ground-truth client session, for per-session reports only; never a feature
    # The request came before its client's second page (clients keyed as in serving): one page
    # of behaviour at most, so a driven browser can only be told from a person by its headers.
    first_page: list[bool] = field(default_factory=list)


def replay(records: list[dict]) -> Dataset:
    featurizer = Featurizer(load_catalogue(), ClientTracker(max_clients=10**7, ttl_s=1800.0), DEFAULT_CLIENT_KEY)
    rows, bot, classes, groups, detail, sessions, first_page = [], [], [], [], [], [], []
    for record in sorted(records, key=lambda r: (r.get("client") or {}).get("t", 0.0)):
        request, _body = request_from_record(record)
        facts = featurizer.facts(request)
        rows.append(facts.vector[0])
        bot.append(int(record.get("label") == "bot"))
        classes.append(str(record.get("class", "")))
        agent = facts.agent
        groups.append(f"{agent.family} {agent.major}" if agent.kind == "browser" else agent.family or "(none)")
        detail.append(_detail(record))
        sessions.append(str((record.get("client") or {}).get("session", record.get("id", ""))))
        first_page.append(facts.client_pages <= 1)
    return Dataset(np.vstack(rows).astype(np.float32), np.asarray(bot), classes, groups, detail, sessions,
                   first_page)


def _detail(record: dict) -> str:
    source = str(record.get("source", ""))
    if source.startswith("spoof:"):
        return source.split(";")[0].removeprefix("spoof:").split(" ")[0].strip("'")
    if "tool-defaults (" in source:
        return source.split("tool-defaults (")[1].split(" ")[0]
    return source.split("/")[0].split(" ")[0]  # puppeteer, selenium, or the UA list of a human


def fold_of(group: str, folds: int, salt: str = "") -> int:
    return zlib.crc32(f"{salt}{group}".encode()) % folds


def fit(x: np.ndarray, y: np.ndarray, config: TrainConfig):
    import lightgbm

    model = lightgbm.LGBMClassifier(
        n_estimators=config.iterations, learning_rate=config.learning_rate, num_leaves=config.max_leaf_nodes,
        min_child_samples=max(5, min(config.min_samples_leaf, len(y) // 50)),  # small own-traffic sets too
        reg_lambda=config.l2_regularization,
        subsample=0.8, subsample_freq=1, colsample_bytree=config.feature_fraction, random_state=config.seed,
        deterministic=True, force_row_wise=True, num_threads=1, verbose=-1,  # same data and seed: same trees
    )
    return model.fit(x, y)


def operating_point(probabilities: np.ndarray, bot: np.ndarray, target_fp: float) -> float:
    """The P(automated) at which at most target_fp of the human requests would be flagged."""
    human = np.sort(probabilities[bot == 0])
    if not len(human):
        return 0.5
    index = min(len(human) - 1, int(np.floor(len(human) * (1 - target_fp))))
    return float(np.nextafter(human[index], 1.0))


def train_split(data: Dataset, index: np.ndarray, config: TrainConfig):
    """Fit on part of the groups in index, choose the operating point on the other part."""
    validation = np.array([fold_of(data.groups[i], 100, "validation") < config.validation_fraction * 100
                           for i in index])
    fit_rows, check_rows = index[~validation], index[validation]
    model = fit(data.x[fit_rows], data.bot[fit_rows], config)
    cut = operating_point(model.predict_proba(data.x[check_rows])[:, 1], data.bot[check_rows], config.target_fp)
    return model, cut


def with_evidence(x: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """What the layer decides: hard evidence makes a request automated whatever the model says."""
    proven = np.array([evidence.any_found(row[None, :]) for row in x], dtype=bool)
    return np.where(proven, 1.0, probabilities)


def evaluate(data: Dataset, config: TrainConfig, log=print) -> dict:
    from sklearn.metrics import roc_auc_score

    predicted, flagged = out_of_fold(data, config, log)
    return summarize(data, predicted, flagged, roc_auc_score(data.bot, predicted))


def out_of_fold(data: Dataset, config: TrainConfig, log=print) -> tuple[np.ndarray, np.ndarray]:
    """P(automated) and the flag of every request, from the fold that held its group out."""
    fold = np.array([fold_of(g, config.folds) for g in data.groups])
    predicted = np.zeros(len(data.bot))
    flagged = np.zeros(len(data.bot), dtype=bool)
    for k in range(config.folds):
        model, cut = train_split(data, np.flatnonzero(fold != k), config)
        test = np.flatnonzero(fold == k)
        predicted[test] = with_evidence(data.x[test], model.predict_proba(data.x[test])[:, 1])
        flagged[test] = predicted[test] >= cut
        log(f"fold {k}: {len(test)} held-out requests, cut {cut:.4f}")
    return predicted, flagged


def summarize(data: Dataset, predicted: np.ndarray, flagged: np.ndarray, auc: float) -> dict:
    by_class: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_detail: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for cls, detail, hit in zip(data.classes, data.detail, flagged):
        by_class[cls][0] += int(hit)
        by_class[cls][1] += 1
        if cls in AUTOMATED:
            by_detail[f"{cls}/{detail}"][0] += int(hit)
            by_detail[f"{cls}/{detail}"][1] += 1
    humans = by_class.get("human-browser", [0, 0])
    caught = [by_class.get(c, [0, 0]) for c in AUTOMATED]
    sessions = session_outcomes(data, flagged)
    automated = np.isin(np.asarray(data.classes), AUTOMATED)
    missed = automated & ~flagged
    return {
        "roc_auc": round(float(auc), 5),
        "human_flagged_rate": round(humans[0] / max(1, humans[1]), 5),
        "automation_and_spoofed_caught_rate": round(sum(c[0] for c in caught) / max(1, sum(c[1] for c in caught)), 5),
        **session_rates(sessions),
        "automated_missed": int(missed.sum()),
        "automated_missed_before_second_page": int((missed & np.asarray(data.first_page, dtype=bool)).sum())
        if data.first_page else None,
        "per_class": {c: {"flagged": v[0], "total": v[1], "rate": round(v[0] / v[1], 4)} for c, v in sorted(by_class.items())},
        "per_source": {d: {"flagged": v[0], "total": v[1], "rate": round(v[0] / v[1], 4),
                           "sessions": len(sessions[d]), "sessions_caught": sum(f is not None for f in sessions[d])}
                       for d, v in sorted(by_detail.items())},
    }


AUTOMATED = ("automation-tool", "spoofed-browser")


def session_outcomes(data: Dataset, flagged: np.ndarray) -> dict[str, list[int | None]]:
    """Per source ("human-browser" for every human), each session's index of its first flagged request.

    Requests are in time order, so the index says how many requests a client made before it was
    first scored as automated (None: never)."""
    first: dict[str, int | None] = {}
    position: Counter = Counter()
    source: dict[str, str] = {}
    for session, cls, detail, hit in zip(data.sessions, data.classes, data.detail, flagged):
        source[session] = f"{cls}/{detail}" if cls in AUTOMATED else cls
        if hit and first.get(session) is None:
            first[session] = position[session]
        first.setdefault(session, None)
        position[session] += 1
    outcomes: dict[str, list[int | None]] = defaultdict(list)
    for session, index in first.items():
        outcomes[source[session]].append(index)
    return outcomes


def session_rates(outcomes: dict[str, list[int | None]]) -> dict:
    automated = [i for source, found in outcomes.items() if source.split("/")[0] in AUTOMATED for i in found]
    humans = outcomes.get("human-browser", [])
    caught = sorted(i for i in automated if i is not None)
    return {
        "automated_sessions_caught_rate": round(len(caught) / max(1, len(automated)), 5),
        "automated_sessions_first_flag_median": caught[len(caught) // 2] if caught else None,
        "human_sessions_flagged_rate": round(sum(i is not None for i in humans) / max(1, len(humans)), 5),
    }


def to_onnx(model, features: int):
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    graph = convert_lightgbm(model, initial_types=[("features", FloatTensorType([None, features]))],
                             zipmap=False, target_opset=15)
    graph.graph.name = "extproc_bot"  # the converter names graphs with a random UUID
    # ... and lists the opset imports in set order, which changes with each process's hash seed.
    imports = sorted(graph.opset_import, key=lambda entry: entry.domain)
    del graph.opset_import[:]
    graph.opset_import.extend(imports)
    return graph


def digest(paths: list[Path]) -> dict:
    entries = [{"file": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in paths]
    total = hashlib.sha256("".join(e["sha256"] for e in entries).encode()).hexdigest()
    return {"files": entries, "sha256": total}


def save(model, cut: float, config: TrainConfig, out: Path, data_digest: dict, counts: dict, metrics: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(to_onnx(model, len(FEATURE_NAMES)).SerializeToString())
    metadata = {
        "model": out.name,
        "feature_version": FEATURE_VERSION,
        "features": list(FEATURE_NAMES),
        "client_key": list(DEFAULT_CLIENT_KEY),
        "calibration": {"threshold_probability": round(cut, 6), "logit_shift": logit_shift_for(cut, DEFAULT_THRESHOLD),
                        "default_threshold_score": DEFAULT_THRESHOLD, "target_validation_fp": config.target_fp},
        "training": {"config": asdict(config), "data": data_digest, "classes": counts},
        "metrics": metrics,
    }
    out.with_suffix(".json").write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    from extproc_lab.bot.card import model_card

    out.with_suffix(".md").write_text(model_card(metadata))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m extproc_lab.bot.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", type=Path, help="request-record JSONL files with client sessions")
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--iterations", type=int, default=TrainConfig.iterations, help="boosting rounds (trees)")
    parser.add_argument("--skip-evaluation", action="store_true", help="train only (faster), no held-out metrics")
    args = parser.parse_args(argv)
    config = TrainConfig(seed=args.seed, iterations=args.iterations)
    records = [record for path in args.inputs for record in read_records(path)]
    data = replay(records)
    print(f"{len(records)} records, {len(set(data.groups))} user-agent groups, {data.x.shape[1]} features", file=sys.stderr)
    metrics = {} if args.skip_evaluation else evaluate(data, config, log=lambda m: print(m, file=sys.stderr))
    model, cut = train_split(data, np.arange(len(data.bot)), config)
    save(model, cut, config, args.out, digest(args.inputs), dict(Counter(data.classes)), metrics)
    print(json.dumps({k: v for k, v in metrics.items() if k != "per_source"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
