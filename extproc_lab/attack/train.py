"""Train the attack model from request records and write models/attack.onnx + metadata.

    python -m extproc_lab.attack.train ../shared/data/train [more.jsonl ...] [--generated 20000]

Needs the ``train`` extra (onnx, faker). Same inputs and seed give the same model: NumPy in a
fixed order (``numpy_net``), seeded shuffles, inputs read in sorted order. The model is a
bag of hashed character n-grams (an embedding table) followed by a small MLP, one sigmoid per
head; it scores each value of a request on its own.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from extproc.attack import tokens
from extproc.attack.features import FeatureSpec, featurize
from extproc.attack.model import DEFAULT_MODEL, logit_shift_for, metadata_path
from extproc.core.records import RecordError, iter_records, read_records
from extproc_lab.attack.dataset import HEADS, RecordValues, collect, head_of, host_half
from extproc_lab.attack.probe import feature_digest
from extproc_lab.attack.numpy_net import Adam, Bags, averaged, init_weights, loss_and_gradients
from extproc_lab.attack.report import render


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 7
    epochs: int = 3  # more epochs fit the training sources better and unseen traffic worse
    batch_size: int = 256
    learning_rate: float = 2e-3
    embedding_dim: int = 16  # 32/64 detected a little more but flagged more unseen traffic, and is slower
    hidden: int = 32
    # Share of a value's n-grams dropped per training step (the rest scaled up to match), so no
    # single n-gram decides. 0.3, over seeds 7-9: unseen generated templates flagged 1.9% instead
    # of 2.9%, detection at 0.5% FP 79.5% vs 76.9%, but at the operating point PayloadsAllTheThings
    # rce 37% vs 43%, lfi 73% vs 76%, open-redirect 33% vs 40% (short values lose what they have),
    # and `extproc redteam mutate` on the demo policy stopped 90.1% of its requests instead of 92.5%.
    ngram_dropout: float = 0.0
    # Request-level FP rate on validation traffic of held-out templates. 0.5% detected ~5 points
    # more held-out attacks but flagged 1.3% of everyday traffic instead of 0.23%. With ordinary
    # URLs and addresses among the look-alikes, 0.15% flagged fewer unseen benign requests than 0.2%
    # (generated templates 4.1% vs 6.6%, synthetic 0.25% vs 0.45%) for 1-3 points of detection.
    target_fp: float = 0.0015
    max_values_per_source: int = 60_000  # cap so one huge source does not drown the rest
    # Networks of different seeds trained on the same values, averaged into one graph (numpy_net.averaged).
    averaged_seeds: int = 1
    # Sources of real traffic whose hosts of one half (dataset.host_half == 1) are never trained on:
    # calibrate_paths sets the paths' point on the other half and measures it on these sites.
    hosts_held_out_of: tuple[str, ...] = ("urls",)
    spec: FeatureSpec = FeatureSpec()


@dataclass
class Trained:
    weights: dict[str, np.ndarray]
    threshold_probability: float
    config: TrainConfig
    history: list[dict]


# -- data -----------------------------------------------------------------------------------


LABELS = ("attack", "benign")


def load_records(inputs: list[Path]) -> list[dict]:
    files = sorted(p for path in inputs for p in ([path] if path.is_file() else path.glob("*.jsonl")))
    return [record for file in files for record in labelled_records(file)]


def labelled_records(file: Path):
    """Every record of a training file; one without an explicit label is an error, never benign
    by default (a user's attack record with a typo in its label would teach the model the attack
    is fine)."""
    for number, record in iter_records(file):
        if isinstance(record, RecordError):
            raise record
        if record.get("label") not in LABELS:
            raise RecordError(f"{file}:{number}: a training record needs \"label\": \"attack\" or "
                              f"\"benign\" (found {record.get('label')!r})")
        yield record


def without_held_out_hosts(records: list[dict], config: TrainConfig) -> list[dict]:
    """The records training may see: config.hosts_held_out_of's sources lose half of their hosts."""
    held = frozenset(config.hosts_held_out_of)
    return [r for r in records if r.get("source") not in held or host_half(r) == 0]


