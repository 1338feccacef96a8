"""The bot model at serving time: an ONNX graph over the feature vector, P(automated) to 1-99.

Scores follow the convention 1 = automated, 99 = human; the metadata's calibration puts the
default threshold (30) on the operating point the training run chose.

Two engines compute the graph: a C tree walker (extproc.bot.native) when it was built and the graph
is exactly the one it implements, else onnxruntime, the reference. EXTPROC_BOT_ENGINE forces one:
``onnxruntime``, ``native`` (an error if it cannot run the model) or ``auto``.
"""
from __future__ import annotations

import json
import logging
import time
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from extproc.bot.features import FEATURE_NAMES, FEATURE_VERSION
from extproc.core.modelfiles import inference_clock, load_once, native_engine
from extproc.core.scoring import score_steps

MODELS_DIR = Path(__file__).resolve().parent.parent.parent / "models"
DEFAULT_MODEL = MODELS_DIR / "bot.onnx"
DEFAULT_THRESHOLD = 30
BOT_INFERENCE = inference_clock("bot")
ENGINE_VARIABLE = "EXTPROC_BOT_ENGINE"

log = logging.getLogger(__name__)


class ModelError(Exception):
    """The model or its metadata is missing, unreadable or built for other features."""


@dataclass(frozen=True)
class BotModel:
    path: Path
    metadata: dict
    session: Any  # an onnxruntime.InferenceSession (a library without types); None on the native engine
    input_name: str
    outputs: list[str]
    steps: list[float]  # ascending probabilities at which the score steps down
    run_options: object  # one for every run: onnxruntime makes a new one per run without it (2 us)
    engine: str = "onnxruntime"  # or "native"
    native: Callable[[np.ndarray], float] | None = None  # the native engine's probability(vector)

    def probability(self, vector: np.ndarray) -> float:
        """P(automated) of one float32 [1, features] vector."""
        if self.native is not None:
            started = time.perf_counter()
            probability = self.native(vector)
            BOT_INFERENCE.add(time.perf_counter() - started)
            return probability
        started = time.perf_counter()
        result = self.session.run(self.outputs, {self.input_name: vector}, self.run_options)
        BOT_INFERENCE.add(time.perf_counter() - started)
        return float(result[0][0, 1])

    def score(self, probability: float) -> int:
        return 99 - bisect_right(self.steps, probability)  # as scoring.scores, without numpy's overhead


def open_model(path: Path, engine: str | None = None) -> BotModel:
    """The model at path on one of modelfiles.ENGINES; None reads $EXTPROC_BOT_ENGINE (unset: auto)."""
    meta_path = path.with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text())
        names, version = tuple(meta["features"]), int(meta["feature_version"])
        shift = float(meta["calibration"]["logit_shift"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{meta_path}: unreadable model metadata: {exc}") from None
    if version != FEATURE_VERSION or names != FEATURE_NAMES:
        raise ModelError(f"{meta_path}: built for feature version {version}; this build computes {FEATURE_VERSION} "
                         "(retrain with python -m extproc_lab.bot.train)")
    steps = score_steps(shift).tolist()
    native = _native_engine(path, engine)
    if native is not None:
        return BotModel(path, meta, None, "features", ["probabilities"], steps, None, "native", native.probability)

    import onnxruntime as ort  # only policies with the bot layer on onnxruntime pay for it

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # one core per worker process; parallelism is processes
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"{path}: cannot load the ONNX model: {exc}") from None
    outputs = [o.name for o in session.get_outputs()]
    if "probabilities" not in outputs:
        raise ModelError(f"{path}: graph has no 'probabilities' output")
    return BotModel(path, meta, session, session.get_inputs()[0].name, ["probabilities"], steps, ort.RunOptions())


def _native_engine(path: Path, requested: str | None):
    def build():
        from extproc.bot.native import NativeEngine  # only when asked: onnxruntime does not need it

        return NativeEngine(path, len(FEATURE_NAMES))

    return native_engine("bot", path, ENGINE_VARIABLE, requested, build, ModelError, "tree walker", "C tree walker", log)


def load_model(path: str | Path | None = None) -> BotModel:
    return load_once(Path(path) if path else DEFAULT_MODEL, open_model, ModelError)
