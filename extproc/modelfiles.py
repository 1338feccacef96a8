"""Model files loaded once per file version: policy reloads reuse a loaded model (an ONNX session
is costly to build) unless the file on disk changed."""
from __future__ import annotations

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