def files_digest(inputs: list[Path], extra: str = "") -> dict:
    files = sorted(p for path in inputs for p in ([path] if path.is_file() else path.glob("*.jsonl")))
    entries, total = [], hashlib.sha256(extra.encode())
    for file in files:
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        entries.append({"file": f"{file.parent.name}/{file.name}", "sha256": digest})
        total.update(digest.encode())
    return {"files": entries, "generated": extra, "sha256": total.hexdigest()}


def value_table(values: list[RecordValues], config: TrainConfig, rng: random.Random):
    """Unique (framed value -> label, head) pairs with weights; ambiguous values are dropped."""
    seen: dict[bytes, tuple[int, int, str]] = {}
    conflicts = set()
    for record in values:
        marked = zip(record.framed, record.value_is_attack, record.value_trains)
        for framed, is_attack, trains in [*marked, *((copy, True, True) for copy in record.path_copies)]:
            if not trains:
                continue
            label = (1, head_of(record.family)) if is_attack else (0, -1)
            previous = seen.get(framed)
            if previous is None:
                seen[framed] = (*label, record.source)
            elif previous[0] != label[0]:
                conflicts.add(framed)
    for framed in conflicts:
        del seen[framed]
    by_source: dict[str, list[bytes]] = {}
    for framed, (_, _, source) in seen.items():
        by_source.setdefault(source, []).append(framed)
    kept = []
    for source in sorted(by_source):
        items = sorted(by_source[source])
        rng.shuffle(items)
        kept.extend(items[: config.max_values_per_source])
    rng.shuffle(kept)
    labels = np.array([seen[f][0] for f in kept], dtype=np.float32)
    heads = np.array([seen[f][1] for f in kept], dtype=np.int64)
    return kept, labels, heads, _weights(labels, heads), len(conflicts)


def _weights(labels: np.ndarray, heads: np.ndarray) -> np.ndarray:
    """Benign and attack halves weigh the same; within attacks a family weighs sqrt(its count)."""
    weights = np.ones(len(labels), dtype=np.float64)
    attack = labels == 1
    for head in np.unique(heads[attack]):
        members = attack & (heads == head)
        weights[members] = np.sqrt(members.sum()) / members.sum()
    weights[attack] *= (~attack).sum() / max(weights[attack].sum(), 1e-9)
    return (weights / weights.mean()).astype(np.float32)


def id_lists(framed: list[bytes], spec: FeatureSpec, chunk: int = 2048) -> tuple[list[np.ndarray], np.ndarray]:
    """Per value: its non-zero bucket ids (all orders) and its 1/sqrt(length) scale."""
    ids, scales = [], []
    for start in range(0, len(framed), chunk):
        batch = featurize(framed[start:start + chunk], spec)
        for s, e in zip(batch.starts, batch.ends):
            row = batch.ids[:, s:e].ravel()
            ids.append(row[row != 0].astype(np.int64))
        scales.append(batch.scale[:, 0])
    return ids, np.concatenate(scales) if scales else np.zeros(0, np.float32)


# -- model ----------------------------------------------------------------------------------


def _batch(ids: list[np.ndarray], scale: np.ndarray, index: np.ndarray, drop: float = 0.0, rng=None) -> Bags:
    rows = [ids[i] for i in index]
    batch_scale = scale[index]
    if drop > 0:
        rows = [r[rng.random(len(r)) >= drop] for r in rows]
        batch_scale = (batch_scale / (1.0 - drop)).astype(np.float32)
    return Bags.of(rows, batch_scale)


