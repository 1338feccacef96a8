"""The prompt-injection model's features, in NumPy: the reference the C kernel (_prompt_scan.c) matches.

A text is read as UTF-8 bytes, ASCII letters lower-cased (other bytes as they are, so scanning
costs no case mapping). Tokens are maximal runs of word bytes (ASCII letters and digits, and every
non-ASCII byte except those of Unicode's general punctuation U+2000-U+203F and the no-break space,
so curly quotes and dashes separate words as their ASCII forms do) or of mark bytes
(``<>[]#|/!{}()$``, which delimiters and templates are made of). Each token owns its features:
itself, the pair it forms with the token before, and, for word tokens longer than 4 bytes, every
4-byte run inside it. Each feature hashes (murmur3's finaliser over a rolling hash, salted per
kind) into one of 2^bits buckets.

Word classes (optional, given by the model as lists of words): a word token in a class (say "ignore",
"disregard", "vergiss" as one class; "previous", "vorherigen" as another) also owns the class
itself and the pair of its class with that of the nearest classed word at most CLASS_GAP tokens
before it. These generalise across words, languages and the filler between them ("ignore all the
previous instructions" and "vergiss alle vorherigen Anweisungen" share their class pairs).

Owning features per token is what makes windows cheap: a window's sum is the sum over its tokens.
"""
from __future__ import annotations

import numpy as np

MULTIPLIER = 0x01000193  # the rolling hash: h = h * MULTIPLIER + byte (mod 2^32)
TOKEN_SALT = (0x2545F491, 0x6C8E9CF5)  # word token, mark token
UNIGRAM_SALT, PAIR_SALT, GRAM_SALT = 0x3C6EF372, 0x1B873593, 0x7F4A7C15
PAIR_MULTIPLIER = 0x9E3779B1
BUCKET_MULTIPLIER = 0x9E3779B1  # a feature's bucket: the top bits of its value times this (mod 2^32)
MIN_GRAM_WORD = 5  # 4-grams are taken inside word tokens at least this long
CLASS_SALT = 0x5BD1E995  # a class feature: fmix32(CLASS_SALT + previous class * 256 + class)
CLASS_GAP = 4  # a class pair joins classed words at most this many tokens apart
MAX_CLASSES = 255
SEP, WORD, MARK = 0, 1, 2
MASK32 = np.uint64(0xFFFFFFFF)

