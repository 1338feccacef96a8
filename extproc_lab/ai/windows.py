"""Texts as windows of tokens, for training and evaluating the prompt-injection model in bulk.

Serving scores a text window by window (extproc.ai_gateway.injection): blocks of ``block`` tokens,
each window two neighbouring blocks (a text of one block or less is one window), a window's logit
the bias plus the sum of its features' weights (each once per block) over the square root of their
number, and the text's logit the highest of its windows'. Here the same is computed for many texts at once, from their
features computed once (extproc.ai_gateway.prompt_features, the kernel's reference).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from extproc.ai_gateway.prompt_features import NO_CLASSES, WordClasses, token_features


@dataclass(frozen=True)
class Featurized:
    """Every text's features, concatenated: text i owns ids[offsets[i]:offsets[i + 1]]."""

    ids: np.ndarray  # int32 bucket of each feature
    token: np.ndarray  # int32 token (within its text) that owns each feature
    offsets: np.ndarray  # int64 [texts + 1]
    tokens: np.ndarray  # int64 tokens per text

    def __len__(self) -> int:
        return len(self.tokens)


def featurize(texts: list[str], bits: int, classes: WordClasses = NO_CLASSES) -> Featurized:
    ids, owners, counts = [], [], []
    for text in texts:
        feature_ids, owner, count = token_features(text, bits, classes)
        ids.append(feature_ids.astype(np.int32))
        owners.append(owner.astype(np.int32))
        counts.append(count)
    sizes = np.array([len(i) for i in ids], dtype=np.int64)
    return Featurized(np.concatenate(ids), np.concatenate(owners), np.concatenate(([0], np.cumsum(sizes))),
                      np.array(counts, dtype=np.int64))


@dataclass(frozen=True)
class Windows:
    """Some texts' windows: features by block, and each window's two blocks (the same twice for a
    window of one block, counted once)."""

    ids: np.ndarray  # int32 bucket of each feature
    block: np.ndarray  # int64 block of each feature
    blocks: int
    first: np.ndarray  # int64 [windows] first block
    second: np.ndarray  # int64 [windows] second block, or -1
    text: np.ndarray  # int64 [windows] position of the window's text in the selection
    counts: np.ndarray  # float64 [windows] features in the window

    def logits(self, weights: np.ndarray, bias: float) -> np.ndarray:
        sums = np.bincount(self.block, weights=weights[self.ids], minlength=self.blocks)
        total = sums[self.first] + np.where(self.second >= 0, sums[self.second], 0.0)
        return bias + total / np.sqrt(np.maximum(1.0, self.counts))

    def gradient(self, error: np.ndarray, size: int) -> np.ndarray:
        """d loss / d weights, given d loss / d logit of each window."""
        scaled = error / np.sqrt(np.maximum(1.0, self.counts))
        per_block = np.bincount(self.first, weights=scaled, minlength=self.blocks)
        has_second = self.second >= 0
        per_block += np.bincount(self.second[has_second], weights=scaled[has_second], minlength=self.blocks)
        return np.bincount(self.ids, weights=per_block[self.block], minlength=size)


def windows(data: Featurized, selection: np.ndarray, block: int, cap: np.ndarray | None = None,
            seed: int = 0) -> Windows:
    """The windows of the selected texts; cap[i] > 0 keeps at most that many of text i's windows
    (drawn with the seed; the others' features are dropped), for training on long documents."""
    selection = np.asarray(selection, dtype=np.int64)
    blocks_per_text = np.maximum(1, -(-data.tokens[selection] // block))
    block_base = np.concatenate(([0], np.cumsum(blocks_per_text)))
    window_counts = np.where(blocks_per_text == 1, 1, blocks_per_text - 1)
    text = np.repeat(np.arange(len(selection)), window_counts)
    within = np.arange(window_counts.sum()) - np.repeat(np.cumsum(window_counts) - window_counts, window_counts)
    first = block_base[text] + within
    second = np.where(blocks_per_text[text] == 1, -1, first + 1)
    if cap is not None:
        keep = _capped(window_counts, np.asarray(cap)[np.arange(len(selection))], seed)
        text, first, second = text[keep], first[keep], second[keep]
    starts, ends = data.offsets[selection], data.offsets[selection + 1]
    lengths = ends - starts
    rows = np.repeat(starts, lengths) + (np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths))
    feature_block = np.repeat(block_base[:-1], lengths) + data.token[rows] // block
    used = np.zeros(block_base[-1], dtype=bool)
    used[first] = True
    used[second[second >= 0]] = True
    kept_rows = used[feature_block]
    compact = np.cumsum(used) - 1
    ids, feature_block = _once_per_block(data.ids[rows[kept_rows]], compact[feature_block[kept_rows]])
    first, second = compact[first], np.where(second >= 0, compact[np.maximum(second, 0)], -1)
    per_block = np.bincount(feature_block, minlength=int(used.sum())).astype(np.float64)
    counts = per_block[first] + np.where(second >= 0, per_block[np.maximum(second, 0)], 0.0)
    return Windows(ids, feature_block, int(used.sum()), first, second, text, counts)


def _once_per_block(ids: np.ndarray, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each (block, bucket) pair once, as serving counts them."""
    keys = np.sort(block.astype(np.int64) << 32 | ids.astype(np.int64))
    keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if len(keys) else keys
    return (keys & 0xFFFFFFFF).astype(np.int32), keys >> 32


def _capped(window_counts: np.ndarray, cap: np.ndarray, seed: int) -> np.ndarray:
    """A mask over the windows keeping at most cap[i] of text i's (all where cap[i] <= 0)."""
    rng = np.random.default_rng(seed)
    keep = np.ones(int(window_counts.sum()), dtype=bool)
    base = np.concatenate(([0], np.cumsum(window_counts)))
    for i in np.flatnonzero((cap > 0) & (window_counts > cap)):
        dropped = np.ones(window_counts[i], dtype=bool)
        dropped[rng.choice(window_counts[i], size=cap[i], replace=False)] = False
        keep[base[i]:base[i + 1]] = ~dropped
    return keep


def text_logits(data: Featurized, selection: np.ndarray, block: int, weights: np.ndarray, bias: float) -> np.ndarray:
    """Each selected text's logit: the highest of its windows'."""
    view = windows(data, selection, block)
    logits = view.logits(weights, bias)
    best = np.full(len(selection), -np.inf)
    np.maximum.at(best, view.text, logits)
    return best
