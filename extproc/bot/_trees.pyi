# The interface of the C tree walker _trees.c, for the type checker (the extension has no Python source).
import numpy as np

class Trees:
    n_nodes: int
    n_trees: int
    n_features: int  # length of an input vector

    def __init__(
        self, *, features: np.ndarray, values: np.ndarray, modes: np.ndarray, missing_true: np.ndarray,
        next_false: np.ndarray, roots: np.ndarray, n_features: int,
    ) -> None: ...
    def probability(self, x: np.ndarray, /) -> float:
        """P(class 1) of one float32 vector of n_features (any C-contiguous shape)."""
    def probabilities(self, x: np.ndarray, out: np.ndarray, /) -> None:
        """out[r] = P(class 1) of row r of float32 x [rows, n_features]; out float32 [rows]."""
