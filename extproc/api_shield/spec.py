"""Load an OpenAPI 3.0 or 3.1 document and turn its schemas into JSON Schema.

OpenAPI 3.1 schemas are JSON Schema 2020-12 already. OpenAPI 3.0 schemas are a JSON Schema
draft 4 dialect, rewritten here to 2020-12 (``nullable``, boolean ``exclusiveMinimum/Maximum``),
so one validator with the 2020-12 formats (uuid, date, email, ...) serves both. Only
references inside the document (``#/...``) are allowed: a spec that points elsewhere would make
validation depend on the network.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# A node of the parsed (JSON or YAML) document: untyped, so each reader checks the shape it needs.
Json = Any
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class SpecError(ValueError):
    """The document is not a usable OpenAPI 3.0/3.1 spec; the message names where."""


@dataclass(frozen=True)
class Spec:
    document: dict
    version: str  # "3.0" or "3.1"
    source: str


def load_spec(path: str | Path) -> Spec:
    return parse_spec(read_document(path), str(path))


def read_document(path: str | Path) -> object:
    """The file's document as written (an OpenAPI 3.0 one not yet rewritten to JSON Schema)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: not JSON/YAML: {str(exc).splitlines()[0]}") from None


def parse_spec(document: object, source: str) -> Spec:
    if not isinstance(document, dict):
        raise SpecError(f"{source}: an OpenAPI document is a mapping")
    version = str(document.get("openapi", ""))
    if not (version.startswith("3.0") or version.startswith("3.1")):
        raise SpecError(f"{source}: openapi: {version or 'missing'!s} (3.0.x or 3.1.x expected)")
    paths = document.get("paths")
    if not isinstance(paths, dict) or not paths:
        raise SpecError(f"{source}: paths: a non-empty mapping is required")
    for template, item in paths.items():
        if not str(template).startswith("/") or not isinstance(item, dict):
            raise SpecError(f"{source}: paths.{template}: a path starts with '/' and maps to operations")
    _check_refs(document, document, source, "")
    spec = Spec(document, version[:3], source)
    if spec.version == "3.0":
        spec = Spec(openapi30_to_json_schema(document), "3.0", source)
    return spec


def _check_refs(node: object, root: dict, source: str, where: str) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith("#/"):
                raise SpecError(f"{source}: {where or '/'}: $ref {ref!r} points outside the document")
            if resolve_pointer(root, ref) is None:
                raise SpecError(f"{source}: {where or '/'}: $ref {ref!r} resolves to nothing")
        for key, value in node.items():
            _check_refs(value, root, source, f"{where}.{key}" if where else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _check_refs(value, root, source, f"{where}[{index}]")


def resolve_pointer(root: dict, ref: str) -> object | None:
    node: object = root
    for token in ref[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None
    return node


def deref(root: dict, node: Json) -> Json:
    """Follow a chain of $refs (parameters, request bodies, ...) to the object itself."""
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 32:
        node = resolve_pointer(root, node["$ref"])
        seen += 1
    return node


def openapi30_to_json_schema(node: Json) -> Json:
    """``nullable: true`` means the value may also be null; ``exclusiveMinimum: true`` makes the
    minimum exclusive (2020-12 spells it as the number)."""
    if isinstance(node, list):
        return [openapi30_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: openapi30_to_json_schema(value) for key, value in node.items()}
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if isinstance(converted.get(exclusive), bool):
            if converted.pop(exclusive) and bound in converted:
                converted[exclusive] = converted.pop(bound)
    if converted.pop("nullable", False) is True:
        kind = converted.get("type")
        if isinstance(kind, str):
            converted["type"] = [kind, "null"]
            if "enum" in converted:
                converted["enum"] = [*converted["enum"], None]
        elif kind is None:
            converted = {"anyOf": [converted, {"type": "null"}]}
    return converted