def fit(train: list[RecordValues], validation: list[RecordValues], config: TrainConfig, log=print) -> Trained:
    rng = random.Random(config.seed)
    framed, labels, heads, weights, conflicts = value_table(train, config, rng)
    log(f"training values: {len(framed)} ({int(labels.sum())} attack), dropped {conflicts} ambiguous")
    ids, scale = id_lists(framed, config.spec)
    targets = np.zeros((len(framed), len(HEADS)), dtype=np.float32)
    targets[:, 0] = labels
    attack_rows = np.flatnonzero(labels == 1)
    targets[attack_rows, heads[attack_rows]] = 1.0

    members, history = [], []
    for member in range(config.averaged_seeds):
        seed = config.seed + 100 * member  # member 0 is the single-seed model of the same config
        if config.averaged_seeds > 1:
            log(f"seed {seed} ({member + 1} of {config.averaged_seeds} averaged)")
        weights_of_seed, history_of_seed = _train_one(ids, scale, targets, weights, config, seed, log)
        members.append(weights_of_seed)
        history.extend({"seed": seed, **entry} if config.averaged_seeds > 1 else entry for entry in history_of_seed)
    params = members[0] if len(members) == 1 else averaged(members)
    threshold = calibrate(params, validation, config)
    log(f"operating point: p >= {threshold:.4f} (validation benign FP target {config.target_fp:.2%})")
    return Trained(params, threshold, config, history)


def _train_one(ids, scale, targets, weights, config: TrainConfig, seed: int, log):
    params = init_weights(2 ** config.spec.bits + 1, config.embedding_dim, config.hidden, len(HEADS), seed)
    optimizer = Adam(config.learning_rate)
    order = np.arange(len(ids))
    history = []
    for epoch in range(config.epochs):
        started, total = time.time(), 0.0
        np.random.default_rng(seed + epoch).shuffle(order)
        drop_rng = np.random.default_rng(seed + 1000 + epoch)
        for start in range(0, len(order), config.batch_size):
            index = order[start:start + config.batch_size]
            bags = _batch(ids, scale, index, config.ngram_dropout, drop_rng)
            loss, grads, sparse = loss_and_gradients(params, bags, targets[index], weights[index])
            optimizer.update(params, grads, sparse)
            total += loss * len(index)
        # Wall time is logged, not stored: the metadata must not change between identical runs.
        history.append({"epoch": epoch + 1, "loss": round(total / max(len(order), 1), 5)})
        log(f"epoch {epoch + 1}: loss {history[-1]['loss']} ({time.time() - started:.1f} s)")
    return params, history


def predict(weights: dict[str, np.ndarray], framed: list[bytes], spec: FeatureSpec) -> np.ndarray:
    """The same function as the ONNX graph, in numpy, for calibration and evaluation at training time."""
    if not framed:
        return np.zeros((0, len(HEADS)), dtype=np.float32)
    batch = featurize(framed, spec)
    summed = weights["table"][batch.ids].sum(axis=0)  # [n, dim]
    cumulative = np.vstack([np.zeros((1, summed.shape[1]), np.float32), np.cumsum(summed, axis=0)])
    pooled = (cumulative[batch.ends] - cumulative[batch.starts]) * batch.scale
    hidden = np.maximum(pooled @ weights["w1"] + weights["b1"], 0)
    return 0.5 * (1 + np.tanh(0.5 * (hidden @ weights["w2"] + weights["b2"])))  # sigmoid, overflow-free


def record_maxima(weights, records: list[RecordValues], spec: FeatureSpec) -> np.ndarray:
    """Per record, the highest attack probability of its values (0 when it has none)."""
    framed = [f for r in records for f in r.framed]
    probs = np.zeros(0)
    for start in range(0, len(framed), 4096):
        probs = np.concatenate([probs, predict(weights, framed[start:start + 4096], spec)[:, 0]])
    out, position = np.zeros(len(records)), 0
    for i, record in enumerate(records):
        count = len(record.framed)
        out[i] = probs[position:position + count].max() if count else 0.0
        position += count
    return out


