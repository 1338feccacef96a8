"""Save a run's summary as a baseline and compare later runs with it, within tolerances.

A regression is a defense that got weaker: a family or mutation stopped less often, more payloads
that were caught plain slipping through with a mutation, more benign requests blocked, more layer
faults, or (only when a latency tolerance is given: shared CI machines are noisy) a slower p99.
Groups only one side has are reported as notes, never as regressions: the corpus changed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

VERSION = 1


@dataclass(frozen=True)
class Tolerances:
    detection: float = 0.02  # absolute drop in a stopped share that still passes
    false_positives: float = 0.005  # absolute rise in the share of benign requests blocked
    latency: float | None = None  # relative rise of p99 latency (0.5 = +50%); None: not compared


def save(summary: dict, path: str) -> None:
    Path(path).write_text(json.dumps({"version": VERSION, "summary": summary}, indent=1) + "\n", encoding="utf-8")


def load(path: str) -> dict:
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    if document.get("version") != VERSION or "summary" not in document:
        raise ValueError(f"{path}: not an extproc redteam baseline (version {VERSION})")
    return document["summary"]


def compare(baseline: dict, current: dict, tolerances: Tolerances = Tolerances()) -> tuple[list[str], list[str]]:
    """(regressions, notes)."""
    regressions, notes = [], []
    _drop("attacks stopped", baseline["attacks"]["rate"], current["attacks"]["rate"], tolerances.detection, regressions)
    _rise("benign blocked", baseline["benign"]["rate"], current["benign"]["rate"], tolerances.false_positives,
          regressions)
    _groups("family", baseline["by_family"], current["by_family"], "rate", tolerances.detection, regressions, notes)
    _groups("mutation", baseline["by_mutation"], current["by_mutation"], "rate", tolerances.detection, regressions,
            notes)
    for name, before in baseline["by_mutation"].items():
        after = current["by_mutation"].get(name)
        if after is not None:
            _rise(f"mutation {name} slip rate", before["slip_rate"], after["slip_rate"], tolerances.detection,
                  regressions)
    for layer, count in current["layer_faults"].items():
        if count > baseline["layer_faults"].get(layer, 0):
            regressions.append(f"layer {layer} faults: {baseline['layer_faults'].get(layer, 0)} -> {count}")
    if tolerances.latency is not None:
        _latency(baseline["latency_us"], current["latency_us"], tolerances.latency, regressions)
    return regressions, notes


def _groups(kind: str, before: dict, after: dict, key: str, tolerance: float, regressions: list, notes: list) -> None:
    for name in sorted(set(before) | set(after)):
        if name not in after or name not in before:
            notes.append(f"{kind} {name} only in the {'baseline' if name in before else 'current run'}")
            continue
        _drop(f"{kind} {name}", before[name][key], after[name][key], tolerance, regressions)


def _drop(what: str, before: float | None, after: float | None, tolerance: float, regressions: list) -> None:
    if before is not None and after is not None and after < before - tolerance - 1e-9:
        regressions.append(f"{what}: {before:.1%} -> {after:.1%}")


def _rise(what: str, before: float | None, after: float | None, tolerance: float, regressions: list) -> None:
    if before is not None and after is not None and after > before + tolerance + 1e-9:
        regressions.append(f"{what}: {before:.1%} -> {after:.1%}")


def _latency(before: dict, after: dict, tolerance: float, regressions: list) -> None:
    if before.get("p99") and after.get("p99") and after["p99"] > before["p99"] * (1 + tolerance):
        regressions.append(f"latency p99: {before['p99']:.0f} us -> {after['p99']:.0f} us")
