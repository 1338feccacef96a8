"""Fitting the prompt-injection model's weights: logistic regression over windows, numpy only.

An injection is usually a sentence or a paragraph, and a document that carries one is benign
everywhere else, so a text's label cannot be every window's label. Each injection teaches its
most injection-like window (chosen again every epoch from the current weights: multiple-instance
learning, the max being what serving scores). Each benign text teaches all its windows (their
mean) and, as much again, its most injection-like window, the one that would flag it.

Full-batch Adam from zero weights, in a fixed order: the same inputs give the same bytes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from extproc_lab.ai.windows import Windows


@dataclass(frozen=True)
class Recipe:
    epochs: int = 120
    rate: float = 0.05
    l2: float = 1e-3  # ten times 1e-4: held-out benign texts flagged less at the same cut (models/prompt-injection.md)
    benign_max_weight: float = 1.0  # the max window of a benign text, beside the mean of all


def fit(view: Windows, labels: np.ndarray, text_weights: np.ndarray, bits: int,
        recipe: Recipe = Recipe()) -> tuple[np.ndarray, float]:
    """(float32 weights [2^bits], bias) for the texts of view (labels and text_weights per text)."""
    size = 1 << bits
    params = np.zeros(size + 1)  # weights, then the bias
    moment, square = np.zeros_like(params), np.zeros_like(params)
    positive_window = labels[view.text] == 1
    per_text = np.bincount(view.text, minlength=len(labels)).astype(np.float64)
    mean_weight = np.where(positive_window, 0.0, text_weights[view.text] / per_text[view.text])
    beta1, beta2 = 0.9, 0.999
    for epoch in range(1, recipe.epochs + 1):
        logits = view.logits(params[:size], params[size])
        best = _best_window(view.text, logits, len(labels))
        probability = 1.0 / (1.0 + np.exp(-logits))
        error = probability * mean_weight  # every benign window, as their text's mean
        chosen = best[best >= 0]
        target = labels[view.text[chosen]].astype(np.float64)
        scale = np.where(target == 1, 1.0, recipe.benign_max_weight) * text_weights[view.text[chosen]]
        np.add.at(error, chosen, (probability[chosen] - target) * scale)
        gradient = np.empty_like(params)
        gradient[:size] = view.gradient(error, size) + recipe.l2 * params[:size]
        gradient[size] = error.sum()
        moment = beta1 * moment + (1 - beta1) * gradient
        square = beta2 * square + (1 - beta2) * gradient * gradient
        step = moment / (1 - beta1 ** epoch) / (np.sqrt(square / (1 - beta2 ** epoch)) + 1e-8)
        params -= recipe.rate * step
    return params[:size].astype(np.float32), float(params[size])


def _best_window(text: np.ndarray, logits: np.ndarray, texts: int) -> np.ndarray:
    """Index of each text's highest window (-1 for a text without windows); the first on ties."""
    order = np.lexsort((-logits, text))  # by text, then highest first
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = text[order][1:] != text[order][:-1]
    best = np.full(texts, -1, dtype=np.int64)
    best[text[order][starts]] = order[starts]
    return best
