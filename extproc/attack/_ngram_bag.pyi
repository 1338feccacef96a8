# The interface of the C kernel _ngram_bag.c, for the type checker (the extension has no Python source).
from collections.abc import Sequence

import numpy as np

class Lexer:
    def __init__(self, *, words: Sequence[bytes], classes: bytes, operators: Sequence[bytes], single: bytes) -> None: ...
    def classes(self, text: bytes, /) -> bytes:
        """One class byte per token of text (extproc.attack.tokens.token_classes, in C)."""

class Kernel:
    heads: int  # number of output heads

    def __init__(
        self, *, orders: Sequence[int], salts: Sequence[int], multiplier: int, mix: int, bits: int,
        table: np.ndarray, w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray, lexer: Lexer | None = None,
    ) -> None: ...
    def run(self, framed: Sequence[bytes], out: np.ndarray, /) -> None:
        """out[v, h] = probability of head h for framed value v (float32 [values, heads])."""