def calibrate(weights, validation: list[RecordValues], config: TrainConfig) -> float:
    benign = [r for r in validation if not r.is_attack]
    maxima = np.sort(record_maxima(weights, benign, config.spec))
    if not len(maxima):
        return 0.5
    allowed = int(np.floor(config.target_fp * len(maxima)))
    threshold = maxima[len(maxima) - allowed - 1] if allowed < len(maxima) else 0.0
    return float(min(max(np.nextafter(threshold, 1.0), 0.05), 0.99))


# -- ONNX -----------------------------------------------------------------------------------


def to_onnx(weights: dict[str, np.ndarray], spec: FeatureSpec):
    """ids [orders*n] -> Gather -> sum over orders -> segment sums via CumSum -> MLP -> sigmoid."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    dim, classes = weights["table"].shape[1], weights["w2"].shape[1]
    initializers = [
        numpy_helper.from_array(weights["table"], "table"),
        numpy_helper.from_array(weights["w1"], "w1"),
        numpy_helper.from_array(weights["b1"], "b1"),
        numpy_helper.from_array(weights["w2"], "w2"),
        numpy_helper.from_array(weights["b2"], "b2"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0"),
        numpy_helper.from_array(np.zeros((1, dim), dtype=np.float32), "zero_row"),
        numpy_helper.from_array(np.ones((1, len(spec.orders)), dtype=np.float32), "ones"),
        numpy_helper.from_array(np.array([len(spec.orders), -1], dtype=np.int64), "by_order"),
        numpy_helper.from_array(np.array([-1, dim], dtype=np.int64), "by_position"),
    ]
    # ids holds the orders one after the other ([orders * n]): one Gather, then the orders are
    # summed by a MatMul with a row of ones. In onnxruntime this beats a Gather per order and a
    # Sum, and by far a ReduceSum over the leading axis.
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["embedded"], axis=0),
        helper.make_node("Reshape", ["embedded", "by_order"], ["per_order"]),
        helper.make_node("MatMul", ["ones", "per_order"], ["summed_flat"]),
        helper.make_node("Reshape", ["summed_flat", "by_position"], ["summed"]),
        helper.make_node("CumSum", ["summed", "axis0"], ["running"]),
        helper.make_node("Concat", ["zero_row", "running"], ["cumulative"], axis=0),
        helper.make_node("Gather", ["cumulative", "ends"], ["upto_end"], axis=0),
        helper.make_node("Gather", ["cumulative", "starts"], ["upto_start"], axis=0),
        helper.make_node("Sub", ["upto_end", "upto_start"], ["bag"]),
        helper.make_node("Mul", ["bag", "scale"], ["pooled"]),
        helper.make_node("Gemm", ["pooled", "w1", "b1"], ["hidden_in"]),
        helper.make_node("Relu", ["hidden_in"], ["hidden"]),
        helper.make_node("Gemm", ["hidden", "w2", "b2"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["probabilities"]),
    ]
    graph = helper.make_graph(
        nodes,
        "attack_score",
        [
            helper.make_tensor_value_info("ids", TensorProto.INT64, ["orders_times_positions"]),
            helper.make_tensor_value_info("starts", TensorProto.INT64, ["values"]),
            helper.make_tensor_value_info("ends", TensorProto.INT64, ["values"]),
            helper.make_tensor_value_info("scale", TensorProto.FLOAT, ["values", 1]),
        ],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["values", classes])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="extproc_lab.attack.train")
    model.ir_version = 9  # readable by onnxruntime >= 1.16
    onnx.checker.check_model(model)
    return model


def save(trained: Trained, out: Path, data: dict, metrics: dict | None = None) -> None:
    model = to_onnx(trained.weights, trained.config.spec)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(model.SerializeToString())
    config = asdict(trained.config)
    config["spec"] = asdict(trained.config.spec)
    metadata = {
        "model": out.name,
        "feature_spec": feature_spec_metadata(trained.config.spec),
        "heads": list(HEADS),
        "calibration": {
            "threshold_probability": round(trained.threshold_probability, 6),
            "logit_shift": logit_shift_for(trained.threshold_probability),
            "default_threshold_score": 20,
            "target_validation_fp": trained.config.target_fp,
        },
        "training": {"config": config, "history": trained.history, "data": data,
                     "feature_digest": feature_digest(trained.config.spec)},
        "metrics": metrics or {},
    }
    write_metadata(out, metadata)


def write_metadata(model: Path, metadata: dict) -> None:
    """The model's .json and its card (.md), both from the metadata."""
    metadata_path(model).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    model.with_suffix(".md").write_text(model_card(metadata))


