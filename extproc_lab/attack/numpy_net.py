"""The attack model's network and its training step in NumPy: an embedding bag over hashed n-gram
ids (times each value's ``scale``), one hidden ReLU layer, one sigmoid per head; BCE with
per-example weights; Adam.

A few hundred thousand values train in seconds per epoch on one CPU thread, so a deep-learning
framework (and its gigabytes of GPU libraries) buys nothing here. Everything is float32 and
computed in a fixed order: the same inputs and seed give byte-identical weights.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BETAS = (0.9, 0.999)  # Adam's usual moments
EPSILON = 1e-8


def init_weights(rows: int, dim: int, hidden: int, heads: int, seed: int) -> dict[str, np.ndarray]:
    """Embeddings ~ N(0, 1) (row 0, "no n-gram", fixed at zero); each layer's weights and biases
    ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((rows, dim), dtype=np.float32)
    table[0] = 0.0
    bound1, bound2 = dim ** -0.5, hidden ** -0.5
    return {
        "table": table,
        "w1": rng.uniform(-bound1, bound1, (dim, hidden)).astype(np.float32),
        "b1": rng.uniform(-bound1, bound1, hidden).astype(np.float32),
        "w2": rng.uniform(-bound2, bound2, (hidden, heads)).astype(np.float32),
        "b2": rng.uniform(-bound2, bound2, heads).astype(np.float32),
    }


@dataclass
class Bags:
    """One batch of values as n-gram id lists: ``flat`` holds them back to back, ``segment`` the
    value (row of the batch) of each id."""

    flat: np.ndarray  # int64 ids, zero never among them
    segment: np.ndarray  # int64 row of each id
    scale: np.ndarray  # float32 [batch]

    @classmethod
    def of(cls, rows: list[np.ndarray], scale: np.ndarray) -> "Bags":
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        flat = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        return cls(flat, np.repeat(np.arange(len(rows)), lengths), scale.astype(np.float32))


def pooled(table: np.ndarray, bags: Bags) -> np.ndarray:
    """Per value: the sum of its n-grams' embeddings, times its scale. [batch, dim]"""
    out = np.zeros((len(bags.scale), table.shape[1]), dtype=table.dtype)
    np.add.at(out, bags.segment, table[bags.flat])
    return out * bags.scale[:, None]


def bce_with_logits(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Elementwise binary cross-entropy on logits, without overflow."""
    return np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return (0.5 * (1 + np.tanh(0.5 * x))).astype(np.float32)


def loss_and_gradients(weights: dict[str, np.ndarray], bags: Bags, targets: np.ndarray,
                       example_weights: np.ndarray) -> tuple[float, dict[str, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """mean over the batch of (mean over heads of BCE) * weight; gradients of the dense layers,
    and the embedding gradient as (touched rows, their gradient): only a batch's n-grams have one."""
    x = pooled(weights["table"], bags)
    pre = x @ weights["w1"] + weights["b1"]
    hidden = np.maximum(pre, 0)
    logits = hidden @ weights["w2"] + weights["b2"]
    batch, heads = targets.shape
    per_example = bce_with_logits(logits, targets).mean(axis=1)
    loss = float((per_example * example_weights).mean())
    d_logits = (sigmoid(logits) - targets) * (example_weights[:, None] / np.float32(batch * heads))
    d_hidden = (d_logits @ weights["w2"].T) * (pre > 0)
    d_pooled = (d_hidden @ weights["w1"].T) * bags.scale[:, None]
    rows, inverse = np.unique(bags.flat, return_inverse=True)
    per_id = d_pooled[bags.segment]
    d_rows = np.empty((len(rows), per_id.shape[1]), dtype=np.float32)
    for column in range(per_id.shape[1]):  # bincount: a scatter-add many times faster than np.add.at
        d_rows[:, column] = np.bincount(inverse, weights=per_id[:, column], minlength=len(rows))
    grads = {
        "w1": (x.T @ d_hidden).astype(np.float32), "b1": d_hidden.sum(axis=0, dtype=np.float32),
        "w2": (hidden.T @ d_logits).astype(np.float32), "b2": d_logits.sum(axis=0, dtype=np.float32),
    }
    return loss, grads, (rows, d_rows)


@dataclass
class Adam:
    """Adam (the usual betas and epsilon) over dense parameters. The embedding's gradient comes
    as touched rows; every row's moments still decay each step, as with a dense gradient."""

    learning_rate: float
    step: int = 0
    moments: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def update(self, weights: dict[str, np.ndarray], grads: dict[str, np.ndarray],
               sparse: tuple[np.ndarray, np.ndarray]) -> None:
        self.step += 1
        rows, d_rows = sparse
        table_grad = np.zeros_like(weights["table"])
        table_grad[rows] = d_rows
        table_grad[0] = 0.0  # "no n-gram" stays zero
        for name, grad in {**grads, "table": table_grad}.items():
            self._apply(name, weights[name], grad)

    def _apply(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        beta1, beta2 = BETAS
        if name not in self.moments:
            self.moments[name] = (np.zeros_like(param), np.zeros_like(param))
        first, second = self.moments[name]
        first *= np.float32(beta1)
        first += np.float32(1 - beta1) * grad
        second *= np.float32(beta2)
        second += np.float32(1 - beta2) * grad * grad
        correction1, correction2 = 1 - beta1 ** self.step, 1 - beta2 ** self.step
        denominator = np.sqrt(second) / np.float32(np.sqrt(correction2))
        denominator += np.float32(EPSILON)
        param -= np.float32(self.learning_rate / correction1) * first / denominator


def averaged(members: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One network whose logits are the mean of the members' logits, in the members' own graph.

    Embeddings side by side ([rows, k*dim]), the hidden layers block-diagonal ([k*dim, k*hidden]),
    the output layer stacked and divided by k: the same graph shape, so both serving engines run
    it unchanged. Averaging seeds removes most of what one seed's initialisation decides alone.
    """
    count = len(members)
    dim, hidden = members[0]["w1"].shape
    w1 = np.zeros((count * dim, count * hidden), dtype=np.float32)
    for i, member in enumerate(members):
        w1[i * dim:(i + 1) * dim, i * hidden:(i + 1) * hidden] = member["w1"]
    return {
        "table": np.concatenate([m["table"] for m in members], axis=1),
        "w1": w1,
        "b1": np.concatenate([m["b1"] for m in members]),
        "w2": (np.concatenate([m["w2"] for m in members]) / np.float32(count)).astype(np.float32),
        "b2": (np.sum([m["b2"] for m in members], axis=0) / np.float32(count)).astype(np.float32),
    }
