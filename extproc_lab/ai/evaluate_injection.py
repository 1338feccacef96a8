"""The prompt-injection model judged on sources it never saw: leave one source out, several seeds.

For each real source and seed, the model is trained (extproc_lab.ai.recipe.train, the shipped
recipe) on every other source and flags the held-out source's texts at its own cut. The
seed draws the benign texts held out of fitting to set the cut, and the windows of long benign
texts learnt. Reported per source and length band: injections detected, benign texts flagged;
means over the seeds with their range, and pooled over all held-out texts.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from extproc_lab.ai.corpus import BANDS
from extproc_lab.ai.recipe import Dataset, Settings, train
from extproc_lab.ai.windows import featurize, text_logits

GENERATED = "generated"  # the templates: learnt from, not a real source to judge on
HOST_SOURCES = ("docs_python_peps", "docs_rust_rfcs")  # long documents an injection is placed in
SHORT = 500  # injections up to this many characters are also judged inside a document


def evaluate(data: Dataset, settings: Settings, seeds: list[int]) -> dict:
    """{"sources": {source: {band: figures}}, "pooled": {band: figures}, "seeds": seeds}."""
    held_out_sources = sorted(set(data.sources.tolist()) - {GENERATED})
    flagged = np.zeros((len(seeds), len(data.prompts)), dtype=bool)
    placed = {source: inserted(data, source, settings) for source in held_out_sources}
    placed_flagged = {source: np.zeros((len(seeds), len(placed[source][1])), dtype=bool) for source in held_out_sources}
    for row, seed in enumerate(seeds):
        for source in held_out_sources:
            started = time.perf_counter()
            held = np.flatnonzero(data.sources == source)
            trained = train(data, np.flatnonzero(data.sources != source), settings, seed)
            flagged[row, held] = text_logits(data.features, held, settings.block, trained.weights, trained.bias) >= trained.cut
            features, texts = placed[source]
            if texts:
                placed_flagged[source][row] = text_logits(features, np.arange(len(texts)), settings.block,
                                                          trained.weights, trained.bias) >= trained.cut
            print(f"seed {seed}, {source} held out: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    judged = np.isin(data.sources, held_out_sources)
    learnt = judged & ~np.isin(data.sources, [source for source, label in settings.not_learnt if label == 1])
    report = {"seeds": seeds, "sources": {}, "pooled": _figures(flagged[:, judged], data.labels[judged], data.bands[judged]),
              "pooled_learnt_kinds": _figures(flagged[:, learnt], data.labels[learnt], data.bands[learnt]),
              "inside_documents": {}}
    for source in held_out_sources:
        mask = data.sources == source
        report["sources"][source] = _figures(flagged[:, mask], data.labels[mask], data.bands[mask])
        if placed[source][1]:
            report["inside_documents"][source] = _rate(placed_flagged[source])
    if report["inside_documents"]:
        report["inside_documents"]["pooled"] = _rate(np.concatenate(list(placed_flagged.values()), axis=1))
    return report


def inserted(data: Dataset, source: str, settings: Settings):
    """The source's injections of up to SHORT characters, each placed at a paragraph break near
    the middle of a long benign document (HOST_SOURCES in turn): (their features, the texts).
    The injection is never seen in training; the document may have been."""
    hosts = [p.text for p in data.prompts if p.source in HOST_SOURCES and len(p.text) > 4 * SHORT]
    injections = [p.text for p in data.prompts if p.source == source and p.label == 1 and len(p.text) <= SHORT]
    if source in HOST_SOURCES or not hosts or not injections or source == "bipia":  # bipia's are in documents already
        return None, []
    texts = []
    for number, injection in enumerate(injections):
        host = hosts[number * 7919 % len(hosts)]  # spread over the documents
        at = host.find("\n\n", len(host) // 2)
        at = at if at >= 0 else len(host) // 2
        texts.append(f"{host[:at]}\n\n{injection}\n\n{host[at:]}")
    return featurize(texts, settings.bits, settings.classes()), texts


def _rate(flagged: np.ndarray) -> dict:
    rates = flagged.mean(axis=1)
    return {"mean": round(float(rates.mean()), 4), "min": round(float(rates.min()), 4),
            "max": round(float(rates.max()), 4), "n": int(flagged.shape[1])}


def _figures(flagged: np.ndarray, labels: np.ndarray, bands: np.ndarray) -> dict:
    """Per band and for all: detected (injections) and flagged (benign): mean over seeds, range, n."""
    out = {}
    for band, name in [(None, "all"), *enumerate(name for name, _, _ in BANDS)]:
        in_band = np.ones(len(labels), dtype=bool) if band is None else bands == band
        row = {}
        for label, key in ((1, "detected"), (0, "benign_flagged")):
            mask = in_band & (labels == label)
            if mask.any():
                rates = flagged[:, mask].mean(axis=1)
                row[key] = {"mean": round(float(rates.mean()), 4), "min": round(float(rates.min()), 4),
                            "max": round(float(rates.max()), 4), "n": int(mask.sum())}
        if row:
            out[name] = row
    return out
