"""Prompt-injection scoring: a linear model over hashed tokens, token pairs, 4-byte runs and word
classes, read window by window.

A text is cut into blocks of ``block`` tokens (extproc.ai_gateway.prompt_features says what a token
and its features are); each window is two neighbouring blocks, and its logit is the bias plus the
sum of its features' weights (each counted once per block) over the square root of their number.
The text's logit is its highest window's: an injection is a passage, and a long document is judged
by its most suspicious passage rather than by its length. The score is that logit's probability
mapped to 1-99 like every score here (low = injection).

Cost is linear in the text and bounded per byte: one pass of a C kernel (_prompt_scan.c) when it was
built, NumPy otherwise. A scan may stop at the first window whose score is at or below a given
score (the verdict is certain by then).

Trained by ``python -m extproc_lab.ai.train_injection`` (numpy only) on ../shared/data/llm, evaluated
with whole sources held out: models/prompt-injection.md.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from extproc.ai_gateway import prompt_features
from extproc.core.modelfiles import inference_clock
from extproc.core.scoring import score_steps, scores

MODELS_DIR = Path(__file__).resolve().parent.parent.parent / "models"
DEFAULT_MODEL = MODELS_DIR / "prompt-injection.npy"  # weights; bias, block and calibration in the .json
DEFAULT_THRESHOLD = 20
ENGINES = ("auto", "native", "numpy")
ENGINE_VARIABLE = "EXTPROC_INJECTION_ENGINE"
INJECTION_INFERENCE = inference_clock("prompt_injection")
log = logging.getLogger(__name__)


class Engine(Protocol):
    def scan(self, text: str | bytes, bias: float, stop: float, /) -> tuple[float, int]: ...


class NumpyEngine:
    """The kernel's computation in NumPy, for installs without a C compiler (some 12 times slower)."""

    def __init__(self, weights: np.ndarray, bits: int, block: int, classes: prompt_features.WordClasses) -> None:
        self.weights, self.bits, self.block, self.classes = weights, bits, block, classes

    def scan(self, text: str | bytes, bias: float, stop: float, /) -> tuple[float, int]:
        return prompt_features.scan(text, self.weights, self.bits, self.block, bias, stop, self.classes)


@dataclass(frozen=True)
class InjectionModel:
    weights: np.ndarray  # float32 [2^bits]
    bias: float
    bits: int
    block: int  # tokens per block; a window is two blocks
    steps: np.ndarray  # probabilities at which the score steps down (core/scoring.py)
    metadata: dict
    engine: Engine
    engine_name: str

    def logit(self, text: str, stop: float = math.inf) -> float:
        """The text's highest window logit, or the first window's at or above stop."""
        started = time.perf_counter()
        try:
            # The str itself: the kernel reads (and the str keeps) its UTF-8 form, which the
            # sensitive-data scan's encode() then copies instead of encoding again.
            logit, _ = self.engine.scan(text, self.bias, stop)
        except UnicodeEncodeError:  # a lone surrogate (JSON bodies never have one: json_body refuses it)
            logit, _ = self.engine.scan(text.encode("utf-8", "surrogatepass"), self.bias, stop)
        INJECTION_INFERENCE.add(time.perf_counter() - started)
        return logit

    def score(self, text: str, stop_at: int | None = None) -> int:
        """1-99, low = injection. With stop_at, the scan ends at the first window scoring stop_at or
        lower: the score is then that window's (at or below stop_at), not necessarily the lowest."""
        stop = math.inf if stop_at is None else self.logit_at_score(stop_at)
        return scores(self.steps, _sigmoid(self.logit(text, stop)))

    def logit_at_score(self, score: int) -> float:
        """The lowest logit whose score is at or below score (a hair above, so that a window the
        kernel stops at scores at or below it whatever the rounding)."""
        if score >= 99:
            return -math.inf
        probability = float(self.steps[98 - max(1, score)])
        return math.log(probability / (1 - probability)) + 1e-9 if 0 < probability < 1 else math.inf


def _sigmoid(logit: float) -> float:
    return 1.0 / (1.0 + math.exp(-logit)) if logit > -700 else 0.0


def _engine(weights: np.ndarray, bits: int, block: int, classes: prompt_features.WordClasses,
            path: Path) -> tuple[Engine, str]:
    requested = os.environ.get(ENGINE_VARIABLE) or "auto"
    if requested not in ENGINES:
        raise ValueError(f"{ENGINE_VARIABLE}={requested!r}: expected one of {', '.join(ENGINES)}")
    if requested != "numpy":
        try:
            from extproc.ai_gateway._prompt_scan import Scanner
        except ImportError as exc:  # not built: no C compiler at install
            if requested == "native":
                raise ValueError(f"{path}: the prompt-scan kernel is not built ({exc})") from None
            log.warning("prompt-injection model %s: numpy engine, the C kernel is not built (%s); "
                        "reinstall with a C compiler", path, exc)
        else:
            log.info("prompt-injection model %s: native engine (C kernel)", path)
            table = dict(zip(classes.keys.tolist(), classes.ids.tolist()))
            return Scanner(weights=weights, bits=bits, block=block, classes=table), "native"
    return NumpyEngine(weights, bits, block, classes), "numpy"


@lru_cache(maxsize=4)
def load_injection_model(path: str | None = None) -> InjectionModel:
    model_path = Path(path) if path else DEFAULT_MODEL
    try:
        weights = np.load(model_path, allow_pickle=False)
        metadata = json.loads(model_path.with_suffix(".json").read_text())
        bias, bits, block = float(metadata["bias"]), int(metadata["bits"]), int(metadata["block"])
        shift = float(metadata["calibration"]["logit_shift"])
        classes = prompt_features.WordClasses(metadata.get("word_classes", []))  # a model without: none
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{model_path}: cannot load the prompt-injection model: {exc}") from None
    if not 1 <= bits <= 24 or block < 1 or weights.shape != (1 << bits,) or weights.dtype.kind != "f":
        raise ValueError(f"{model_path}: {weights.shape} {weights.dtype} weights, the metadata says 2^{bits} "
                         f"and blocks of {block}")
    weights = np.ascontiguousarray(weights, dtype=np.float32)
    engine, name = _engine(weights, bits, block, classes, model_path)
    return InjectionModel(weights, bias, bits, block, score_steps(shift), metadata, engine, name)
