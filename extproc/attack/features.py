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

from extproc.attack.tokens import classes_of

SEPARATOR = 0x0A  # '\n': never inside a normalised value
START, END = b"\x02", b"\x03"
TOKENS_MARKER = b"\x04"  # between a framed value and its token classes (tokens.py)
FLAG_CHARS = tuple(bytes((0x40 | flags,)) for flags in range(64))  # the flags as one printable byte
ONE = np.uint32(1)
MULTIPLIER = np.uint32(0x01000193)  # FNV prime: mixes each new byte into the rolling hash
INVERSE = np.uint32(pow(int(MULTIPLIER), -1, 1 << 32))  # MULTIPLIER is odd: invertible modulo 2**32
# One odd constant per n-gram order so equal hashes of different orders land apart.
ORDER_SALTS = tuple(np.uint32(s) for s in (0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F, 0x165667B1,
                                            0xD3A2646D, 0xFD7046C5, 0xB55A4F09))


@dataclass(frozen=True)
class FeatureSpec:
    """Everything that must match between training and serving; stored in the model metadata."""

    orders: tuple[int, ...] = (1, 2, 3, 4, 5)
    bits: int = 15  # 2**bits buckets, plus bucket 0 for "no n-gram"
    version: int = 1
    tokens: int = 0  # 0: characters only; else the version of the token-class channel (tokens.py)


@dataclass(frozen=True)
class Batch:
    ids: np.ndarray  # [len(orders), n] int64 bucket per n-gram order and buffer position (C-contiguous)
    starts: np.ndarray  # [values] first buffer position of each value
    ends: np.ndarray  # [values] one past its last position
    scale: np.ndarray  # [values, 1] 1/sqrt(length): long values do not win by size alone


# Where a value sits changes what is normal for it: a path looks like a path, x-forwarded-for
# holds addresses. One character per kind of location, after the flags character.
LOCATION_KINDS = {"path": b"p", "query": b"q", "form": b"f", "json": b"j", "multipart": b"m", "cookie": b"c",
                  "header": b"h", "body": b"b", "name": b"n",
                  # a path segment's decoded reading: data the application decodes and uses, like a
                  # parameter's value (it must not take the operating point of ordinary paths)
                  "segment": b"q"}


def location_kind(location: str) -> bytes:
    """'query:q' -> b'q'; every argument or cookie name ('form-name', ...) -> b'n'."""
    head = location.partition(":")[0]
    if head.endswith("-name"):
        return LOCATION_KINDS["name"]
    return LOCATION_KINDS.get(head.partition("-")[0], b"b")


def frame(text: str, flags: int, location: str = "") -> bytes:
    try:
        encoded = text.encode("utf-8", "surrogateescape")  # undecodable input bytes come back as they were
    except UnicodeEncodeError:  # a lone surrogate that was never a byte (e.g. from a JSON escape)
        encoded = text.encode("utf-8", "surrogatepass")
    return b"".join((START, FLAG_CHARS[flags & 0x3F], location_kind(location), encoded, END))


class Scratch:
    """Reusable arrays for one thread's featurize calls.

    A 4 KB request needs ~250 KB of temporaries; allocated afresh, arrays that size come from
    mmap and cost page faults on every call (3x the arithmetic). Reuse them instead. The Batch
    returned with a scratch is only valid until the next call with the same scratch.
    """

    def __init__(self) -> None:
        self._grow(0, 0, 0)

    def arrays(self, n: int, longest: int, orders: int) -> tuple[np.ndarray, ...]:
        """prefix, inverse powers and powers of MULTIPLIER for n positions plus padding; hashed, ids."""
        padded = n + longest
        if len(self.powers) < padded or self.hashed.size < longest * n or self.ids.size < orders * n:
            self._grow(max(padded, 2 * len(self.powers), 1024), longest, orders)
        return (self.prefix[: padded + 1], self.inverse[:padded], self.powers[:padded],
                self.hashed[: longest * n].reshape(longest, n), self.ids[: orders * n].reshape(orders, n))

    def _grow(self, size: int, longest: int, orders: int) -> None:
        self.prefix = np.zeros(size + 1, dtype=np.uint32)  # prefix[0] stays 0
        self.inverse, self.powers = _powers(INVERSE, size), _powers(MULTIPLIER, size)
        self.hashed = np.empty(longest * size, dtype=np.uint32)  # flat, so [rows, n] views are contiguous
        self.ids = np.empty(orders * size, dtype=np.int64)


