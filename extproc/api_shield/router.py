"""Path templates to operations: a trie of segments where literal segments win over parameters,
as OpenAPI requires (``/users/me`` before ``/users/{id}``). Matching is one dictionary lookup per
segment, whatever the number of operations."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Generic, TypeVar

PARAM = re.compile(r"^\{([^{}]+)\}$")
T = TypeVar("T")


@dataclass
class Node(Generic[T]):
    literals: dict[str, Node[T]] = field(default_factory=dict)
    param: Node[T] | None = None
    param_name: str = ""
    target: T | None = None  # what the template ending here maps to
    template: str = ""


class Router(Generic[T]):
    def __init__(self) -> None:
        self.root: Node[T] = Node()

    def add(self, template: str, target: T) -> None:
        node = self.root
        for segment in _segments(template):
            match = PARAM.match(segment)
            if match:
                if node.param is None:
                    node.param = Node(param_name=match.group(1))
                node = node.param
            else:
                node = node.literals.setdefault(segment, Node())
        node.target, node.template = target, template

    def match(self, path: str) -> tuple[T, str, dict[str, str]] | None:
        """(target, template, path parameters) of the most literal template matching path."""
        return _walk(self.root, _segments(path), 0, {})


def _walk(node: Node[T], segments: list[str], index: int,
          params: dict[str, str]) -> tuple[T, str, dict[str, str]] | None:
    if index == len(segments):
        return (node.target, node.template, params) if node.target is not None else None
    segment = segments[index]
    literal = node.literals.get(segment)
    if literal is not None:
        found = _walk(literal, segments, index + 1, params)
        if found is not None:
            return found
    if node.param is not None and segment:
        return _walk(node.param, segments, index + 1, {**params, node.param.param_name: segment})
    return None


def _segments(path: str) -> list[str]:
    trimmed = path.strip("/")
    return trimmed.split("/") if trimmed else []
