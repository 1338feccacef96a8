# The interface of the C kernel _ngram_bag.c, for the type checker (the extension has no Python source).
from collections.abc import Sequence

import numpy as np

class Kernel:
    heads: int  # number of output heads

    def __init__(
        self, *, orders: Sequence[int], salts: Sequence[int], multiplier: int, mix: int, bits: int,
        table: np.ndarray, w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray,
    ) -> None: ...
    def run(self, framed: Sequence[bytes], out: np.ndarray, /) -> None:
        """out[v, h] = probability of head h for framed value v (float32 [values, heads])."""
