"""Propose an OpenAPI document from observed traffic.

Each request is reduced to what API Shield checks, in the representation it checks it in
(``library_text``: a byte that is not UTF-8 is its Latin-1 character, so ``?B1=A%F1adir`` is
learned as ``Añadir`` and matched as ``Añadir``). Endpoints come from templating the paths
(``templates.py``). Query parameters, form and multipart fields get a schema from their values
(``shapes.py``: types, enums, formats, patterns, lengths) and ``required`` when every request had
them; JSON bodies merge into one schema per operation, their strings shaped the same way.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from urllib.parse import unquote

from extproc.api_shield.check import body_reading
from extproc.api_shield.shapes import (DEFAULT_STRICTNESS, Strictness, integers_schema, scalar_schema,
                                       string_schema, text_schema)
from extproc.api_shield.templates import segment_kind, template_paths
from extproc.core.request import Request
from extproc.core.text import TEXT_ERRORS, library_text

Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class BodySeen:
    """A request body as API Shield reads it: form or multipart fields, a JSON document, or only its type."""

    media: str  # the content type without parameters, "" when none was declared
    fields: Pairs = ()  # form fields, multipart parts without a file name (name, value)
    files: Pairs = ()  # multipart file parts (name, content type)
    document: object = None  # the JSON document, when the body is read as JSON and parses
    parsed: bool = False


@dataclass(frozen=True)
class Sample:
    """One request, reduced to what is learned from it."""

    method: str
    segments: tuple[str, ...]  # the path below the base path, as sent (still percent-encoded)
    query: Pairs
    body: BodySeen | None

    def names(self) -> frozenset[str]:
        fields = self.body.fields + self.body.files if self.body else ()
        return frozenset(name for name, _ in self.query + fields)


def sample_of(request: Request, base_path: str = "") -> Sample | None:
    """The request as learning sees it; None when it is outside the base path."""
    path = request.url_path
    if base_path:
        if not (path == base_path or path.startswith(base_path + "/")):
            return None
        path = path[len(base_path):]
    segments = tuple(s for s in path.split("/") if s)
    query = tuple((library_text(a.name), library_text(a.value)) for a in request.query_args)
    if request.body:
        body: BodySeen | None = body_seen(request)
    else:  # a capture on a route whose layers read no body: one was sent, of a type, unseen
        body = BodySeen(request.content_type) if _declares_body(request) else None
    return Sample(request.method, segments, query, body)


def _declares_body(request: Request) -> bool:
    return request.header("content-length") not in ("", "0") or bool(request.header("transfer-encoding"))


def body_seen(request: Request) -> BodySeen:
    media, reading = request.content_type, body_reading(request.content_type)
    if reading == "form":
        return BodySeen(media, tuple((library_text(a.name), library_text(a.value)) for a in request.form))
    if reading == "multipart":
        fields = tuple((library_text(p.name), library_text(p.text)) for p in request.multipart_parts if p.filename is None)
        files = tuple((library_text(p.name), p.content_type) for p in request.multipart_parts if p.filename is not None)
        return BodySeen(media, fields, files)
    if reading == "json":
        document = request.json
        return BodySeen(media, document=document, parsed=document is not None or request.body.strip() == b"null")
    return BodySeen(media)


@dataclass
class MediaSeen:
    """The bodies of one media type at one operation."""

    count: int = 0
    fields: dict[str, list[list[str]]] = field(default_factory=lambda: defaultdict(list))  # name -> values per body
    files: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # name -> content types
    documents: list[object] = field(default_factory=list)

    def add(self, body: BodySeen) -> None:
        self.count += 1
        _add_pairs(self.fields, body.fields)
        for name, media in body.files:
            self.files[name][media] += 1
        if body.parsed:
            self.documents.append(body.document)


@dataclass
class Observed:
    """What one endpoint (method + template) was seen with."""

    count: int = 0
    path_values: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    query: dict[str, list[list[str]]] = field(default_factory=lambda: defaultdict(list))  # name -> values per request
    bodies: dict[str, MediaSeen] = field(default_factory=lambda: defaultdict(MediaSeen))

    @property
    def with_body(self) -> int:
        return sum(body.count for body in self.bodies.values())

    def add(self, sample: Sample, path_values: dict[str, str]) -> None:
        self.count += 1
        for name, value in path_values.items():
            self.path_values[name].append(value)
        _add_pairs(self.query, sample.query)
        if sample.body is not None:
            self.bodies[sample.body.media].add(sample.body)


def _add_pairs(into: dict[str, list[list[str]]], pairs: Pairs) -> None:
    per_request: dict[str, list[str]] = defaultdict(list)
    for name, value in pairs:
        per_request[name].append(value)
    for name, values in per_request.items():
        into[name].append(values)


@dataclass
class Learner:
    base_path: str = ""
    samples: list[Sample] = field(default_factory=list)

    def add(self, request: Request) -> None:
        sample = sample_of(request, self.base_path)
        if sample is not None:
            self.samples.append(sample)

    def build(self) -> dict[tuple[str, str], Observed]:
        """(METHOD, templated path) -> what was seen there."""
        templates = template_paths([s.segments for s in self.samples], [s.names() for s in self.samples])
        endpoints: dict[tuple[str, str], Observed] = defaultdict(Observed)
        for sample in self.samples:
            template = templates[sample.segments]
            named = name_params(template)
            endpoints[(sample.method, named)].add(sample, _path_values(named, sample.segments))
        return dict(endpoints)


def _path_values(template: str, segments: tuple[str, ...]) -> dict[str, str]:
    """The path parameters' values as API Shield reads them (percent-decoded, library_text)."""
    names = template.strip("/").split("/") if template != "/" else []
    return {name[1:-1]: library_text(unquote(segment, errors=TEXT_ERRORS))
            for name, segment in zip(names, segments) if name.startswith("{")}