def feature_spec_metadata(spec: FeatureSpec) -> dict:
    """The spec as the metadata stores it; with the token channel, the lexicon it learnt (by digest)."""
    stored = asdict(spec)
    if spec.tokens:
        stored["lexicon_sha256"] = tokens.lexicon().digest
    return stored


def model_card(metadata: dict) -> str:
    """A short model card from the metadata: what the model is, how it was made, how good it is."""
    training, calibration = metadata["training"], metadata["calibration"]
    config = training["config"]
    files = ", ".join(f"`{f['file']}`" for f in training["data"]["files"]) or "(none)"
    lines = [
        "# Attack score model",
        "",
        "Scores each value a client controls (path, query and form arguments, JSON strings, cookies, "
        "user-data headers, multipart fields, XML/text bodies) after normalisation; a request takes the "
        "score of its worst value. Output: one probability per head "
        f"({', '.join(metadata['heads'])}), mapped to 1-99 (low = attack).",
        "",
        "## Model",
        f"- Hashed character n-grams (orders {config['spec']['orders']}, 2^{config['spec']['bits']} buckets)"
        f"{_token_words(config)} -> embedding bag (dim {config['embedding_dim']}) -> MLP (hidden {config['hidden']}) "
        f"-> sigmoid per head{_averaged_words(config)}.",
        f"- Operating point: probability >= {calibration['threshold_probability']} maps to score 20, the default "
        f"threshold; chosen for a {calibration['target_validation_fp']:.2%} false-positive rate on validation "
        "traffic from templates held out of training.",
        "",
        "## Training data",
        f"- Files: {files}; plus {training['data']['generated']}.",
        f"- Digest (sha256 of the inputs and generator settings): `{training['data']['sha256']}`.",
        f"- Seed {config['seed']}, {config['epochs']} epochs; "
        "`python -m extproc_lab.attack.train` reproduces it bit for bit from the same inputs.",
        "",
    ]
    if metadata.get("metrics", {}).get("folds"):
        lines += ["## Quality: whole sources held out", "",
                  "Each row: trained without that source, threshold set without it, tested on it "
                  "(`python -m extproc_lab.attack.evaluate`, on this model's training data"
                  f"{_evaluation_settings(metadata['metrics']['config'], config)}).", "",
                  render(metadata["metrics"]), ""]
    path = calibration.get("locations", {}).get("path")
    if path:
        lines += _path_section(path)
    return "\n".join(lines)


def _token_words(config: dict) -> str:
    if not config["spec"].get("tokens"):
        return ""
    return (", and the same n-grams of each value's token classes (`extproc/attack/tokens.py`, "
            f"channel version {config['spec']['tokens']}: words by class, numbers, operators, punctuation)")


def _averaged_words(config: dict) -> str:
    count = config.get("averaged_seeds", 1)
    if count <= 1:
        return ""
    return (f"; {count} such networks of seeds {config['seed']}, {config['seed'] + 100}, ... trained on the same "
            "values, their logits averaged in one graph")


