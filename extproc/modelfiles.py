"""Model files loaded once per file version: policy reloads reuse a loaded model (an ONNX session
is costly to build) unless the file on disk changed."""
from __future__ import annotations

import bisect
import threading
from pathlib import Path
from typing import Callable, TypeVar

Model = TypeVar("Model")

_cache: dict[tuple[str, str, int], object] = {}
_lock = threading.Lock()


def load_once(path: Path, opener: Callable[[Path], Model], error: type[Exception]) -> Model:
    """opener(path), cached by the file's identity and mtime; a missing file raises ``error``."""
    try:
        key = (opener.__qualname__, str(path.resolve()), path.stat().st_mtime_ns)
    except OSError as exc:
        raise error(f"{path}: {exc.strerror or exc}") from None
    with _lock:
        if key not in _cache:
            _cache[key] = opener(path)
        return _cache[key]  # type: ignore[return-value]


def validated_model_path(path: str | None, loader: Callable[[str | None], object], error: type[Exception]) -> str | None:
    """For config validators: the path, or ValueError with why the model cannot be loaded."""
    try:
        loader(path)
    except error as exc:
        raise ValueError(str(exc)) from None
    return path


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
