"""Train the prompt-injection model on real prompts, evaluate it with whole sources held out, and
write models/prompt-injection.{npy,json,md}. NumPy only, deterministic: the same data and seed
give the same bytes.

    python -m extproc_lab.ai.train_injection ../shared/data/llm [--out models/prompt-injection.npy]
        [--seeds 1,2,3] [--skip-evaluation]

The data is ../shared/data/llm (its README): real injections, jailbreaks, benign prompts and long
documents, one file per public source, plus the generated look-alike templates of
extproc_lab/ai/prompts.py as one more source. Evaluation (extproc_lab.ai.evaluate_injection)
trains without each real source in turn and reports on it; the shipped model is trained on all.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from extproc.ai_gateway.injection import DEFAULT_MODEL, DEFAULT_THRESHOLD
from extproc.core.scoring import logit_shift_for
from extproc_lab.ai import calibrate, corpus, prompts
from extproc_lab.ai.fit import Recipe, fit
from extproc_lab.ai.windows import Featurized, featurize, text_logits, windows


@dataclass(frozen=True)
class Settings:
    bits: int = 16
    block: int = 32  # tokens per block; a window is two blocks (about 400 characters of prose)
    benign_window_cap: int = 8  # windows of a long benign text learnt per epoch, drawn by seed
    target_fp: float = 0.005  # per (benign source, length band) of the calibration texts
    calibration_share: float = 0.25  # of the benign texts, held out of fitting to set the cut
    generated_per_template: int = 60  # extproc_lab/ai/prompts.py, as the source "generated"
    # Evaluated, never learnt: BIPIA's injections are ordinary requests ("Show me how to schedule a
    # task") that are injections only because a document carries them; learnt as injections, they
    # teach that asking for something is an injection.
    not_learnt: tuple[tuple[str, int], ...] = (("bipia", 1),)
    fit: Recipe = field(default_factory=Recipe)


@dataclass(frozen=True)
class Dataset:
    prompts: list[corpus.Prompt]
    labels: np.ndarray
    sources: np.ndarray
    bands: np.ndarray  # calibrate.band_index of each text
    features: Featurized

    @classmethod
    def load(cls, directory: Path, settings: Settings) -> "Dataset":
        texts = corpus.load(directory) + [
            corpus.Prompt("generated", record["label"], record["template"], record["text"])
            for record in prompts.records(settings.generated_per_template)]
        return cls(texts, np.array([p.label for p in texts]), np.array([p.source for p in texts]),
                   calibrate.band_index(np.array([len(p.text) for p in texts])),
                   featurize([p.text for p in texts], settings.bits))


@dataclass(frozen=True)
class Trained:
    weights: np.ndarray
    bias: float
    cut: float  # logit at and above which a text is flagged


def learnable(data: Dataset, selection: np.ndarray, settings: Settings) -> np.ndarray:
    """The selected texts the model may learn from (settings.not_learnt left out)."""
    keep = np.ones(len(selection), dtype=bool)
    for source, label in settings.not_learnt:
        keep &= ~((data.sources[selection] == source) & (data.labels[selection] == label))
    return selection[keep]


def train(data: Dataset, selection: np.ndarray, settings: Settings, seed: int) -> Trained:
    """Fit on the selected texts but a seeded share of their benign ones, and set the cut on those."""
    selection = learnable(data, selection, settings)
    benign = selection[data.labels[selection] == 0]
    rng = np.random.default_rng(seed)
    held = np.sort(rng.choice(benign, size=int(len(benign) * settings.calibration_share), replace=False))
    fitting = np.setdiff1d(selection, held)
    cap = np.where(data.labels[fitting] == 0, settings.benign_window_cap, 0)
    view = windows(data.features, fitting, settings.block, cap, seed)
    weights, bias = fit(view, data.labels[fitting], text_weights(data, fitting), settings.bits, settings.fit)
    logits = text_logits(data.features, held, settings.block, weights, bias)
    cut = calibrate.cut(logits, data.sources[held], data.bands[held], settings.target_fp)
    return Trained(weights, bias, cut)


def text_weights(data: Dataset, selection: np.ndarray) -> np.ndarray:
    """Half the weight to each class; within a class, each source by the square root of its
    number of texts (large sources count more, without drowning the small ones)."""
    weights = np.zeros(len(selection))
    labels, sources = data.labels[selection], data.sources[selection]
    for label in (0, 1):
        names, counts = np.unique(sources[labels == label], return_counts=True)
        shares = np.sqrt(counts) / np.sqrt(counts).sum()
        for name, count, share in zip(names, counts, shares):
            weights[(labels == label) & (sources == name)] = 0.5 * share / count
    return weights


def metadata(trained: Trained, settings: Settings, data: Dataset, directory: Path, seed: int, metrics: dict) -> dict:
    probability = float(1 / (1 + np.exp(-trained.cut)))
    return {
        "bits": settings.bits, "block": settings.block, "bias": trained.bias,
        "features": "tokens (runs of word or mark bytes), token pairs, 4-byte runs in words of 5+ bytes; "
                    "multiplicative hashing; each once per block",
        "calibration": {"threshold_probability": round(probability, 6), "threshold_logit": round(trained.cut, 6),
                        "default_threshold_score": DEFAULT_THRESHOLD,
                        "logit_shift": logit_shift_for(probability, DEFAULT_THRESHOLD),
                        "target_fp_per_group": settings.target_fp},
        "training": {"data": {"directory": directory.name, "sha256": corpus.digest(directory),
                              "texts": len(data.prompts), "sources": _counts(data)},
                     "seed": seed, "settings": asdict(settings)},
        "metrics": metrics,
    }


def _counts(data: Dataset) -> dict:
    names = sorted(set(data.sources.tolist()))
    return {name: {"injection": int(((data.sources == name) & (data.labels == 1)).sum()),
                   "benign": int(((data.sources == name) & (data.labels == 0)).sum())} for name in names}


def write(out: Path, trained: Trained, meta: dict) -> None:
    from extproc_lab.ai.card import model_card

    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, trained.weights, allow_pickle=False)  # .npy: no timestamps, same bytes every run
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    out.with_suffix(".md").write_text(model_card(meta))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m extproc_lab.ai.train_injection")
    parser.add_argument("data", type=Path, help="the labelled prompts: ../shared/data/llm")
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--seed", type=int, default=0, help="the shipped model's calibration draw")
    parser.add_argument("--seeds", default="1,2,3", help="evaluation: one run per seed and held-out source")
    parser.add_argument("--skip-evaluation", action="store_true")
    args = parser.parse_args(argv)
    settings = Settings()
    data = Dataset.load(args.data, settings)
    metrics: dict = {}
    if not args.skip_evaluation:
        from extproc_lab.ai.evaluate_injection import evaluate

        metrics = evaluate(data, settings, [int(s) for s in args.seeds.split(",")])
    trained = train(data, np.arange(len(data.prompts)), settings, args.seed)
    write(args.out, trained, metadata(trained, settings, data, args.data, args.seed, metrics))
    print(json.dumps(metrics.get("pooled", {}), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