def with_tokens(framed: bytes) -> bytes:
    """A framed value followed by the token classes of its text (between the 3-byte head and END)."""
    return b"".join((framed, TOKENS_MARKER, classes_of(framed[3:-1])))


def featurize(framed: list[bytes], spec: FeatureSpec, scratch: Scratch | None = None) -> Batch:
    if spec.tokens:
        framed = [with_tokens(f) for f in framed]
    # Offsets in plain Python: for the handful of values of a typical request this is several
    # times cheaper than numpy's per-call overhead.
    lengths = [len(f) for f in framed]
    ends = [end - 1 for end in accumulate(length + 1 for length in lengths)]  # +1: separators
    starts = [end - length for end, length in zip(ends, lengths)]
    ids = _hash(b"\n".join(framed), lengths, spec, scratch or Scratch())
    bounds = np.array([starts, ends])  # one conversion for both
    scale = np.array([length ** -0.5 for length in lengths], dtype=np.float32)[:, None]
    return Batch(ids, bounds[0], bounds[1], scale)


def _hash(buffer: bytes, lengths: list[int], spec: FeatureSpec, scratch: Scratch) -> np.ndarray:
    """Bucket ids [orders, n]: all orders and positions in one batch of array ops.

    The hash of the k-gram at i is sum(byte[i+j] * MULTIPLIER**(k-1-j)), modulo 2**32 (the
    rolling hash h = h * MULTIPLIER + byte). With prefix[i] = sum(byte[t] * INVERSE**t, t < i)
    it is (prefix[i+k] - prefix[i]) * MULTIPLIER**(i+k-1): a few passes over the buffer for
    every order at once, however long the values. uint32 arithmetic wraps exactly like the hash.
    """
    salts, order_column, rows, shift = _constants(spec)
    n, longest = len(buffer), int(rows[-1]) + 1
    data = np.frombuffer(buffer + b"\n" * longest, dtype=np.uint8)
    prefix, inverse, powers, hashed, ids = scratch.arrays(n, longest, len(rows))
    np.add.accumulate(np.multiply(data, inverse), dtype=np.uint32, out=prefix[1:])  # np.cumsum: 3x slower
    np.subtract(_diagonals(prefix[1:], longest, n), prefix[:n], out=hashed)  # row k-1: prefix[i+k] - prefix[i]
    hashed *= _diagonals(powers, longest, n)  # row k-1: MULTIPLIER**(i+k-1)
    if len(rows) < longest:
        hashed = hashed[rows]
    hashed ^= salts
    hashed *= ORDER_SALTS[0]
    hashed >>= shift
    hashed += ONE
    # An n-gram that does not fit in its value (it would reach the next one) gets bucket 0.
    np.multiply(hashed, _room(lengths, longest) >= order_column, out=ids, casting="unsafe")
    return ids


def _diagonals(array: np.ndarray, rows: int, n: int) -> np.ndarray:
    """[rows, n] view with [r, i] = array[r + i], nothing copied."""
    step = array.itemsize
    return np.ndarray((rows, n), dtype=array.dtype, buffer=array, strides=(step, step))


def _room(lengths: list[int], longest: int) -> np.ndarray:
    """room[i]: bytes from position i to the end of its value, capped at the longest order (an
    n-gram fits when room >= n). Built as bytes: for a few values cheaper than array ops."""
    cap, tail = bytes((longest,)), bytes(range(longest, -1, -1))
    room = b"".join(cap * (length - longest) + tail[max(0, longest - length):] for length in lengths)
    return np.frombuffer(room, dtype=np.uint8, count=len(room) - 1)  # no separator after the last value


def _powers(base: np.uint32, size: int) -> np.ndarray:
    """base**t modulo 2**32 for t < size."""
    factors = np.full(size, base, dtype=np.uint32)
    factors[:1] = 1
    return np.cumprod(factors, dtype=np.uint32)


@lru_cache(maxsize=8)
def _constants(spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.uint32]:
    orders = np.array(spec.orders)
    salts = np.array([ORDER_SALTS[k] for k in spec.orders], dtype=np.uint32)[:, None]
    return salts, orders.astype(np.uint8)[:, None], orders - 1, np.uint32(32 - spec.bits)
