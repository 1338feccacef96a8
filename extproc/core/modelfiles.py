"""Model files loaded once per file version: policy reloads reuse a loaded model (an ONNX session
is costly to build) unless the file on disk changed."""
from __future__ import annotations

import bisect
import logging
import os
from pathlib import Path
from typing import Callable, TypeVar

from extproc.core.durable import DURABLE

Model = TypeVar("Model")

def load_once(path: Path, opener: Callable[[Path], Model], error: type[Exception]) -> Model:
    """opener(path), cached by the file's identity and mtime; a missing file raises ``error``."""
    try:
        key = (opener.__qualname__, str(path.resolve()), path.stat().st_mtime_ns)
    except OSError as exc:
        raise error(f"{path}: {exc.strerror or exc}") from None
    return DURABLE.get("model_files", key, lambda: opener(path))


def validated_model_path(path: str | None, loader: Callable[[str | None], object], error: type[Exception]) -> str | None:
    """For config validators: the path, or ValueError with why the model cannot be loaded."""
    try:
        loader(path)
    except error as exc:
        raise ValueError(str(exc)) from None
    return path


# -- engines: a native kernel of the graph, or onnxruntime ---------------------------------------

ENGINES = ("auto", "native", "onnxruntime")


class NativeUnsupported(Exception):
    """A native engine cannot run this model file (the reason is the message): onnxruntime will."""


def native_engine(name: str, path: Path, variable: str, requested: str | None, build: Callable[[], Model],
                  error: type[Exception], kernel: str, described: str,
                  log: logging.Logger) -> Model | None:
    """build()'s native engine for the model at path, or None for onnxruntime; logged with why.

    requested (else $variable, else "auto") is one of ENGINES: "auto" falls back to onnxruntime
    when the C extension was not built (no compiler at install) or cannot run this graph;
    "native" makes that an error."""
    requested = requested or os.environ.get(variable) or "auto"
    if requested not in ENGINES:
        raise error(f"{variable}={requested!r}: expected one of {', '.join(ENGINES)}")
    if requested == "onnxruntime":
        log.info("%s model %s: onnxruntime engine (requested)", name, path)
        return None
    try:
        engine = build()
    except (ImportError, NativeUnsupported) as exc:
        built = isinstance(exc, ImportError)
        reason = (f"the native {kernel} is not built ({exc}); reinstall with a C compiler" if built
                  else f"the native {kernel} cannot run this graph: {exc}")
        if requested == "native":
            raise error(f"{path}: {reason}") from None
        log.log(logging.WARNING if built else logging.INFO, "%s model %s: onnxruntime engine, %s", name, path, reason)
        return None
    log.info("%s model %s: native engine (%s)", name, path, described)
    return engine


# -- inference time, for ``extproc_model_inference_seconds{model}`` --------------------------------

INFERENCE_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2)


class InferenceClock:
    """Counts of one model's inference times: a histogram kept in plain ints and floats, so the
    hot path pays two clock reads and a bisect; the metrics endpoint reads it at scrape time."""

    def __init__(self) -> None:
        self.buckets = [0] * (len(INFERENCE_BUCKETS) + 1)
        self.total = 0.0
        self.count = 0

    def add(self, seconds: float) -> None:
        self.buckets[bisect.bisect_left(INFERENCE_BUCKETS, seconds)] += 1
        self.total += seconds
        self.count += 1


inference: dict[str, InferenceClock] = {}


def inference_clock(model: str) -> InferenceClock:
    return inference.setdefault(model, InferenceClock())
