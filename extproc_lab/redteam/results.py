"""A run's outcomes summed up: detection by family, layer and mutation, benign requests wrongly
blocked, latency and score distributions. The summary is what reports show and baselines keep."""
from __future__ import annotations

from collections import Counter, defaultdict

from extproc_lab.redteam.replay import ERROR, REJECTED, Outcome

BENIGN_LABELS = ("benign", "human")  # blocking these is a mistake; "bot" records may rightly be blocked
SCORE_BINS = 20  # attack scores 1-99 in bins of 5
EXAMPLES = 10


def summarize(outcomes: list[Outcome]) -> dict:
    attacks = [o for o in outcomes if o.label == "attack"]
    benign = [o for o in outcomes if o.label in BENIGN_LABELS]
    return {
        "total": len(outcomes),
        "attacks": _rate(attacks),
        "benign": {**_rate(benign, key="blocked"), "examples": [o.id for o in benign if o.stopped][:EXAMPLES]},
        "by_family": {family: _rate(group) for family, group in _groups(attacks, "family").items()},
        "by_layer": dict(sorted(Counter(o.layer or _unattributed(o) for o in outcomes if o.stopped).items())),
        "by_mutation": _mutations(attacks),
        "latency_us": _latency([o.latency_us for o in outcomes if o.result != ERROR]),
        "scores": {"attack": _histogram(attacks), "benign": _histogram(benign)},
        "rejected_by_envoy": sum(o.result == REJECTED for o in outcomes),
        "layer_faults": dict(sorted(Counter(layer for o in outcomes for layer in o.faults).items())),
        "fault_examples": [f"{o.id}: {', '.join(o.faults)} -> {o.status}" for o in outcomes if o.faults][:EXAMPLES],
        "errors": sum(o.result == ERROR for o in outcomes),
        "error_examples": [f"{o.id}: {o.error or o.status}" for o in outcomes if o.result == ERROR][:EXAMPLES],
    }


def _unattributed(outcome: Outcome) -> str:
    return "envoy" if outcome.result == REJECTED else "sidecar (layer unknown)"


def _rate(group: list[Outcome], key: str = "stopped") -> dict:
    stopped = sum(o.stopped for o in group)
    return {"total": len(group), key: stopped, "rate": round(stopped / len(group), 4) if group else None}


def _groups(outcomes: list[Outcome], attribute: str) -> dict[str, list[Outcome]]:
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        groups[getattr(outcome, attribute) or "-"].append(outcome)
    return dict(sorted(groups.items()))


def _mutations(attacks: list[Outcome]) -> dict:
    """Per mutation: its detection, and how many payloads caught plain slip through with it."""
    mutated = [o for o in attacks if o.mutation]
    caught_plain = {o.base for o in mutated if o.mutation == "none" and o.stopped}
    table = {}
    for name, group in _groups(mutated, "mutation").items():
        applicable = [o for o in group if o.base in caught_plain]
        slipped = [o for o in applicable if not o.stopped]
        table[name] = {**_rate(group), "class": group[0].mutation_class,
                       "caught_plain": len(applicable), "slipped": len(slipped),
                       "slip_rate": round(len(slipped) / len(applicable), 4) if applicable else None,
                       "examples": [o.id for o in slipped][:EXAMPLES]}
    return table


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _latency(values: list[float]) -> dict:
    if not values:
        return {}
    return {"p50": round(percentile(values, 0.50), 1), "p95": round(percentile(values, 0.95), 1),
            "p99": round(percentile(values, 0.99), 1), "max": round(max(values), 1),
            "mean": round(sum(values) / len(values), 1)}


def _histogram(outcomes: list[Outcome]) -> list[int]:
    """Counts of attack scores in SCORE_BINS bins over 1-99 (scores are 1-99)."""
    counts = [0] * SCORE_BINS
    for outcome in outcomes:
        if outcome.attack_score is not None:
            counts[min(SCORE_BINS - 1, (outcome.attack_score - 1) * SCORE_BINS // 99)] += 1
    return counts
