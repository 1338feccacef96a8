"""Propose an OpenAPI document from observed traffic, and diff traffic against a spec.

Endpoints are discovered by templating paths: a segment that looks like an id (number, UUID,
long hex hash) becomes a parameter; so does a position where many distinct values share the same
prefix (slugs, usernames). Query parameters get a type and format from every value seen, an enum
when few values repeat often, and ``required`` when every request had them. JSON bodies are merged
into one schema per operation: properties from every sample, required when always present.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from extproc.core.request import Request

INTEGER = re.compile(r"^-?\d{1,18}$")
NUMBER = re.compile(r"^-?\d+\.\d+$")
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
HASH = re.compile(r"^[0-9a-fA-F]{16,128}$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
MANY_VALUES = 8  # distinct values at one position, each rare, before it counts as a parameter
ENUM_MAX, ENUM_MIN_SAMPLES = 8, 20


@dataclass
class Observed:
    """What one endpoint (method + template) was seen with."""

    count: int = 0
    query: dict[str, list[list[str]]] = field(default_factory=lambda: defaultdict(list))  # name -> values per request
    bodies: list[object] = field(default_factory=list)
    content_types: Counter = field(default_factory=Counter)


def segment_kind(segment: str) -> str | None:
    """The parameter kind of an id-like segment, None for what may be a literal."""
    if INTEGER.match(segment):
        return "id"
    if UUID.match(segment):
        return "uuid"
    if HASH.match(segment) and any(c.isdigit() for c in segment):
        return "hash"
    return None


def template_paths(paths: list[list[str]]) -> dict[tuple[str, ...], tuple[str, ...]]:
    """Each observed path (as segments) to its template (segments with {params})."""
    typed = {tuple(p): tuple("{%s}" % k if (k := segment_kind(s)) else s for s in p) for p in paths}
    by_prefix: dict[tuple[str, ...], Counter] = defaultdict(Counter)
    for template in typed.values():
        for depth in range(len(template)):
            by_prefix[template[:depth]][template[depth]] += 1
    wide = {prefix for prefix, children in by_prefix.items() if _many_rare(children)}
    return {path: _generalise(template, wide) for path, template in typed.items()}


def _many_rare(children: Counter) -> bool:
    literals = [c for c in children if not c.startswith("{")]
    return len(literals) >= MANY_VALUES and sum(children[c] for c in literals) / len(literals) <= 3


def _generalise(template: tuple[str, ...], wide: set[tuple[str, ...]]) -> tuple[str, ...]:
    return tuple("{slug}" if not segment.startswith("{") and template[:depth] in wide else segment
                 for depth, segment in enumerate(template))


def name_params(template: tuple[str, ...]) -> str:
    """'/products/{id}/reviews' -> '/products/{product_id}/reviews' (names unique per template)."""
    parts: list[str] = []
    used: Counter[str] = Counter()
    for index, segment in enumerate(template):
        if segment.startswith("{"):
            kind = segment[1:-1]
            owner = template[index - 1] if index and not template[index - 1].startswith("{") else "item"
            base = f"{_singular(owner)}_{kind}".replace("-", "_")
            used[base] += 1
            segment = "{%s}" % (base if used[base] == 1 else f"{base}{used[base]}")
        parts.append(segment)
    return "/" + "/".join(parts)


def _singular(word: str) -> str:
    return word[:-3] + "y" if word.endswith("ies") else word[:-1] if word.endswith("s") and len(word) > 3 else word


def value_schema(values: list[str]) -> dict:
    """A schema for the string values one parameter was seen with."""
    if all(INTEGER.match(v) for v in values):
        return {"type": "integer"}
    if all(INTEGER.match(v) or NUMBER.match(v) for v in values):
        return {"type": "number"}
    if all(v in ("true", "false") for v in values):
        return {"type": "boolean"}
    for pattern, fmt in ((UUID, "uuid"), (DATETIME, "date-time"), (DATE, "date"), (EMAIL, "email")):
        if all(pattern.match(v) for v in values):
            return {"type": "string", "format": fmt}
    counts = Counter(values)
    if len(values) >= ENUM_MIN_SAMPLES and len(counts) <= ENUM_MAX and min(counts.values()) >= 2:
        return {"type": "string", "enum": sorted(counts)}
    return {"type": "string", "maxLength": max(64, 2 * max(len(v) for v in values))}


def json_schema(samples: list[object]) -> dict:
    """One schema that every sample fits: types merged, object keys required when always there."""
    kinds = {_json_type(s) for s in samples}
    nullable = "null" in kinds
    kinds.discard("null")
    if kinds == {"integer", "number"}:
        kinds = {"number"}
    if len(kinds) != 1:
        schema: dict = {} if not kinds else {"type": sorted(kinds)}
    else:
        (kind,) = kinds
        present = [s for s in samples if s is not None]
        if kind == "object":  # then every sample present is one (and a list for "array")
            schema = _object_schema([s for s in present if isinstance(s, dict)])
        elif kind == "array":
            schema = _array_schema([s for s in present if isinstance(s, list)])
        else:
            schema = {"type": kind}
        if kind == "string":
            schema = {**value_schema([str(s) for s in present]), "type": "string"}
            schema.pop("enum", None)
    if nullable:
        schema["type"] = sorted({*([schema["type"]] if isinstance(schema.get("type"), str) else schema.get("type", [])), "null"})
    return schema


def _object_schema(samples: list[dict]) -> dict:
    keys: dict[str, list] = defaultdict(list)
    for sample in samples:
        for key, value in sample.items():
            keys[key].append(value)
    required = sorted(k for k, values in keys.items() if len(values) == len(samples))
    schema = {"type": "object", "properties": {k: json_schema(v) for k, v in sorted(keys.items())}}
    if required:
        schema["required"] = required
    return schema


def _array_schema(samples: list[list]) -> dict:
    items = [item for sample in samples for item in sample]
    return {"type": "array", "items": json_schema(items) if items else {}}


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}.get(type(value), "string")


@dataclass
class Learner:
    base_path: str = ""
    observed: dict[tuple[str, tuple[str, ...]], Observed] = field(default_factory=dict)
    paths: list[tuple[str, list[str], Request]] = field(default_factory=list)

    def add(self, request: Request) -> None:
        path = request.url_path
        if self.base_path and not path.startswith(self.base_path):
            return
        segments = [s for s in path[len(self.base_path):].split("/") if s]
        self.paths.append((request.method, segments, request))

    def build(self) -> dict[tuple[str, str], Observed]:
        """(METHOD, templated path) -> what was seen there."""
        templates = template_paths([segments for _, segments, _ in self.paths])
        endpoints: dict[tuple[str, str], Observed] = defaultdict(Observed)
        for method, segments, request in self.paths:
            seen = endpoints[(method, name_params(templates[tuple(segments)]))]
            seen.count += 1
            per_request: dict[str, list[str]] = defaultdict(list)
            for arg in request.query_args:
                per_request[arg.name].append(arg.value)
            for name, values in per_request.items():
                seen.query[name].append(values)
            if request.body:
                seen.content_types[request.content_type] += 1
                if request.json is not None or request.body.strip() == b"null":
                    seen.bodies.append(request.json)
        return dict(endpoints)


def propose(endpoints: dict[tuple[str, str], Observed], title: str = "Learned API", base_path: str = "") -> dict:
    """An OpenAPI 3.1 document describing the endpoints."""
    paths: dict[str, dict] = defaultdict(dict)
    for (method, template), seen in sorted(endpoints.items(), key=lambda item: (item[0][1], item[0][0])):
        operation: dict = {"responses": {"default": {"description": "not learned"}},
                           "x-observed-requests": seen.count}
        params = [{"name": name[1:-1], "in": "path", "required": True, "schema": _path_schema(name)}
                  for name in re.findall(r"\{[^}]+\}", template)]
        for name, per_request in sorted(seen.query.items()):
            values = [v for request_values in per_request for v in request_values]
            schema = value_schema(values)
            if any(len(request_values) > 1 for request_values in per_request):
                schema = {"type": "array", "items": schema}
            params.append({"name": name, "in": "query", "required": len(per_request) == seen.count, "schema": schema})
        if params:
            operation["parameters"] = params
        if seen.content_types:
            media = seen.content_types.most_common(1)[0][0] or "application/octet-stream"
            content = {"schema": json_schema(seen.bodies)} if seen.bodies and "json" in media else {}
            operation["requestBody"] = {"required": sum(seen.content_types.values()) == seen.count,
                                        "content": {media: content}}
        paths[template][method.lower()] = operation
    document: dict[str, object] = {"openapi": "3.1.0", "info": {"title": title, "version": "learned"}, "paths": dict(paths)}
    if base_path:
        document["servers"] = [{"url": base_path}]
    return document


def _path_schema(name: str) -> dict:
    kind = name[1:-1].rpartition("_")[2].rstrip("0123456789")
    return {"id": {"type": "integer"}, "uuid": {"type": "string", "format": "uuid"},
            "hash": {"type": "string", "pattern": "^[0-9a-fA-F]{16,128}$"}}.get(kind, {"type": "string"})


def diff(endpoints: dict[tuple[str, str], Observed], spec) -> dict:
    """Traffic against a compiled spec: shadow endpoints and parameters, and spec endpoints never seen."""
    shadow, undocumented, used = [], [], set()
    for (method, template), seen in sorted(endpoints.items(), key=lambda item: (item[0][1], item[0][0])):
        example = re.sub(r"\{[^}]+\}", "1", template)
        found = spec.router.match(example) or _match_template(spec, template)
        operation = found[0].get(method) if found else None
        if operation is None:
            shadow.append({"method": method, "path": template, "requests": seen.count})
            continue
        used.add((method, operation.template))
        extra = sorted(set(seen.query) - operation.query_names)
        if extra:
            undocumented.append({"method": method, "path": operation.template, "query": extra})
    unused = sorted(f"{m} {t}" for m, t in _spec_operations(spec) if (m, t) not in used)
    return {"shadow_endpoints": shadow, "undocumented_params": undocumented, "spec_endpoints_not_seen": unused}


def _match_template(spec, template: str):
    """A learned {slug} segment may stand for a parameter of any type in the spec: try a word."""
    return spec.router.match(re.sub(r"\{[^}]+\}", "x", template))


def _spec_operations(spec) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    stack = [spec.router.root]
    while stack:
        node = stack.pop()
        if node.target:
            out.extend((method, node.template) for method in node.target)
        stack.extend(node.literals.values())
        if node.param is not None:
            stack.append(node.param)
    return out
