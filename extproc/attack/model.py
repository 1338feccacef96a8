"""The attack model at serving time: ONNX graph + metadata, probabilities to 1-99 scores.

The graph (built by ``extproc_lab.attack.train``) maps hashed n-gram ids of a batch of values to one
probability per head and value: ``attack`` (any family) and one head per family. Scores follow
the convention 1 = certainly an attack, 99 = clean; the metadata's calibration puts the default
threshold (20) exactly where the training run chose its operating point.

Two engines compute the graph: a fused C kernel (extproc.attack.native) when it was built and the
graph is exactly the one it implements, else onnxruntime, the reference. EXTPROC_ATTACK_ENGINE
forces one: ``onnxruntime``, ``native`` (an error if it cannot run the model) or ``auto``.
"""
from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from extproc.attack import tokens
from extproc.attack.features import FLAG_CHARS, LOCATION_KINDS, FeatureSpec, Scratch, featurize
from extproc.core import scoring
from extproc.core.scoring import score_steps
from extproc.core.modelfiles import inference_clock, load_once, native_engine

MODELS_DIR = Path(__file__).resolve().parent.parent.parent / "models"
PLAIN_PATH = re.compile(rb"[a-z0-9/._~,+=:@! -]*")
PLAIN_FLAGS = FLAG_CHARS[0]
DEFAULT_MODEL = MODELS_DIR / "attack.onnx"
SUPPORTED_FEATURE_VERSION = 1
DEFAULT_THRESHOLD = 20
ATTACK_INFERENCE = inference_clock("attack")
OUTPUTS = ["probabilities"]  # named: run(None, ...) looks the names up on every call
ENGINE_VARIABLE = "EXTPROC_ATTACK_ENGINE"
# The graph's output heads in order: any attack, then one per family (training writes this order).
HEADS = ("attack", "sqli", "xss", "rce", "lfi", "ssti", "ssrf", "xxe", "nosqli", "ldapi", "crlf", "other")

log = logging.getLogger(__name__)


class ModelError(Exception):
    """The model or its metadata is missing, unreadable or of an unsupported feature version."""


@dataclass(frozen=True)
class ModelInfo:
    spec: FeatureSpec
    heads: tuple[str, ...]
    logit_shift: float  # added to each logit so the operating point lands on DEFAULT_THRESHOLD
    metadata: dict
    # Per location kind (features.LOCATION_KINDS), added to the attack logit of values there: URL
    # paths have their own operating point, set on real paths (extproc_lab/attack/calibrate_paths.py).
    location_offsets: Mapping[bytes, float] = field(default_factory=dict)


class AttackModel:
    def __init__(self, path: Path, engine: str | None = None) -> None:
        """engine: one of modelfiles.ENGINES; None reads $EXTPROC_ATTACK_ENGINE (unset: auto)."""
        self.path = path
        self.info = _read_metadata(path)
        self._steps = score_steps(self.info.logit_shift).tolist()
        self._scratch_by_thread = threading.local()
        self._native = None
        self.engine = self._choose_engine(engine)
        if self.engine == "onnxruntime":
            self.session = self._onnxruntime_session()

    def _choose_engine(self, requested: str | None) -> str:
        self._native = native_engine(
            "attack", self.path, ENGINE_VARIABLE, requested, self._native_engine,
            ModelError, "kernel", "fused C kernel", log)
        return "onnxruntime" if self._native is None else "native"

    def _native_engine(self):
        from extproc.attack.native import NativeEngine  # only when asked: onnxruntime does not need it

        return NativeEngine(self.path, self.info.spec, len(self.info.heads))

    def _onnxruntime_session(self):
        import onnxruntime as ort  # imported here: only policies with the attack layer need it

        path = self.path
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one core per worker process; parallelism is processes
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.enable_mem_pattern = False  # planned for one input shape; every request has its own
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"{path}: cannot load the ONNX model: {exc}") from None
        if {i.name for i in session.get_inputs()} != {"ids", "starts", "ends", "scale"}:
            raise ModelError(f"{path}: graph inputs are not those of an attack model")
        return session

    @property
    def _scratch(self) -> Scratch:
        scratch = getattr(self._scratch_by_thread, "scratch", None)
        if scratch is None:
            scratch = self._scratch_by_thread.scratch = Scratch()
        return scratch

    @property
    def heads(self) -> tuple[str, ...]:
        return self.info.heads

    def probabilities(self, framed: list[bytes]) -> np.ndarray:
        """[values, heads] probabilities for framed, normalised values (see features.frame), the attack
        head calibrated per location."""
        result = self.raw_probabilities(framed)
        offsets = self.info.location_offsets
        if offsets:  # a few values at most: plain Python beats numpy's per-call cost here
            for row, value in enumerate(framed):
                offset = offsets.get(value[2:3])
                if offset is not None and plain_path(value):
                    attack = min(max(float(result[row, 0]), 1e-7), 1 - 1e-7)
                    result[row, 0] = 1 / (1 + math.exp(-(math.log(attack / (1 - attack)) + offset)))
        return result

    def raw_probabilities(self, framed: list[bytes]) -> np.ndarray:
        """[values, heads] probabilities as the network gives them."""
        if self._native is not None:
            started = time.perf_counter()  # the kernel's time includes hashing: it is fused with inference
            result = self._native.probabilities(framed)
        else:
            batch = featurize(framed, self.info.spec, self._scratch)
            feeds = {"ids": batch.ids.reshape(-1), "starts": batch.starts, "ends": batch.ends, "scale": batch.scale}
            started = time.perf_counter()
            result = self.session.run(OUTPUTS, feeds)[0]
        ATTACK_INFERENCE.add(time.perf_counter() - started)
        return result

    def scores(self, probabilities: Iterable[float]) -> list[int]:
        """1-99 integer scores of probabilities: low means attack.

        score = 1 + 98 * (1 - q) with q = sigmoid(logit(p) + shift), rounded. The map is monotone,
        so it is one search in the precomputed probabilities where the score steps. float(): a
        numpy float32 would compare with the steps rounded to float32.
        """
        return [99 - bisect_right(self._steps, float(p)) for p in probabilities]