def name_params(template: tuple[str, ...]) -> str:
    """'/products/{id}/reviews' -> '/products/{product_id}/reviews' (names unique per template)."""
    parts: list[str] = []
    used: Counter[str] = Counter()
    for index, segment in enumerate(template):
        if segment.startswith("{"):
            kind = segment[1:-1]
            owner = template[index - 1] if index and not template[index - 1].startswith("{") else "item"
            base = re.sub(r"[^A-Za-z0-9_]", "_", f"{_singular(owner)}_{kind}")
            used[base] += 1
            segment = "{%s}" % (base if used[base] == 1 else f"{base}{used[base]}")
        parts.append(segment)
    return "/" + "/".join(parts)


def _singular(word: str) -> str:
    return word[:-3] + "y" if word.endswith("ies") else word[:-1] if word.endswith("s") and len(word) > 3 else word


# -- the document ---------------------------------------------------------------------------------


def propose(endpoints: dict[tuple[str, str], Observed], title: str = "Learned API", base_path: str = "",
            strictness: Strictness = DEFAULT_STRICTNESS) -> dict:
    """An OpenAPI 3.1 document describing the endpoints."""
    paths: dict[str, dict] = defaultdict(dict)
    pool = _same_names(endpoints)
    for (method, template), seen in sorted(endpoints.items(), key=lambda item: (item[0][1], item[0][0])):
        paths[template][method.lower()] = operation(seen, strictness, pool)
    document: dict[str, object] = {"openapi": "3.1.0",
                                   "info": {"title": title, "version": "learned",
                                            "x-strictness": strictness.name},
                                   "paths": dict(paths)}
    if base_path:
        document["servers"] = [{"url": base_path}]
    return document


def _same_names(endpoints: dict[tuple[str, str], Observed]) -> dict[str, list[str]]:
    """Every value of every query parameter and form field of one name, across operations."""
    pool: dict[str, list[str]] = defaultdict(list)
    for seen in endpoints.values():
        groups = [seen.query, *(body.fields for body in seen.bodies.values())]
        for group in groups:
            for name, per_request in group.items():
                pool[name].extend(v for values in per_request for v in values)
    return pool


def operation(seen: Observed, strictness: Strictness, pool: dict[str, list[str]] | None = None) -> dict:
    spec: dict = {"responses": {"default": {"description": "not learned"}}, "x-observed-requests": seen.count}
    params = [{"name": name, "in": "path", "required": True, "schema": path_schema(name, values, strictness)}
              for name, values in seen.path_values.items()]
    pool = pool or {}
    params += [parameter(name, "query", per_request, seen.count, strictness, pool.get(name))
               for name, per_request in sorted(seen.query.items())]
    if params:
        spec["parameters"] = params
    if seen.bodies:
        spec["requestBody"] = {
            "required": seen.with_body == seen.count and seen.count >= strictness.required_min,
            "content": {media or "*/*": media_content(media, body, strictness, pool)
                        for media, body in sorted(seen.bodies.items())},
        }
    return spec


def parameter(name: str, location: str, per_request: list[list[str]], total: int, strictness: Strictness,
              pool: list[str] | None = None) -> dict:
    return {"name": name, "in": location, "required": is_required(len(per_request), total, strictness),
            "schema": field_schema(per_request, strictness, pool)}


