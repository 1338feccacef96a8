"""Train and evaluate the prompt-injection scorer: one command, numpy only, reproducible.

    python -m extproc_lab.ai.train_injection [--per-template 300] [--out models/prompt-injection.npy]

Evaluation holds whole templates out: each fold trains without some injection and some benign
templates and reports on them, so the figures are about phrasings the model has not seen.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from extproc_lab.ai import prompts
from extproc.ai_gateway.injection import DEFAULT_MODEL, DEFAULT_THRESHOLD, features
from extproc.core.scoring import logit_shift_for

BITS, EPOCHS, RATE, L2, TARGET_FP, FOLDS = 16, 200, 2.0, 1e-5, 0.01, 4


def design(texts: list[str], bits: int) -> list[np.ndarray]:
    return [features(text, bits) for text in texts]


def fit(ids: list[np.ndarray], labels: np.ndarray, bits: int, seed: int = 3) -> tuple[np.ndarray, float]:
    """Logistic regression by full-batch gradient descent on the hashed features (deterministic)."""
    weights, bias = np.zeros(1 << bits, dtype=np.float64), 0.0
    norms = np.array([max(1.0, np.sqrt(len(i))) for i in ids])
    positive = labels.mean()
    sample_weight = np.where(labels == 1, 0.5 / positive, 0.5 / (1 - positive))
    rows = np.concatenate(ids)
    owner = np.repeat(np.arange(len(ids)), [len(i) for i in ids])
    for _ in range(EPOCHS):
        logits = bias + np.bincount(owner, weights=weights[rows], minlength=len(ids)) / norms
        error = (1 / (1 + np.exp(-logits)) - labels) * sample_weight / len(ids)  # mean weighted log-loss
        gradient = np.bincount(rows, weights=(error / norms)[owner], minlength=len(weights))
        weights -= RATE * (gradient + L2 * weights)
        bias -= RATE * error.sum()
    return weights.astype(np.float32), float(bias)


def probabilities(ids: list[np.ndarray], weights: np.ndarray, bias: float) -> np.ndarray:
    logits = np.array([bias + weights[i].sum() / max(1.0, np.sqrt(len(i))) for i in ids])
    return 1 / (1 + np.exp(-logits))


def operating_point(benign: np.ndarray, target_fp: float) -> float:
    ordered = np.sort(benign)
    return float(np.nextafter(ordered[min(len(ordered) - 1, int(len(ordered) * (1 - target_fp)))], 1.0))


def train_and_calibrate(records: list[dict]) -> tuple[np.ndarray, float, float]:
    """Fit on most templates; set the cut on benign templates held out of that fit, since the
    fitted ones score far lower than text the model has not seen."""
    benign = sorted({r["template"] for r in records if r["label"] == 0 and r["template"] != "background"})
    calibration = set(benign[1::3])
    fitting = [r for r in records if r["template"] not in calibration]
    weights, bias = fit(design([r["text"] for r in fitting], BITS), np.array([r["label"] for r in fitting]), BITS)
    held = [r["text"] for r in records if r["template"] in calibration]
    cut = operating_point(probabilities(design(held, BITS), weights, bias), TARGET_FP)
    return weights, bias, cut


def evaluate(records: list[dict]) -> dict:
    injection_templates = sorted(prompts.INJECTIONS)
    benign_templates = sorted(prompts.BENIGN)
    per_template: dict[str, dict] = {}
    for fold in range(FOLDS):
        held = set(injection_templates[fold::FOLDS]) | set(benign_templates[fold::FOLDS])
        train = [r for r in records if r["template"] not in held]
        test = [r for r in records if r["template"] in held]
        weights, bias, cut = train_and_calibrate(train)
        test_p = probabilities(design([r["text"] for r in test], BITS), weights, bias)
        for template in held:
            mask = np.array([r["template"] == template for r in test])
            per_template[template] = {"flagged": round(float((test_p[mask] >= cut).mean()), 4),
                                      "kind": "injection" if template in prompts.INJECTIONS else "benign"}
    detected = [v["flagged"] for v in per_template.values() if v["kind"] == "injection"]
    false_positive = [v["flagged"] for v in per_template.values() if v["kind"] == "benign"]
    return {"held_out_templates": per_template, "injection_detected_mean": round(float(np.mean(detected)), 4),
            "benign_flagged_mean": round(float(np.mean(false_positive)), 4), "folds": FOLDS}


def model_card(metadata: dict) -> str:
    metrics = metadata["metrics"]
    lines = [
        "# Prompt-injection scorer", "",
        "Scores user and tool messages 1-99 (low = injection): logistic regression over CRC-32-hashed words, word "
        f"pairs and character 4-grams (2^{metadata['bits']} weights), trained with numpy by "
        "`python -m extproc_lab.ai.train_injection` from the generated prompts of `extproc_lab/ai/prompts.py` "
        f"({metadata['training']['records']} records: injection and look-alike benign templates, plus ordinary "
        "faker text in four languages). Same code, same bytes.", "",
        f"Operating point: probability >= {metadata['calibration']['threshold_probability']} maps to score "
        f"{metadata['calibration']['default_threshold_score']}, set for {TARGET_FP:.0%} of benign templates held out "
        "of fitting.", "",
    ]
    if metrics:
        lines += [
            "## Quality: whole templates held out", "",
            f"{metrics['folds']} folds; each trains without a quarter of the injection and of the benign templates "
            f"and reports on them. Mean over held-out templates: injections detected "
            f"{metrics['injection_detected_mean']:.1%}, benign texts flagged {metrics['benign_flagged_mean']:.1%}.", "",
            "| template | kind | flagged |", "|---|---|---|",
            *(f"| {name} | {row['kind']} | {row['flagged']:.1%} |" for name, row in
              sorted(metrics["held_out_templates"].items(), key=lambda item: (item[1]["kind"], item[0]))), "",
            "The benign templates it flags most quote phrasing attackers use (\"ignore the previous email\"), "
            "which is what makes them hard; a route that carries such text can raise the threshold or log only.", "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m extproc_lab.ai.train_injection")
    parser.add_argument("--per-template", type=int, default=300)
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--skip-evaluation", action="store_true")
    args = parser.parse_args(argv)
    records = list(prompts.records(args.per_template)) + prompts.background(args.per_template * 20)
    metrics = {} if args.skip_evaluation else evaluate(records)
    weights, bias, cut = train_and_calibrate(records)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.out, weights, allow_pickle=False)  # .npy: no timestamps, same bytes every run
    metadata = {"bits": BITS, "bias": bias, "features": "words, word pairs, character 4-grams in words; CRC-32 hashed",
                "calibration": {"threshold_probability": round(cut, 6), "default_threshold_score": DEFAULT_THRESHOLD,
                                "logit_shift": logit_shift_for(cut, DEFAULT_THRESHOLD), "target_training_fp": TARGET_FP},
                "training": {"per_template": args.per_template, "records": len(records), "epochs": EPOCHS,
                             "templates": {"injection": sorted(prompts.INJECTIONS), "benign": sorted(prompts.BENIGN)}},
                "metrics": metrics}
    args.out.with_suffix(".json").write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    args.out.with_suffix(".md").write_text(model_card(metadata))
    print(json.dumps({k: v for k, v in metrics.items() if k != "held_out_templates"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