def _evaluation_settings(evaluated: dict, config: dict) -> str:
    """The held-out folds' settings where they differ from this model's (e.g. fewer epochs to fit the time)."""
    model = {"epochs": config["epochs"], "target_fp": config["target_fp"], "orders": list(config["spec"]["orders"]),
             "bits": config["spec"]["bits"], "embedding_dim": config["embedding_dim"], "hidden": config["hidden"],
             "ngram_dropout": config["ngram_dropout"], "max_values_per_source": config["max_values_per_source"],
             "tokens": config["spec"].get("tokens", 0), "averaged_seeds": config.get("averaged_seeds", 1)}
    differ = [f"{key} {evaluated.get(key)} (this model: {value})" for key, value in model.items()
              if key in evaluated and evaluated[key] != value]
    return "; folds trained with " + ", ".join(differ) if differ else ""


def _path_section(path: dict) -> list[str]:
    """The paths' operating point as calibrate_paths measured it on this model."""
    lines = ["## Paths' operating point", "",
             f"`calibration.locations.path` in `attack.json` (`python -m extproc_lab.attack.calibrate_paths "
             f"{path['urls']} --target-fp {path['target_fp']} --write`): a logit offset of {path['logit_offset']} "
             f"for plain paths (ordinary path characters, nothing decoded), set on the plain paths of half of the "
             f"real URLs ({path['calibration_paths']:,}, split by host) so that {path['target_fp']:.2%} of them are "
             f"flagged. On the other half ({path['held_out_paths']:,} paths of other hosts): paths flagged "
             f"{path['held_out_fp_before']:.2%} without it, {path['held_out_fp_after']:.3%} with it."]
    if path.get("attacks"):
        a = path["attacks"]
        lines[-1] += (f" Of {a['attack_records']:,} attack records, {a['flagged_by_path_before']:,} were flagged by "
                      f"their path alone before and {a['flagged_by_path_after']:,} after.")
    return lines + [""]


# -- command --------------------------------------------------------------------------------


def split_validation(values: list[RecordValues], fraction: float, seed: int):
    """Hold out whole groups (source and template) rather than rows, so the threshold is set on
    kinds of traffic the model has not seen, as it will meet in production; sources with a
    single template (a value list) fall back to rows."""
    groups = sorted({(r.source, r.template) for r in values})
    per_source: dict[str, int] = {}
    for source, _ in groups:
        per_source[source] = per_source.get(source, 0) + 1
    rng = random.Random(seed)
    held = {group for group in groups if per_source[group[0]] > 3 and rng.random() < fraction}
    validation, train = [], []
    for record in values:
        group = (record.source, record.template)
        in_validation = group in held if per_source[record.source] > 3 else rng.random() < fraction
        (validation if in_validation else train).append(record)
    return train, validation


def generated_records(count: int, seed: int, templates=None) -> list[dict]:
    """Generated benign traffic (datagen templates)."""
    if count <= 0:
        return []
    from extproc_lab.attack import datagen

    return list(datagen.benign_records(count, seed, templates))


# Classes of the bot data set that may include scanners (sqlmap, Nikto): not benign for us.
NOT_BENIGN_TRAFFIC = frozenset({"automation-tool", "spoofed-browser"})


def benign_traffic(paths: list[Path]) -> list[dict]:
    """Everyday traffic labelled for another purpose (human/bot), used as benign requests."""
    return [
        {**record, "label": "benign", "family": "benign", "source": "traffic"}
        for path in paths for record in read_records(path)
        if record.get("class") not in NOT_BENIGN_TRAFFIC
    ]