def is_required(present: int, total: int, strictness: Strictness) -> bool:
    return present == total and total >= strictness.required_min


def field_schema(per_request: list[list[str]], strictness: Strictness, pool: list[str] | None = None) -> dict:
    """A parameter's or form field's schema; an array when some request sent it more than once."""
    schema = scalar_schema([v for values in per_request for v in values], strictness, pool=pool)
    if any(len(values) > 1 for values in per_request):
        return {"type": "array", "items": schema}
    return schema


def path_schema(name: str, values: list[str], strictness: Strictness) -> dict:
    kind = name.rpartition("_")[2].rstrip("0123456789")
    if kind == "id":
        numbers = [int(v) for v in values if segment_kind(v) == "id"]
        return {"type": "integer", "minimum": 0} if numbers and min(numbers) >= 0 else {"type": "integer"}
    if kind == "uuid":
        return {"type": "string", "format": "uuid"}
    if kind == "hash":
        return {"type": "string", "pattern": "^[0-9a-fA-F]{16,128}$"}
    return string_schema(values, strictness)


def media_content(media: str, body: MediaSeen, strictness: Strictness, pool: dict[str, list[str]]) -> dict:
    reading = body_reading(media)
    if reading in ("form", "multipart") and (body.fields or body.files):
        return form_content(body, strictness, pool)
    if reading == "json" and body.documents:
        return {"schema": json_schema(body.documents, strictness)}
    return {}


def form_content(body: MediaSeen, strictness: Strictness, pool: dict[str, list[str]]) -> dict:
    """A form or multipart body: an object whose properties are the fields, learned like query parameters."""
    properties = {name: field_schema(per_body, strictness, pool.get(name))
                  for name, per_body in sorted(body.fields.items())}
    for name in sorted(body.files):
        properties[name] = {"type": "string", "format": "binary"}
    present = {name: len(v) for name, v in body.fields.items()}
    present.update({name: sum(types.values()) for name, types in body.files.items()})
    schema: dict = {"type": "object", "properties": properties}
    required = sorted(name for name, n in present.items() if is_required(n, body.count, strictness))
    if required:
        schema["required"] = required
    if strictness.closed_forms and body.count >= strictness.min_support:
        schema["additionalProperties"] = False
    content: dict = {"schema": schema}
    if body.files:
        content["encoding"] = {name: {"contentType": ", ".join(sorted(types))} for name, types in sorted(body.files.items())}
    return content


def json_schema(samples: list[object], strictness: Strictness = DEFAULT_STRICTNESS) -> dict:
    """One schema that every sample fits: types merged, object keys required when always there."""
    kinds = {json_type(s) for s in samples}
    nullable = "null" in kinds
    kinds.discard("null")
    if kinds == {"integer", "number"}:
        kinds = {"number"}
    present = [s for s in samples if s is not None]
    schema: dict
    if len(kinds) != 1:
        schema = {} if not kinds else {"type": sorted(kinds)}
    else:
        (kind,) = kinds
        if kind == "object":  # then every sample present is one (and a list for "array")
            schema = _object_schema([s for s in present if isinstance(s, dict)], strictness)
        elif kind == "array":
            schema = _array_schema([s for s in present if isinstance(s, list)], strictness)
        elif kind == "string":
            schema = text_schema([s for s in present if isinstance(s, str)], strictness)
        elif kind == "integer":
            schema = integers_schema([s for s in present if isinstance(s, int)], strictness)
        else:
            schema = {"type": kind}
    if nullable:
        schema = _with_null(schema)
    return schema


def _with_null(schema: dict) -> dict:
    if "enum" in schema:
        schema = {**schema, "enum": [*schema["enum"], None]}
    kind = schema.get("type")
    kinds = [kind] if isinstance(kind, str) else list(kind or [])
    return {**schema, "type": sorted({*kinds, "null"})}


def _object_schema(samples: list[dict], strictness: Strictness) -> dict:
    keys: dict[str, list] = defaultdict(list)
    for sample in samples:
        for key, value in sample.items():
            keys[key].append(value)
    required = sorted(k for k, values in keys.items() if is_required(len(values), len(samples), strictness))
    schema: dict = {"type": "object", "properties": {k: json_schema(v, strictness) for k, v in sorted(keys.items())}}
    if required:
        schema["required"] = required
    return schema


def _array_schema(samples: list[list], strictness: Strictness) -> dict:
    items = [item for sample in samples for item in sample]
    return {"type": "array", "items": json_schema(items, strictness) if items else {}}


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}.get(type(value), "string")