_CLASS = np.zeros(256, dtype=np.uint8)
_CLASS[list(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")] = WORD
_CLASS[0x80:] = WORD
_CLASS[list(b"<>[]#|/!{}()$")] = MARK
_LOWER = np.arange(256, dtype=np.uint8)
_LOWER[65:91] += 32


def fmix32(x: np.ndarray) -> np.ndarray:
    """murmur3's 32-bit finaliser, element-wise on uint32."""
    x = x.astype(np.uint32)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x85EBCA6B)
    x ^= x >> np.uint32(13)
    x *= np.uint32(0xC2B2AE35)
    x ^= x >> np.uint32(16)
    return x


def bucket(values: np.ndarray, shift: np.uint32) -> np.ndarray:
    """Multiplicative hashing: the top bits of values * BUCKET_MULTIPLIER (mod 2^32)."""
    return (values.astype(np.uint32) * np.uint32(BUCKET_MULTIPLIER)) >> shift


def byte_classes(data: np.ndarray) -> np.ndarray:
    """SEP, WORD or MARK per byte; U+2000-U+203F (E2 80 xx) and U+00A0 (C2 A0) separate."""
    classes = _CLASS[data]
    n = len(data)
    if n >= 2:
        for lead, second, width in ((0xE2, 0x80, 3), (0xC2, 0xA0, 2)):
            starts = np.flatnonzero((data[:-1] == lead) & (data[1:] == second))
            for offset in range(width):
                classes[np.minimum(starts + offset, n - 1)] = SEP
    return classes


class WordClasses:
    """Words by class (1..MAX_CLASSES), as the token values the scan computes: keys sorted, ids alike."""

    def __init__(self, classes: list[list[str]]) -> None:
        if len(classes) > MAX_CLASSES:
            raise ValueError(f"at most {MAX_CLASSES} word classes")
        values: dict[int, int] = {}
        for number, words in enumerate(classes, start=1):
            for word in words:
                data = word.lower().encode()
                if not data or (byte_classes(np.frombuffer(data, dtype=np.uint8)) != WORD).any():
                    raise ValueError(f"word class {number}: {word!r} is not one word token")
                values.setdefault(int(token_value(data)), number)  # a word in two classes: the first
        order = sorted(values)
        self.keys = np.array(order, dtype=np.uint32)
        self.ids = np.array([values[key] for key in order], dtype=np.uint8)

    def of(self, tokens: np.ndarray) -> np.ndarray:
        """The class of each token value (0: none)."""
        if not len(self.keys):
            return np.zeros(len(tokens), dtype=np.uint8)
        at = np.minimum(np.searchsorted(self.keys, tokens), len(self.keys) - 1)
        return np.where(self.keys[at] == tokens, self.ids[at], 0).astype(np.uint8)


NO_CLASSES = WordClasses([])


def token_value(word: bytes) -> np.uint32:
    """A word token's value, as _token_values computes it (word is lower-case already)."""
    data = np.frombuffer(word, dtype=np.uint8)
    return _token_values(data, np.array([0]), np.array([len(data)]), np.array([WORD], dtype=np.uint8))[0]


def token_features(text: bytes | str, bits: int,
                   word_classes: WordClasses = NO_CLASSES) -> tuple[np.ndarray, np.ndarray, int]:
    """(bucket ids, the token owning each, number of tokens) of one text."""
    if isinstance(text, str):
        text = text.encode("utf-8", "surrogatepass")
    raw = np.frombuffer(text, dtype=np.uint8)
    classes = byte_classes(raw)
    data = _LOWER[raw]
    change = np.flatnonzero(np.diff(classes.astype(np.int8), prepend=np.int8(SEP), append=np.int8(SEP)))
    starts_all, ends_all = change[:-1], change[1:]
    kinds = classes[starts_all]
    keep = kinds != SEP
    starts, ends, kinds = starts_all[keep], ends_all[keep], kinds[keep]
    count = len(starts)
    if count == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), 0
    tokens = _token_values(data, starts, ends, kinds)
    shift = np.uint32(32 - bits)
    owner = np.arange(count)
    ids = [bucket(tokens ^ np.uint32(UNIGRAM_SALT), shift)]
    owners = [owner]
    pairs = tokens[:-1].astype(np.uint64) * np.uint64(PAIR_MULTIPLIER) + tokens[1:].astype(np.uint64)
    ids.append(bucket((pairs & MASK32).astype(np.uint32) ^ np.uint32(PAIR_SALT), shift))
    owners.append(owner[1:])
    grams, gram_owner = _grams(data, starts, ends, kinds)
    ids.append(bucket(grams ^ np.uint32(GRAM_SALT), shift))
    owners.append(gram_owner)
    class_ids, class_owner = _class_features(word_classes.of(tokens) * (kinds == WORD))
    ids.append(bucket(class_ids, shift))
    owners.append(class_owner)
    return np.concatenate(ids).astype(np.int64), np.concatenate(owners).astype(np.int64), count


