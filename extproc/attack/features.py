"""Hashed character n-grams of many values at once, vectorised with numpy.

Values are joined with a separator byte that normalisation never leaves inside a value (all
whitespace became a space), so one pass of array arithmetic hashes every n-gram of every value.
An n-gram that would span two values gets bucket 0, whose embedding is fixed at zero. Each value
is framed by start/end markers and a flags character, so "starts with a quote", "ends with --"
and "needed double URL decoding" are n-grams like any other.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate

import numpy as np

SEPARATOR = 0x0A  # '\n': never inside a normalised value
START, END = b"\x02", b"\x03"
ONE = np.uint32(1)
MULTIPLIER = np.uint32(0x01000193)  # FNV prime: mixes each new byte into the rolling hash
# One odd constant per n-gram order so equal hashes of different orders land apart.
ORDER_SALTS = tuple(np.uint32(s) for s in (0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F, 0x165667B1,
                                            0xD3A2646D, 0xFD7046C5, 0xB55A4F09))


@dataclass(frozen=True)
class FeatureSpec:
    """Everything that must match between training and serving; stored in the model metadata."""

    orders: tuple[int, ...] = (1, 2, 3, 4, 5)
    bits: int = 15  # 2**bits buckets, plus bucket 0 for "no n-gram"
    version: int = 1


@dataclass(frozen=True)
class Batch:
    ids: np.ndarray  # [len(orders), n] int64 bucket per n-gram order and buffer position (C-contiguous)
    starts: np.ndarray  # [values] first buffer position of each value
    ends: np.ndarray  # [values] one past its last position
    scale: np.ndarray  # [values, 1] 1/sqrt(length): long values do not win by size alone


# Where a value sits changes what is normal for it: a path looks like a path, x-forwarded-for
# holds addresses. One character per kind of location, after the flags character.
LOCATION_KINDS = {"path": b"p", "query": b"q", "form": b"f", "json": b"j", "multipart": b"m", "cookie": b"c",
                  "header": b"h", "body": b"b", "name": b"n"}


def location_kind(location: str) -> bytes:
    """'query:q' -> b'q'; every argument or cookie name ('form-name', ...) -> b'n'."""
    head = location.partition(":")[0]
    if head.endswith("-name"):
        return LOCATION_KINDS["name"]
    return LOCATION_KINDS.get(head.partition("-")[0], b"b")


def frame(text: str, flags: int, location: str = "") -> bytes:
    flag_char = bytes((0x40 | (flags & 0x3F),))
    try:
        encoded = text.encode("utf-8", "surrogateescape")  # undecodable input bytes come back as they were
    except UnicodeEncodeError:  # a lone surrogate that was never a byte (e.g. from a JSON escape)
        encoded = text.encode("utf-8", "surrogatepass")
    return START + flag_char + location_kind(location) + encoded + END


class Scratch:
    """Reusable arrays for one thread's featurize calls.

    A 4 KB request needs ~250 KB of temporaries; allocated afresh, arrays that size come from
    mmap and cost page faults on every call (3x the arithmetic). Reuse them instead. The Batch
    returned with a scratch is only valid until the next call with the same scratch.
    """

    def __init__(self) -> None:
        self.rolling = np.empty((0, 0), dtype=np.uint32)
        self.ids = np.empty(0, dtype=np.int64)  # flat, so [orders, n] views are contiguous
        self.fits = np.empty((0, 0), dtype=bool)

    def arrays(self, rows: int, orders: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.rolling.shape[0] < rows or self.rolling.shape[1] < n or self.fits.shape[0] != orders:
            size = max(n, 2 * self.rolling.shape[1], 1024)
            self.rolling = np.empty((rows, size), dtype=np.uint32)
            self.ids = np.empty(orders * size, dtype=np.int64)
            self.fits = np.empty((orders, size), dtype=bool)
        return self.rolling[:rows, :n], self.ids[: orders * n].reshape(orders, n), self.fits[:, :n]


def featurize(framed: list[bytes], spec: FeatureSpec, scratch: Scratch | None = None) -> Batch:
    # Offsets in plain Python: for the handful of values of a typical request this is several
    # times cheaper than numpy's per-call overhead.
    lengths = [len(f) for f in framed]
    ends = [end - 1 for end in accumulate(length + 1 for length in lengths)]  # +1: separators
    starts = [end - length for end, length in zip(ends, lengths)]
    buffer = b"\n".join(framed)
    # room[i]: bytes from position i to the end of its value; an n-gram fits when room >= n.
    room = np.repeat(np.array(ends), np.array(lengths) + 1)[: len(buffer)] - np.arange(len(buffer))
    scale = np.array([[length ** -0.5] for length in lengths], dtype=np.float32)
    ids = _hash(buffer, room, spec, scratch or Scratch())
    return Batch(ids, np.array(starts), np.array(ends), scale)


def _hash(buffer: bytes, room: np.ndarray, spec: FeatureSpec, scratch: Scratch) -> np.ndarray:
    """Bucket ids [orders, n]: all orders share one rolling hash and one batch of array ops."""
    salts, order_column, rows, shift = _constants(spec)
    n, longest = len(buffer), int(rows[-1]) + 1
    data = np.frombuffer(buffer + b"\n" * longest, dtype=np.uint8)
    rolling, ids, fits = scratch.arrays(longest, len(rows), n)
    rolling[0] = data[:n]  # rolling[k-1]: hash of the k-gram starting at each position
    for k in range(1, longest):
        np.multiply(rolling[k - 1], MULTIPLIER, out=rolling[k])
        rolling[k] += data[k:k + n]
    hashed = rolling if len(rows) == longest else rolling[rows]
    hashed ^= salts
    hashed *= ORDER_SALTS[0]
    hashed >>= shift
    hashed += ONE
    # An n-gram that does not fit in its value (it would reach the next one) gets bucket 0.
    np.greater_equal(room, order_column, out=fits)
    np.multiply(hashed, fits, out=ids, casting="unsafe")
    return ids


@lru_cache(maxsize=8)
def _constants(spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.uint32]:
    orders = np.array(spec.orders)
    salts = np.array([ORDER_SALTS[k] for k in spec.orders], dtype=np.uint32)[:, None]
    return salts, orders[:, None], orders - 1, np.uint32(32 - spec.bits)
