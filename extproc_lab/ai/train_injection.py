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
from dataclasses import asdict
from pathlib import Path

import numpy as np

from extproc.ai_gateway.injection import DEFAULT_MODEL, DEFAULT_THRESHOLD
from extproc.core.scoring import logit_shift_for
from extproc_lab.ai import corpus
from extproc_lab.ai.card import model_card
from extproc_lab.ai.evaluate_injection import evaluate
from extproc_lab.ai.recipe import Dataset, Settings, Trained, train


def metadata(trained: Trained, settings: Settings, data: Dataset, directory: Path, seed: int, metrics: dict) -> dict:
    probability = float(1 / (1 + np.exp(-trained.cut)))
    return {
        "bits": settings.bits, "block": settings.block, "bias": trained.bias,
        "features": "tokens (runs of word or mark bytes), token pairs, 4-byte runs in words of 5+ bytes, "
                    "word classes and pairs of them; multiplicative hashing; each once per block",
        "word_classes": settings.class_lists(),
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
        metrics = evaluate(data, settings, [int(s) for s in args.seeds.split(",")])
    trained = train(data, np.arange(len(data.prompts)), settings, args.seed)
    write(args.out, trained, metadata(trained, settings, data, args.data, args.seed, metrics))
    print(json.dumps(metrics.get("pooled", {}), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
