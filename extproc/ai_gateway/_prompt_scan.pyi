# The interface of the C kernel _prompt_scan.c, for the type checker (the extension has no Python source).
import numpy as np

class Scanner:
    bits: int  # 2^bits weights
    block: int  # tokens per block; a window is two neighbouring blocks

    def __init__(self, *, weights: np.ndarray, bits: int, block: int, classes: dict[int, int] | None = None) -> None:
        """classes: word token value -> word class 1..255 (prompt_features.WordClasses)."""
    def scan(self, text: str | bytes, bias: float, stop: float, /) -> tuple[float, int]:
        """(logit, windows read): the highest window logit of the text (UTF-8), or the first at or above stop.
        A str is read in its own UTF-8 form (UnicodeEncodeError for a lone surrogate)."""
