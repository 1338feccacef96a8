"""The shipped recipe of the prompt-injection model: its settings, the data it reads, and one
training run (fit on some texts, set the cut on benign texts held out of fitting). The trainer
(train_injection) runs it on every source; the evaluation (evaluate_injection) on all but one."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from extproc.ai_gateway.prompt_features import NO_CLASSES, WordClasses
from extproc_lab.ai import calibrate, corpus, prompts, word_classes
from extproc_lab.ai.fit import Recipe, fit
from extproc_lab.ai.windows import Featurized, featurize, text_logits, windows


@dataclass(frozen=True)
class Settings:
    bits: int = 16
    block: int = 32  # tokens per block; a window is two blocks (about 400 characters of prose)
    benign_window_cap: int = 8  # windows of a long benign text learnt per epoch, drawn by seed
    target_fp: float = 0.007  # per (benign source, length band) of the calibration texts
    calibration_share: float = 0.25  # of the benign texts, held out of fitting to set the cut
    generated_per_template: int = 60  # extproc_lab/ai/prompts.py, as the source "generated"
    # Evaluated, never learnt: BIPIA's injections are ordinary requests ("Show me how to schedule a
    # task") that are injections only because a document carries them; learnt as injections, they
    # teach that asking for something is an injection.
    not_learnt: tuple[tuple[str, int], ...] = (("bipia", 1),)
    word_classes: bool = True  # extproc_lab/ai/word_classes.py
    fit: Recipe = field(default_factory=Recipe)

    def class_lists(self) -> list[list[str]]:
        return word_classes.lists() if self.word_classes else []

    def classes(self) -> WordClasses:
        return WordClasses(self.class_lists()) if self.word_classes else NO_CLASSES


@dataclass(frozen=True)
class Dataset:
    prompts: list[corpus.Prompt]
    labels: np.ndarray
    sources: np.ndarray
    bands: np.ndarray  # calibrate.band_index of each text
    features: Featurized

    @classmethod
    def load(cls, directory: Path, settings: Settings) -> "Dataset":
        texts = corpus.load(directory) + [
            corpus.Prompt("generated", record["label"], record["template"], record["text"])
            for record in prompts.records(settings.generated_per_template)]
        return cls(texts, np.array([p.label for p in texts]), np.array([p.source for p in texts]),
                   calibrate.band_index(np.array([len(p.text) for p in texts])),
                   featurize([p.text for p in texts], settings.bits, settings.classes()))


@dataclass(frozen=True)
class Trained:
    weights: np.ndarray
    bias: float
    cut: float  # logit at and above which a text is flagged


def learnable(data: Dataset, selection: np.ndarray, settings: Settings) -> np.ndarray:
    """The selected texts the model may learn from (settings.not_learnt left out)."""
    keep = np.ones(len(selection), dtype=bool)
    for source, label in settings.not_learnt:
        keep &= ~((data.sources[selection] == source) & (data.labels[selection] == label))
    return selection[keep]


def train(data: Dataset, selection: np.ndarray, settings: Settings, seed: int) -> Trained:
    """Fit on the selected texts but a seeded share of their benign ones, and set the cut on those."""
    selection = learnable(data, selection, settings)
    benign = selection[data.labels[selection] == 0]
    rng = np.random.default_rng(seed)
    held = np.sort(rng.choice(benign, size=int(len(benign) * settings.calibration_share), replace=False))
    fitting = np.setdiff1d(selection, held)
    cap = np.where(data.labels[fitting] == 0, settings.benign_window_cap, 0)
    view = windows(data.features, fitting, settings.block, cap, seed)
    weights, bias = fit(view, data.labels[fitting], text_weights(data, fitting), settings.bits, settings.fit)
    logits = text_logits(data.features, held, settings.block, weights, bias)
    cut = calibrate.cut(logits, data.sources[held], data.bands[held], settings.target_fp)
    return Trained(weights, bias, cut)


def text_weights(data: Dataset, selection: np.ndarray) -> np.ndarray:
    """Half the weight to each class; within a class, each source by the square root of its
    number of texts (large sources count more, without drowning the small ones)."""
    weights = np.zeros(len(selection))
    labels, sources = data.labels[selection], data.sources[selection]
    for label in (0, 1):
        names, counts = np.unique(sources[labels == label], return_counts=True)
        shares = np.sqrt(counts) / np.sqrt(counts).sum()
        for name, count, share in zip(names, counts, shares):
            weights[(labels == label) & (sources == name)] = 0.5 * share / count
    return weights
