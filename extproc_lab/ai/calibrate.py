"""The operating point of the prompt-injection model, set on benign texts held out of fitting.

A long document is read as many windows and flagged by its worst one, so one cut for all texts
flags long documents more often than short prompts. The cut is therefore set per group, one
group per benign source and length band, and the highest group's cut is the one used: every
group, long documents included, is flagged at most at the target rate.
"""
from __future__ import annotations

import numpy as np

from extproc_lab.ai.corpus import BANDS

MIN_GROUP = 50  # smaller groups cannot place a cut of a fraction of a percent; they are still reported


def band_index(lengths: np.ndarray) -> np.ndarray:
    """Each text's length band (corpus.BANDS) by its number of characters."""
    edges = np.array([high for _, _, high in BANDS[:-1]])
    return np.searchsorted(edges, lengths, side="left")


def cut(logits: np.ndarray, sources: np.ndarray, bands: np.ndarray, target: float) -> float:
    """The lowest logit that flags at most `target` of every (source, band) group of benign texts."""
    highest = -np.inf
    for source in np.unique(sources):
        for band in np.unique(bands):
            group = np.sort(logits[(sources == source) & (bands == band)])
            if len(group) >= MIN_GROUP:
                # flagged: logit >= cut; at most floor(target * n) of the group may reach it
                allowed = int(np.floor(target * len(group)))
                highest = max(highest, float(np.nextafter(group[len(group) - 1 - allowed], np.inf)))
    if highest == -np.inf:
        raise ValueError("no group of benign texts large enough to calibrate on")
    return highest
