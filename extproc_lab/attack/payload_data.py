"""The attack grammars' data: vocabulary and slot templates, one JSON file per section of
``payloads`` under ``extproc_lab/data/payloads/``.

Each file holds ``words`` (named lists of plain values) and ``slots`` (named lists of templates,
each a string or ``[weight, string]``), in the order they are drawn from: the order and weights are
part of what a seed reproduces, so editing a file changes the generated training data.
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "payloads"
Entry = str | tuple[float, str]


@cache
def _section(name: str) -> dict:
    return json.loads((DATA_DIR / f"{name}.json").read_text(encoding="utf-8"))


def words(section: str, name: str) -> tuple:
    """A named list of plain values, as the tuple the generators choose from."""
    return tuple(_section(section)["words"][name])


def entries(section: str, name: str) -> list[Entry]:
    """A named list of templates: weighted ones as (weight, template) pairs."""
    return [tuple(entry) if isinstance(entry, list) else entry for entry in _section(section)["words"][name]]


def slots() -> dict[str, list[Entry]]:
    """Every template slot of every section, by name (a name is defined once)."""
    found: dict[str, list[Entry]] = {}
    for path in sorted(DATA_DIR.glob("*.json")):
        for name, items in _section(path.stem).get("slots", {}).items():
            if name in found:
                raise ValueError(f"{path.name}: slot {name!r} is defined twice")
            found[name] = [tuple(item) if isinstance(item, list) else item for item in items]
    return found
