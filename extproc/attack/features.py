"""Hashed character n-grams of many values at once, vectorised with numpy.

Values are joined with a separator byte that normalisation never leaves in a value (all
whitespace became a space), so one pass of array arithmetic hashes every n-gram of every value;
n-grams that would span two values are masked out. Each value is framed by start/end markers so
that "starts with '<'" and "ends with '--'" are n-grams of their own.
"""
from __future__ import annotations

import numpy as np

SEPARATOR = 0x0A  # '\n': never inside a normalised value
START, END = b"\x02", b"\x03"
ORDERS = (1, 2, 3, 4, 5)
MULTIPLIER = np.uint32(0x01000193)  # FNV prime: mixes each new byte into the rolling hash
# One odd constant per n-gram order so the orders land in different buckets.
ORDER_SALTS = tuple(np.uint32(s) for s in (0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F, 0x165667B1, 0xD3A2646C))


def encode_values(texts: list[str], flags: list[int]) -> bytes:
    """One buffer: START flag-char text END, separated by SEPARATOR."""
    framed = [
        START + bytes((0x40 | (flag & 0x3F),)) + (b"\x7f" if flag & 0x40 else b"") + text.encode("utf-8", "surrogateescape") + END
        for text, flag in zip(texts, flags)
    ]
    return b"\n".join(framed)


def hashed_ngrams(buffer: bytes, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(bucket ids, value index) for every n-gram of every value in the buffer."""
    data = np.frombuffer(buffer, dtype=np.uint8).astype(np.uint32)
    is_separator = data == SEPARATOR
    # prefix[i] = separators before position i: the value index of position i.
    prefix = np.zeros(len(data) + 1, dtype=np.int64)
    np.cumsum(is_separator, out=prefix[1:])
    shift = np.uint32(32 - bits)
    ids, owners = [], []
    rolling = np.zeros(len(data), dtype=np.uint32)
    for order in ORDERS:
        count = len(data) - order + 1
        if count <= 0:
            break
        rolling = rolling[:count] * MULTIPLIER + data[order - 1 :]
        inside = prefix[order : order + count] == prefix[:count]  # no separator in the window
        starts = prefix[:count][inside]
        mixed = (rolling[inside] ^ ORDER_SALTS[order]) * ORDER_SALTS[0]
        ids.append((mixed >> shift).astype(np.int64))
        owners.append(starts)
    if not ids:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(ids), np.concatenate(owners)
