"""Per-value results remembered across requests: the model is a pure function of a value.

Real traffic repeats its values: the same user agents, referers, consent cookies and search
terms arrive again and again. Scoring each once per worker skips normalisation, hashing and
inference for them. Memory is bounded: short values only, a fixed number of entries, least
recently used evicted first.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import numpy as np

from extproc.attack.features import frame, location_kind
from extproc.attack.normalize import normalize

MAX_KEY_CHARS = 512  # longer values are rarely repeated and would cost memory


class ValueMemo:
    """(location kind, raw text) -> probability row. Not thread-safe: one per serving thread."""

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self.rows: OrderedDict[tuple[bytes, str], np.ndarray] = OrderedDict()
        self.hits = self.misses = 0

    def probabilities(
        self, texts: list[str], locations: list[str], model: Callable[[list[bytes]], np.ndarray]
    ) -> np.ndarray:
        """[values, heads]: remembered rows where possible, the model for the rest in one batch."""
        keys = [(location_kind(location), text) for text, location in zip(texts, locations, strict=True)]
        rows: list[np.ndarray | None] = [self._get(key) for key in keys]
        missing = [i for i, row in enumerate(rows) if row is None]
        if missing:
            fresh = model([frame(*normalize(texts[i]), locations[i]) for i in missing])
            for position, i in enumerate(missing):
                rows[i] = fresh[position]
                self._put(keys[i], fresh[position])
        return np.vstack(rows)

    def _get(self, key: tuple[bytes, str]) -> np.ndarray | None:
        row = self.rows.get(key)
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        self.rows.move_to_end(key)
        return row

    def _put(self, key: tuple[bytes, str], row: np.ndarray) -> None:
        if self.entries <= 0 or len(key[1]) > MAX_KEY_CHARS:
            return
        self.rows[key] = row.copy()  # the model's output buffer is reused by the next run
        if len(self.rows) > self.entries:
            self.rows.popitem(last=False)
