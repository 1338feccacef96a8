"""Percentiles (the convention of extproc_lab/bench/attack.py) and the printed tables."""
from __future__ import annotations

import statistics


def percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"n": 0}
    ordered = sorted(samples)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)  # noqa: E731
    return {"n": len(samples), "p50_us": pick(0.5), "p90_us": pick(0.9), "p99_us": pick(0.99),
            "mean_us": round(statistics.fmean(samples), 1)}


def table(title: str, rows: dict[str, dict], columns: tuple[str, ...] = ("p50_us", "p90_us", "p99_us", "mean_us")) -> str:
    width = max([len(name) for name in rows] + [len(title)])
    lines = [f"{title:<{width}} " + " ".join(f"{c.replace('_us', ' us'):>10}" for c in columns)]
    for name, row in rows.items():
        lines.append(f"{name:<{width}} " + " ".join(f"{_cell(row.get(c)):>10}" for c in columns))
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if isinstance(value, float) else str(value)
