"""Per-value results remembered across requests: the model is a pure function of a value.

Real traffic repeats its values: the same user agents, referers, consent cookies and search
terms arrive again and again. Scoring each once per worker skips normalisation, hashing and
inference for them. Memory is bounded: short values only, a fixed number of entries, least
recently used evicted first.
"""
from __future__ import annotations

from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import cast

from extproc.attack.features import frame, location_kind
from extproc.attack.normalize import normalize

MAX_KEY_CHARS = 512  # longer values are rarely repeated and would cost memory

Rows = Callable[[list[bytes]], Sequence[Sequence[float]]]  # framed values -> one result row each


class ValueMemo:
    """(location kind, raw text) -> result row. Not thread-safe: one per serving thread."""

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self.rows: OrderedDict[tuple[bytes, str], array] = OrderedDict()
        self.hits = self.misses = 0

    def results(self, texts: list[str], locations: list[str], score: Rows) -> Sequence[Sequence[float]]:
        """One row per value: remembered rows where possible, score() for the rest in one batch."""
        if self.entries <= 0:
            return score([frame(*normalize(text), location) for text, location in zip(texts, locations, strict=True)])
        keys = [(location_kind(location), text) for text, location in zip(texts, locations, strict=True)]
        rows: list[Sequence[float] | None] = [self._get(key) for key in keys]
        missing = [i for i, row in enumerate(rows) if row is None]
        if missing:
            fresh = score([frame(*normalize(texts[i]), locations[i]) for i in missing])
            for position, i in enumerate(missing):
                rows[i] = fresh[position]
                self._put(keys[i], fresh[position])
        return cast(list[Sequence[float]], rows)  # every None was filled just above

    def _get(self, key: tuple[bytes, str]) -> array | None:
        row = self.rows.get(key)
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        self.rows.move_to_end(key)
        return row

    def _put(self, key: tuple[bytes, str], row: Sequence[float]) -> None:
        if len(key[1]) > MAX_KEY_CHARS:
            return
        self.rows[key] = array("f", row)  # float32 values: exact, and a third of a list's memory
        if len(self.rows) > self.entries:
            self.rows.popitem(last=False)
