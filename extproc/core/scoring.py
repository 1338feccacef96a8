"""Probabilities to the 1-99 scores every scoring layer reports (low = bad: attack, automated).

score = 1 + 98 * (1 - q) with q = sigmoid(logit(p) + shift), rounded, where p is the model's
probability of the bad class. The shift is chosen at training time so that the model's operating
point lands exactly on the layer's default threshold; the map is monotone, so scoring is one
search in the probabilities at which the score steps.
"""
from __future__ import annotations

import math
from typing import overload

import numpy as np


def score_steps(logit_shift: float) -> np.ndarray:
    """Ascending probabilities at which the score drops from k+1 to k (k = 98 .. 1)."""
    raw = np.arange(98, 0, -1) + 0.5  # unrounded score at each step
    odds = (98 / (raw - 1) - 1) / math.exp(logit_shift)  # invert raw = 1 + 98 / (1 + e^shift * odds)
    return odds / (1 + odds)


@overload
def scores(steps: np.ndarray, probabilities: float) -> int: ...
@overload
def scores(steps: np.ndarray, probabilities: np.ndarray | list[float]) -> list[int]: ...
def scores(steps: np.ndarray, probabilities: float | np.ndarray | list[float]) -> int | list[int]:
    """The 1-99 score of one probability, or the scores of several."""
    return (99 - np.searchsorted(steps, probabilities, side="right")).tolist()


def logit_shift_for(threshold_probability: float, threshold_score: int) -> float:
    """The shift that maps the chosen operating probability to a score of threshold_score."""
    q = 1 - (threshold_score - 1) / 98
    p = min(max(threshold_probability, 1e-7), 1 - 1e-7)
    return float(math.log(q / (1 - q)) - math.log(p / (1 - p)))