def load_model(path: str | Path | None = None) -> AttackModel:
    return load_once(Path(path) if path else DEFAULT_MODEL, AttackModel, ModelError)


def plain_path(framed: bytes) -> bool:
    """A framed value made only of what ordinary paths are made of (words, digits, '/', '.', '-',
    '_', '~', ',', '+', '=', ':', '@', '!', spaces), with no decoding needed: its location's own
    operating point applies. A quote, '<', ';', '|', '$', '(' or a decoded form is judged as any
    value is."""
    return framed[1:2] == PLAIN_FLAGS and PLAIN_PATH.fullmatch(framed, 3, len(framed) - 1) is not None


def metadata_path(model_path: Path) -> Path:
    return model_path.with_suffix(".json")


def logit_shift_for(threshold_probability: float) -> float:
    """The shift that maps the chosen operating probability to a score of DEFAULT_THRESHOLD."""
    return scoring.logit_shift_for(threshold_probability, DEFAULT_THRESHOLD)


def _read_metadata(path: Path) -> ModelInfo:
    meta_path = metadata_path(path)
    try:
        meta = json.loads(meta_path.read_text())
        spec = meta["feature_spec"]
        info = ModelInfo(
            spec=FeatureSpec(orders=tuple(spec["orders"]), bits=int(spec["bits"]), version=int(spec["version"]),
                             tokens=int(spec.get("tokens", 0))),
            heads=tuple(meta["heads"]),
            logit_shift=float(meta["calibration"]["logit_shift"]),
            metadata=meta,
            location_offsets={LOCATION_KINDS[name]: float(place["logit_offset"])
                              for name, place in meta["calibration"].get("locations", {}).items()},
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{meta_path}: unreadable model metadata: {exc}") from None
    if info.spec.version != SUPPORTED_FEATURE_VERSION:
        raise ModelError(
            f"{meta_path}: feature spec version {info.spec.version}, this build reads {SUPPORTED_FEATURE_VERSION}"
        )
    if info.spec.tokens:
        _check_lexicon(meta_path, info.spec.tokens, meta["feature_spec"].get("lexicon_sha256"))
    return info


def _check_lexicon(meta_path: Path, version: int, digest: str | None) -> None:
    """A model with the token channel learnt the classes of one lexer and one lexicon: refuse others."""
    if version != tokens.VERSION:
        raise ModelError(f"{meta_path}: token channel version {version}, this build lexes version {tokens.VERSION}")
    if digest != tokens.lexicon().digest:
        raise ModelError(f"{meta_path}: the model was trained with another {tokens.LEXICON_FILE.name} "
                         f"(sha256 {digest}, this build's {tokens.lexicon().digest}): retrain it")
