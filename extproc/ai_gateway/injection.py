"""Prompt-injection scoring: a linear model over hashed word and character n-grams.

Text is lower-cased and split into words; the features are the words, adjacent word pairs and
the character 4-grams inside words (so paraphrases, other languages and split words still share
features). Each feature hashes (CRC-32, stable across processes) into one of 2^bits weights; the
score is the logistic of their sum, mapped to 1-99 like every score here (low = injection).
Trained by ``python -m extproc_lab.ai.train_injection`` (numpy only), evaluated on held-out templates.
"""
from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from extproc.core.scoring import score_steps, scores

MODELS_DIR = Path(__file__).resolve().parent.parent.parent / "models"
DEFAULT_MODEL = MODELS_DIR / "prompt-injection.npy"  # weights; bias and calibration in the .json
DEFAULT_THRESHOLD = 20
WORD = re.compile(r"[^\W_]+|[<>\[\]#|/!{}()$]+", re.UNICODE)
MAX_CHARS = 8192  # longer texts are scored in windows of this size; the worst window counts


def features(text: str, bits: int) -> np.ndarray:
    """Bucket ids of the text's features (with repeats: a repeated phrase weighs more)."""
    words = WORD.findall(text.lower())
    grams = [*words, *(f"{a} {b}" for a, b in zip(words, words[1:]))]
    grams += [f"#{w[i:i + 4]}" for w in words if len(w) > 4 for i in range(len(w) - 3)]
    mask = (1 << bits) - 1
    return np.fromiter((zlib.crc32(g.encode("utf-8", "surrogatepass")) & mask for g in grams), dtype=np.int64,
                       count=len(grams))


@dataclass(frozen=True)
class InjectionModel:
    weights: np.ndarray  # float32 [2^bits]
    bias: float
    bits: int
    steps: np.ndarray
    metadata: dict

    def probability(self, text: str) -> float:
        worst = 0.0
        for start in range(0, max(1, len(text)), MAX_CHARS):
            ids = features(text[start:start + MAX_CHARS], self.bits)
            logit = self.bias + float(self.weights[ids].sum()) / max(1.0, np.sqrt(len(ids)))
            worst = max(worst, 1.0 / (1.0 + np.exp(-logit)))
        return worst

    def score(self, text: str) -> int:
        return scores(self.steps, self.probability(text))


@lru_cache(maxsize=4)
def load_injection_model(path: str | None = None) -> InjectionModel:
    model_path = Path(path) if path else DEFAULT_MODEL
    try:
        weights = np.load(model_path, allow_pickle=False)
        metadata = json.loads(model_path.with_suffix(".json").read_text())
        bias, bits = float(metadata["bias"]), int(metadata["bits"])
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{model_path}: cannot load the prompt-injection model: {exc}") from None
    if weights.shape != (1 << bits,):
        raise ValueError(f"{model_path}: {weights.shape[0]} weights, the metadata says 2^{bits}")
    return InjectionModel(weights.astype(np.float32), bias, bits,
                          score_steps(float(metadata["calibration"]["logit_shift"])), metadata)
