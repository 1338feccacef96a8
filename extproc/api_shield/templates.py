"""Path templates from observed paths: which segments stay literal and which become parameters.

A segment that looks like an id (a number, a UUID, a long hex hash) is a parameter. Other
segments are literal unless many rare values share a shape: at one position, the children are
grouped by their shape (slug-like, or the punctuation they contain) and by what follows them (the
parameter names of the requests ending there, the shapes of the next segments). A group of
``MANY_RARE`` or more children, each seen fewer than ``FREQUENT`` times, is a parameter
(``/tags/{tag_slug}``); so is any group of more than ``MAX_LITERALS`` children, however often each
was seen. Frequent and few children stay literal, each its own operation: the pages of a site
(``/shop/cart.jsp``, ``/shop/pay.jsp`` seen a thousand times each) are not a ``{slug}``, and
``/users/me`` stays beside ``/users/{user_id}``. All parameter children of one position share one
parameter (the router has one parameter branch per position).
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import Sequence

INTEGER = re.compile(r"^-?\d{1,18}$")
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
HASH = re.compile(r"^[0-9a-fA-F]{16,128}$")
SLUG = re.compile(r"^[A-Za-z0-9._~%-]+$")
MANY_RARE = 8  # rare children sharing a shape before they are one parameter
FREQUENT = 20  # requests that make a child frequent: it stays literal
MAX_LITERALS = 64  # more children of one shape than this are a parameter, however frequent

Path = tuple[str, ...]


def segment_kind(segment: str) -> str | None:
    """The parameter kind of an id-like segment, None for what may be a literal."""
    if INTEGER.match(segment):
        return "id"
    if UUID.match(segment):
        return "uuid"
    if HASH.match(segment) and any(c.isdigit() for c in segment):
        return "hash"
    return None


Shape = str | frozenset[str]


def segment_shape(segment: str) -> Shape:
    """Segments that could stand for one another: slug-like ones, else by their punctuation."""
    return "slug" if SLUG.match(segment) else frozenset(c for c in segment if not c.isalnum())


def template_paths(paths: Sequence[Sequence[str]],
                   names: Sequence[frozenset[str]] | None = None) -> dict[Path, Path]:
    """Each observed path (segments; one entry per request) to its template (``{kind}`` segments).

    ``names``, one per path, are the parameter names of that request: children followed by
    different parameters are different pages, not values of one parameter."""
    requests: Counter[tuple[Path, frozenset[str]]] = Counter(
        (tuple(p), names[i] if names is not None else frozenset()) for i, p in enumerate(paths))
    out: dict[Path, Path] = {}
    _assign(requests, 0, (), out)
    return out


def _assign(requests: Counter[tuple[Path, frozenset[str]]], depth: int, prefix: Path, out: dict[Path, Path]) -> None:
    children: dict[str, Counter[tuple[Path, frozenset[str]]]] = defaultdict(Counter)
    for (path, names), count in requests.items():
        if len(path) == depth:
            out[path] = prefix
        else:
            children[path[depth]][(path, names)] += count
    labels = child_labels(children, depth)
    merged: dict[str, Counter[tuple[Path, frozenset[str]]]] = defaultdict(Counter)
    for segment, group in children.items():
        merged[labels[segment]].update(group)
    for label, group in merged.items():
        _assign(group, depth + 1, prefix + (label,), out)


def child_labels(children: dict[str, Counter[tuple[Path, frozenset[str]]]], depth: int) -> dict[str, str]:
    """Each child segment to itself (literal) or to the position's one ``{kind}``."""
    counts = {segment: sum(group.values()) for segment, group in children.items()}
    params = {segment: kind for segment in children if (kind := segment_kind(segment))}
    literals = [segment for segment in children if segment not in params]
    rare = {s for s in literals if counts[s] < FREQUENT}
    by_kind: dict[tuple[Shape, frozenset[str]], list[str]] = defaultdict(list)
    for segment in sorted(rare):
        by_kind[(segment_shape(segment), _followed_by(children[segment], depth))].append(segment)
    open_shapes = {key[0] for key, group in by_kind.items() if len(group) >= MANY_RARE}
    frequent_shapes = Counter(segment_shape(s) for s in literals if s not in rare)
    open_shapes |= {shape for shape, n in frequent_shapes.items() if n > MAX_LITERALS}
    for segment in literals:
        shape = segment_shape(segment)
        if shape in open_shapes and (segment in rare or frequent_shapes[shape] > MAX_LITERALS):
            params[segment] = "slug"
    kinds = set(params.values())
    label = "{%s}" % (kinds.pop() if len(kinds) == 1 else "slug")
    return {segment: label if segment in params else segment for segment in children}


def _followed_by(group: Counter[tuple[Path, frozenset[str]]], depth: int) -> frozenset[str]:
    """What comes after a child at ``depth``: the parameter names of the requests ending there, and
    the shapes of the next segments (as '/<shape>')."""
    after: set[str] = set()
    for path, names in group:
        if len(path) == depth + 1:
            after |= names
        else:
            after.add("/" + _shape_text(path[depth + 1]))
    return frozenset(after)


def _shape_text(segment: str) -> str:
    kind = segment_kind(segment)
    if kind:
        return kind
    shape = segment_shape(segment)
    return shape if isinstance(shape, str) else "".join(sorted(shape))
