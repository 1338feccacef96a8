"""How a route's layer section inherits the defaults' section of the same layer.

Mappings merge key by key and any other value the route gives replaces the inherited one, except
where the layer's settings declare an ``Inheritance`` (extproc/layers/base.py):

- a keyed list (the rules) merges by id: a route's entry with an inherited id takes that entry's
  place, new ids follow in the route's order, and ``remove: [id, ...]`` drops inherited entries;
  an id that is not inherited, removed and redefined at once, or used twice is an error;
- named entries (IP lists, signature sets, MCP grants) are replaced whole by a route's entry of
  the same name, so half of an inherited entry never survives under the route's other half;
- an accumulating list (rule feeds) gains the route's entries and keeps the inherited ones.

Errors name YAML paths; ``Merged.origins`` maps a merged list position back to the path of the
entry it came from, so a validation error in the merged section still names the route's line.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from extproc.layers.base import Inheritance

REMOVE = "remove"


@dataclass
class Merged:
    section: dict[str, Any]
    origins: dict[tuple[str, int], str] = field(default_factory=dict)  # (key, merged index) -> YAML path
    changes: list[str] = field(default_factory=list)  # what the route changed, for check-config
    problems: list[str] = field(default_factory=list)


def merge_section(base: dict, override: dict, inherit: Inheritance, base_path: str, path: str) -> Merged:
    """The route's section (at ``path``) over the defaults' (at ``base_path``)."""
    override = dict(override)
    removed = override.pop(REMOVE, None) if inherit.by_id else None
    merged = Merged(deep_merge(base, override))
    if inherit.by_id:
        _merge_by_id(merged, base, override, inherit.by_id, removed, base_path, path)
    for key in inherit.whole:
        _merge_whole(merged, base.get(key), override.get(key), key)
    for key in inherit.accumulate:
        inherited, given = base.get(key), override.get(key)
        if isinstance(inherited, list) and isinstance(given, list):
            merged.section[key] = inherited + [entry for entry in given if entry not in inherited]
    return merged


def deep_merge(base: dict, override: dict) -> dict:
    """Mappings merge key by key; any other value (lists included) replaces the base value."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _merge_by_id(merged: Merged, base: dict, override: dict, by_id: tuple[str, str], removed: Any,
                 base_path: str, path: str) -> None:
    key, id_field = by_id
    inherited = base.get(key) or []
    given = override.get(key, [])
    if not isinstance(inherited, list) or not isinstance(given, list):
        return  # the merged value is the route's: validation reports its type at its path
    entries = [(entry, f"{base_path}.{key}[{index}]") for index, entry in enumerate(inherited)]
    position = {_id(entry, id_field): index for index, (entry, _) in enumerate(entries)}
    drop = _removals(removed, position, merged, key, path)
    seen: dict[str, int] = {}
    for index, entry in enumerate(given):
        where = f"{path}.{key}[{index}]"
        rule_id = _id(entry, id_field)
        if rule_id is not None and rule_id in seen:
            merged.problems.append(f"{where}.{id_field}: {rule_id!r} is already used by {key}[{seen[rule_id]}]")
        elif rule_id is not None and rule_id in drop:
            merged.problems.append(f"{where}.{id_field}: {rule_id!r} is both removed and redefined")
        elif rule_id is not None and rule_id in position:
            entries[position[rule_id]] = (entry, where)
            merged.changes.append(f"replaced {rule_id}")
        else:
            entries.append((entry, where))
            merged.changes.append(f"added {rule_id}" if rule_id is not None else f"added {key}[{index}]")
        if rule_id is not None:
            seen.setdefault(rule_id, index)
    kept = [(entry, where) for entry, where in entries if _id(entry, id_field) not in drop]
    merged.changes.extend(f"removed {rule_id}" for rule_id in drop)
    merged.section[key] = [entry for entry, _ in kept]
    merged.origins = {(key, index): where for index, (_, where) in enumerate(kept)}


def _removals(removed: Any, position: dict, merged: Merged, key: str, path: str) -> list[str]:
    """The inherited ids the route removes; each must name an inherited entry."""
    if removed is None:
        return []
    if not isinstance(removed, list) or not all(isinstance(item, str) for item in removed):
        merged.problems.append(f"{path}.{REMOVE}: must be a list of ids of inherited {key}")
        return []
    known = [rule_id for rule_id in position if rule_id is not None]
    drop = []
    for index, rule_id in enumerate(removed):
        if rule_id not in position:
            inherited = ", ".join(known) if known else "none"
            merged.problems.append(f"{path}.{REMOVE}[{index}]: {rule_id!r} is not inherited "
                                   f"(inherited {key}: {inherited})")
        elif rule_id not in drop:
            drop.append(rule_id)
    return drop


def _merge_whole(merged: Merged, inherited: Any, given: Any, key: str) -> None:
    if not isinstance(inherited, dict) or not isinstance(given, dict):
        return
    merged.section[key] = {**inherited, **given}
    merged.changes.extend(f"replaced {key}.{name}" for name in given if name in inherited)


def _id(entry: Any, id_field: str) -> str | None:
    value = entry.get(id_field) if isinstance(entry, dict) else None
    return value if isinstance(value, str) else None