def _token_values(data: np.ndarray, starts: np.ndarray, ends: np.ndarray, kinds: np.ndarray) -> np.ndarray:
    """fmix32(rolling hash + length * PAIR_MULTIPLIER + kind salt) per token."""
    lengths = ends - starts
    position = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    exponent = np.repeat(lengths, lengths) - 1 - position
    powers = np.cumprod(np.full(int(lengths.max()), MULTIPLIER, dtype=np.uint64))  # wraps mod 2^64
    powers = np.concatenate(([np.uint64(1)], powers[:-1]))
    values = data[np.repeat(starts, lengths) + position].astype(np.uint64) * powers[exponent]
    rolling = np.add.reduceat(values, np.cumsum(lengths) - lengths) if len(values) else values
    salts = np.where(kinds == WORD, np.uint64(TOKEN_SALT[0]), np.uint64(TOKEN_SALT[1]))
    mixed = rolling + lengths.astype(np.uint64) * np.uint64(PAIR_MULTIPLIER) + salts
    return fmix32((mixed & MASK32).astype(np.uint32))


def _class_features(token_class: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each classed token's class, and its pair with the nearest classed token at most CLASS_GAP
    tokens before (values before bucketing), with the token owning each."""
    at = np.flatnonzero(token_class)
    current = token_class[at].astype(np.uint32)
    paired = np.flatnonzero(np.diff(at) <= CLASS_GAP) + 1  # positions in `at` with a close predecessor
    previous = current[paired - 1]
    values = np.concatenate((current, previous * np.uint32(256) + current[paired])) + np.uint32(CLASS_SALT)
    return fmix32(values.astype(np.uint32)), np.concatenate((at, at[paired]))


def _grams(data: np.ndarray, starts: np.ndarray, ends: np.ndarray, kinds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every 4-byte run inside word tokens of MIN_GRAM_WORD bytes or more (little-endian uint32)."""
    lengths = ends - starts
    long_words = np.flatnonzero((kinds == WORD) & (lengths >= MIN_GRAM_WORD))
    per_word = lengths[long_words] - 3
    first = np.repeat(starts[long_words], per_word)
    offset = np.arange(per_word.sum()) - np.repeat(np.cumsum(per_word) - per_word, per_word)
    at = first + offset
    grams = (data[at].astype(np.uint32) | data[at + 1].astype(np.uint32) << np.uint32(8)
             | data[at + 2].astype(np.uint32) << np.uint32(16) | data[at + 3].astype(np.uint32) << np.uint32(24))
    return grams, np.repeat(long_words, per_word)


def scan(text: bytes | str, weights: np.ndarray, bits: int, block: int, bias: float, stop: float,
         classes: WordClasses = NO_CLASSES) -> tuple[float, int]:
    """(logit, windows): the highest window logit of the text, or the first at or above stop and
    the windows up to it. What the C kernel returns, computed from token_features."""
    ids, owner, count = token_features(text, bits, classes)
    logits = window_logits(ids, owner, count, weights, bias, block)
    crossing = np.flatnonzero(logits >= stop)
    if len(crossing):
        return float(logits[crossing[0]]), int(crossing[0]) + 1
    return float(logits.max()), len(logits)


def window_logits(ids: np.ndarray, owner: np.ndarray, count: int, weights: np.ndarray, bias: float,
                  block: int) -> np.ndarray:
    """Each window's logit in order: bias + its features' weights summed (each feature once per
    block) over the square root of their number."""
    blocks = max(1, -(-count // block))
    bits = max(1, int(len(weights) - 1).bit_length())
    # (block, bucket) pairs, each kept once; sorted as uint32 when they fit (twice as fast)
    keys = (owner // block) << bits | ids
    keys = np.sort(keys.astype(np.uint32) if blocks <= 1 << (32 - bits) else keys)
    unique = keys[np.concatenate(([True], keys[1:] != keys[:-1]))].astype(np.int64) if len(keys) else keys
    block_of, bucket = unique >> bits, unique & ((1 << bits) - 1)
    sums = np.bincount(block_of, weights=weights[bucket], minlength=blocks)
    counts = np.bincount(block_of, minlength=blocks).astype(np.float64)
    if blocks > 1:
        sums, counts = sums[:-1] + sums[1:], counts[:-1] + counts[1:]
    return bias + sums / np.sqrt(np.maximum(1.0, counts))