def synthetic_values(per_family: int, seed: int) -> list[dict]:
    """Grammar-generated attacks and benign look-alikes, placed into ordinary requests."""
    if per_family <= 0:
        return []
    from extproc_lab.attack import payloads
    from extproc_lab.attack.placement import attack_records, benign_value_records

    attacks = attack_records(payloads.generate_all(per_family, seed), seed, source="grammar")
    lookalikes = benign_value_records(payloads.benign_lookalikes(per_family * 4, seed), seed + 1)
    return [*attacks, *lookalikes]


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--target-fp", type=float, default=TrainConfig.target_fp)
    parser.add_argument("--orders", default=",".join(map(str, FeatureSpec.orders)), help="n-gram orders, e.g. 1,2,3,4,5")
    parser.add_argument("--bits", type=int, default=FeatureSpec.bits, help="log2 of the n-gram hash buckets")
    parser.add_argument("--tokens", type=int, choices=(0, tokens.VERSION), default=TrainConfig.spec.tokens,
                        help="token-class channel beside the characters (extproc/attack/tokens.py): 0 for none")
    parser.add_argument("--ngram-dropout", type=float, default=TrainConfig.ngram_dropout,
                        help="share of each value's n-grams dropped per training step (0: none)")
    parser.add_argument("--averaged-seeds", type=int, default=TrainConfig.averaged_seeds,
                        help="networks of successive seeds averaged into the one model (the kernel takes up to 4 of 16 dimensions)")
    parser.add_argument("--max-values-per-source", type=int, default=TrainConfig.max_values_per_source,
                        help="distinct values kept per source, so one huge source does not drown the rest")


def config_from(args: argparse.Namespace) -> TrainConfig:
    spec = FeatureSpec(orders=tuple(int(o) for o in args.orders.split(",")), bits=args.bits, tokens=args.tokens)
    return TrainConfig(seed=args.seed, epochs=args.epochs, target_fp=args.target_fp, spec=spec,
                       ngram_dropout=args.ngram_dropout, max_values_per_source=args.max_values_per_source,
                       averaged_seeds=args.averaged_seeds)


def training_data_digest(args: argparse.Namespace) -> dict:
    """What the model learns from: the files and the generators' sizes (the seed is in the config)."""
    return files_digest([*args.inputs, *args.benign_traffic], extra=f"datagen:{args.generated};grammar:{args.grammar}")


def held_out_report(path: Path, data: dict) -> dict:
    """An evaluation report fit for this model's card: measured with the same training data, or refused.
    Figures of another model (the shipped one, other data) must never pass for this one's."""
    report = {key: value for key, value in json.loads(path.read_text()).items() if key not in ("runs", "held")}
    measured_on = (report.get("data") or {}).get("sha256")
    if measured_on != data["sha256"]:
        raise SystemExit(f"{path}: this evaluation was not run on the training data of this model (its data digest "
                         f"is {measured_on or 'missing'}, this model's {data['sha256']}): run "
                         "python -m extproc_lab.attack.evaluate with the same inputs, --generated and --grammar")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m extproc_lab.attack.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", type=Path, help="JSONL files or directories of them")
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--generated", type=int, default=20_000, help="generated benign records to add")
    parser.add_argument("--grammar", type=int, default=5_000, help="grammar attacks per family (and 4x look-alikes)")
    parser.add_argument("--benign-traffic", type=Path, nargs="*", default=[],
                        help="request records of ordinary traffic (e.g. a bot data set) used as benign")
    add_model_options(parser)
    parser.add_argument("--metrics", type=Path, help="evaluation report (JSON) to record with the model")
    args = parser.parse_args(argv)
    config = config_from(args)
    if args.metrics:  # refused before the training, not after
        held_out_report(args.metrics, training_data_digest(args))
    records = without_held_out_hosts(load_records(args.inputs) + benign_traffic(args.benign_traffic), config)
    records += generated_records(args.generated, args.seed) + synthetic_values(args.grammar, args.seed)
    print(f"{len(records)} records", file=sys.stderr)
    train, validation = split_validation(collect(records), 0.1, args.seed)
    trained = fit(train, validation, config, log=lambda m: print(m, file=sys.stderr))
    data = training_data_digest(args)
    metrics = held_out_report(args.metrics, data) if args.metrics else None
    save(trained, args.out, data, metrics)
    print(f"wrote {args.out} and {metadata_path(args.out)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
