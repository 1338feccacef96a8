"""An OpenAPI document compiled into operations: per method and path template, the parameters
(with their coercion from strings and a compiled validator), content types and body validators,
and security requirements. Built once per policy load."""
from __future__ import annotations

from dataclasses import dataclass

import jsonschema_rs

from extproc.api_shield.router import Router
from extproc.api_shield.spec import METHODS, Spec, SpecError, deref

FORM_MEDIA = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})

@dataclass(frozen=True)
class Param:
    name: str
    location: str  # query | header | path | cookie | form (a field of a form or multipart body)
    required: bool
    kind: str  # the schema's type, for coercing the string the client sent
    item_kind: str
    explode: bool
    validator: jsonschema_rs.Validator | None
    pointer: str  # where the parameter is defined in the spec


@dataclass(frozen=True)
class Body:
    media_type: str  # "application/json", "application/*", "*/*"
    validator: jsonschema_rs.Validator | None
    pointer: str
    # A form or multipart body whose schema is an object with properties: its fields, checked like
    # query parameters (coerced from strings by their type); None for any other body.
    fields: tuple[Param, ...] | None = None
    closed: bool = False  # additionalProperties: false - a field the schema does not name is invalid


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    pointer: str
    params: tuple[Param, ...]
    query_names: frozenset[str]
    body_required: bool
    bodies: tuple[Body, ...]
    security: tuple[tuple[tuple[str, str, str], ...], ...]  # any of: all of (kind, where, name)


@dataclass(frozen=True)
class CompiledSpec:
    router: Router[dict[str, Operation]]  # template -> {METHOD: Operation}
    operations: int
    source: str


def compile_spec(spec: Spec) -> CompiledSpec:
    document, router, count = spec.document, Router[dict[str, Operation]](), 0
    schemes = document.get("components", {}).get("securitySchemes", {}) or {}
    for template, item in document["paths"].items():
        item = deref(document, item)
        shared = item.get("parameters", [])
        by_method: dict[str, Operation] = {}
        for method in METHODS:
            operation = item.get(method)
            if isinstance(operation, dict):
                pointer = f"#/paths/{_escape(template)}/{method}"
                by_method[method.upper()] = _operation(spec, method.upper(), template, operation, shared, pointer,
                                                       schemes)
                count += 1
        router.add(template, by_method)
    return CompiledSpec(router, count, spec.source)


def _operation(spec: Spec, method: str, template: str, operation: dict, shared: list, pointer: str,
               schemes: dict) -> Operation:
    document = spec.document
    path_item = pointer.rpartition("/")[0]
    declared = [(f"{path_item}/parameters/{i}", p) for i, p in enumerate(shared)]
    declared += [(f"{pointer}/parameters/{i}", p) for i, p in enumerate(operation.get("parameters", []))]
    params: dict[tuple[str, str], Param] = {}  # an operation's parameter overrides the path item's
    for where, raw in declared:
        param = deref(document, raw)
        if not isinstance(param, dict) or "name" not in param or "in" not in param:
            raise SpecError(f"{spec.source}: {where}: a parameter needs 'name' and 'in'")
        params[(param["in"], param["name"])] = _param(spec, param, where)
    body = deref(document, operation.get("requestBody")) or {}
    bodies = tuple(_body(spec, media.lower(), content, f"{pointer}/requestBody/content/{_escape(media)}")
                   for media, content in (body.get("content") or {}).items() if isinstance(content, dict))
    requirements = operation.get("security", document.get("security", []))
    return Operation(
        method=method, template=template, pointer=pointer, params=tuple(params.values()),
        query_names=frozenset(name for (where, name) in params if where == "query"),
        body_required=bool(body.get("required")), bodies=bodies,
        security=tuple(_requirement(req, schemes) for req in requirements or ()),
    )


def _body(spec: Spec, media: str, content: dict, pointer: str) -> Body:
    schema = deref(spec.document, content.get("schema"))
    body = Body(media, _validator(spec, schema, pointer), f"{pointer}/schema")
    if media not in FORM_MEDIA or not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return body
    required = set(schema.get("required") or ())
    encoding = content.get("encoding") or {}
    fields = tuple(
        _param(spec, {"name": name, "in": "form", "required": name in required, "schema": property_schema,
                      **{k: v for k, v in (encoding.get(name) or {}).items() if k in ("style", "explode")}},
               f"{pointer}/schema/properties/{_escape(name)}")
        for name, property_schema in schema["properties"].items())
    return Body(media, body.validator, body.pointer, fields, schema.get("additionalProperties") is False)


def _param(spec: Spec, param: dict, pointer: str) -> Param:
    schema = deref(spec.document, param.get("schema")) or {}
    items = deref(spec.document, schema.get("items")) or {}
    location = param["in"]
    style = param.get("style", "form" if location in ("query", "cookie", "form") else "simple")
    return Param(
        name=param["name"] if location != "header" else param["name"].lower(),
        location=location,
        required=bool(param.get("required")) or location == "path",
        kind=_type_of(schema),
        item_kind=_type_of(items),
        explode=bool(param.get("explode", style == "form")),
        validator=_validator(spec, param.get("schema"), pointer),
        pointer=pointer,
    )


def _type_of(schema: dict) -> str:
    kind = schema.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    return kind


def _validator(spec: Spec, schema: object, pointer: str) -> jsonschema_rs.Validator | None:
    if not isinstance(schema, dict) or not schema:
        return None
    root = {"allOf": [schema], "components": spec.document.get("components", {})}
    try:
        return jsonschema_rs.Draft202012Validator(root, validate_formats=True)
    except (ValueError, jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError) as exc:
        raise SpecError(f"{spec.source}: {pointer}: invalid schema: {str(exc).splitlines()[0]}") from None


def _requirement(requirement: dict, schemes: dict) -> tuple[tuple[str, str, str], ...]:
    """One security requirement object: every named scheme must be satisfied."""
    needs = []
    for name in requirement or {}:
        scheme = schemes.get(name) or {}
        if scheme.get("type") == "http":
            needs.append(("http", "header", str(scheme.get("scheme", "bearer")).lower()))
        elif scheme.get("type") == "apiKey":
            needs.append(("apiKey", str(scheme.get("in", "header")), str(scheme.get("name", "")).lower()
                          if scheme.get("in") == "header" else str(scheme.get("name", ""))))
        elif scheme.get("type") in ("oauth2", "openIdConnect"):
            needs.append(("http", "header", "bearer"))
    return tuple(needs)


def _escape(text: str) -> str:
    return text.replace("~", "~0").replace("/", "~1")
