"""One request against the compiled spec: the violations, each with a kind and a spec location.

Kinds: unknown_path, method_not_allowed, missing_param, invalid_param, unknown_param,
content_type, missing_body, body_schema, security. Parameters arrive as strings and are coerced
to the schema's type first (``?limit=10`` is the integer 10; ``?tags=a&tags=b`` or ``tags=a,b``
an array, as the parameter's style and explode say). The fields of a form or multipart body whose
schema is an object with properties are parameters too (``form <name>`` in the detail).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable
from urllib.parse import unquote

from extproc.api_shield.operations import Body, CompiledSpec, Operation, Param
from extproc.core.request import Arg, Request
from extproc.core.text import TEXT_ERRORS, library_decode, library_text

MAX_VIOLATIONS = 8


@dataclass(frozen=True, slots=True)
class Violation:
    kind: str
    location: str  # where in the spec (JSON pointer), plus the failing part of the request
    detail: str = ""  # for the audit record; never sent to the client


def check(spec: CompiledSpec, request: Request, path: str) -> tuple[Operation | None, list[Violation]]:
    found = spec.router.match(path)
    if found is None:
        return None, [Violation("unknown_path", path[:200])]
    by_method, template, path_params = found
    operation = by_method.get(request.method)
    if operation is None:
        return None, [Violation("method_not_allowed", f"{template} {request.method}")]
    violations: list[Violation] = []
    _check_params(operation, request, path_params, violations)
    _check_security(operation, request, violations)
    if request.method not in ("GET", "HEAD", "DELETE", "OPTIONS") or request.body:
        _check_body(operation, request, violations)
    return operation, violations[:MAX_VIOLATIONS]


def _check_params(operation: Operation, request: Request, path_params: dict[str, str], out: list[Violation]) -> None:
    query = _named_values(request.query_args)
    for param in operation.params:
        raw = _raw_values(param, request, query, path_params)
        if not raw:
            if param.required:
                out.append(Violation("missing_param", param.pointer, f"{param.location} {param.name}"))
            continue
        _check_values(param, raw, out)
    for name in query:
        if name not in operation.query_names:
            out.append(Violation("unknown_param", operation.pointer, f"query {name[:64]}"))


def _named_values(args: Iterable[Arg]) -> dict[str, list[str]]:
    """Arguments by name, names and values as the validator reads them (see _raw_values)."""
    named: dict[str, list[str]] = {}
    for arg in args:
        named.setdefault(library_text(arg.name), []).append(library_text(arg.value))
    return named


def _check_values(param: Param, raw: list[str], out: list[Violation]) -> None:
    """Every value is checked: a parameter that is no array, sent twice (``?id=1&id=1'--``), has
    each copy judged, as applications differ on which copy they read."""
    if param.validator is None:
        return
    for value in [coerce(param, raw)] if param.kind == "array" else [coerce(param, [one]) for one in raw]:
        if not param.validator.is_valid(value):
            error = next(iter(param.validator.iter_errors(value)), None)
            out.append(Violation("invalid_param", param.pointer, f"{param.location} {param.name}: "
                                 + (error.message[:200] if error else "")))
            return


def _raw_values(param: Param, request: Request, query: dict[str, list[str]], path_params: dict[str, str]) -> list[str]:
    """The parameter's values as the validator reads them: bytes that are not UTF-8 as the Latin-1
    text a legacy application reads (``?q=Jam%F3n`` is 'Jamón'), judged by the schema like any."""
    if param.location == "query":
        return query.get(param.name, [])
    if param.location == "path":
        values = [unquote(path_params[param.name], errors=TEXT_ERRORS)] if param.name in path_params else []
    elif param.location == "header":
        values = list(request.header_map.get(param.name, ()))
    else:
        values = [value for name, value in request.cookies if name == param.name]
    return [library_text(value) for value in values]


def coerce(param: Param, raw: list[str]) -> object:
    if param.kind == "array":
        items = raw if param.explode else [part for value in raw for part in value.split(",")]
        return [_scalar(param.item_kind, item) for item in items]
    return _scalar(param.kind, raw[0])


def _scalar(kind: str, text: str) -> object:
    """The typed value when the text is one, else the text itself (the validator then says why)."""
    try:
        if kind == "integer" and text.lstrip("-").isdigit():
            return int(text)
        if kind == "number":
            return float(text) if text.strip().lower() not in ("nan", "inf", "-inf", "infinity") else text
    except ValueError:
        return text
    if kind == "boolean" and text in ("true", "false"):
        return text == "true"
    return text


def _check_security(operation: Operation, request: Request, out: list[Violation]) -> None:
    """The credential the spec asks for must be present; the access layer verifies it."""
    if not operation.security or any(not requirement for requirement in operation.security):
        return
    if not any(all(_present(request, need) for need in requirement) for requirement in operation.security):
        out.append(Violation("security", f"{operation.pointer}/security"))


def _present(request: Request, need: tuple[str, str, str]) -> bool:
    kind, where, name = need
    if kind == "http":
        return request.header("authorization").lower().startswith(name + " ")
    if where == "header":
        return bool(request.header(name))
    if where == "query":
        return any(arg.name == name for arg in request.query_args)
    return any(cookie == name for cookie, _ in request.cookies)


def _check_body(operation: Operation, request: Request, out: list[Violation]) -> None:
    if not request.body:
        if operation.body_required:
            out.append(Violation("missing_body", f"{operation.pointer}/requestBody"))
        return
    if not operation.bodies:
        out.append(Violation("content_type", f"{operation.pointer}/requestBody", "this operation takes no body"))
        return
    body = _body_for(operation.bodies, request.content_type)
    if body is None:
        out.append(Violation("content_type", f"{operation.pointer}/requestBody/content",
                             request.content_type[:100] or "(none)"))
        return
    if body.fields is not None:
        _check_form(body, request, out)
        return
    if body.validator is None or body_reading(request.content_type) != "json":
        return  # other media: the content type is checked, the schema is not
    document = request.json
    if document is None and request.body.strip() != b"null":
        out.append(Violation("body_schema", body.pointer, "not a JSON document"))
        return
    error = next(iter(body.validator.iter_errors(document)), None)
    if error is not None:
        instance = "/" + "/".join(str(p) for p in error.instance_path)
        schema = "/".join(str(p) for p in error.schema_path)
        out.append(Violation("body_schema", f"{body.pointer} ({schema}) at {instance}", error.message[:200]))


def body_reading(media_type: str) -> str | None:
    """How API Shield reads a body of this media type: form, multipart, json, or None (not at all).
    Learning reads bodies the same way (learn.py), so a learned schema describes what is checked."""
    if media_type == "application/x-www-form-urlencoded":
        return "form"
    if media_type == "multipart/form-data":
        return "multipart"
    return "json" if "json" in media_type else None


def _check_form(body: Body, request: Request, out: list[Violation]) -> None:
    """Form and multipart fields, checked like query parameters: the same kinds of violation."""
    if body_reading(request.content_type) == "multipart":
        fields = _named_values(Arg("multipart", p.name, p.text if p.filename is None else library_decode(p.data))
                               for p in request.multipart_parts)
    else:
        fields = _named_values(request.form)
    declared = {field.name for field in body.fields or ()}
    for field in body.fields or ():
        raw = fields.get(field.name, [])
        if not raw:
            if field.required:
                out.append(Violation("missing_param", field.pointer, f"form {field.name}"))
            continue
        _check_values(field, raw, out)
    for name in fields:
        if name not in declared:
            # additionalProperties: false makes the body itself invalid; else a field like an unknown query parameter
            kind = "body_schema" if body.closed else "unknown_param"
            out.append(Violation(kind, body.pointer, f"form {name[:64]}"))


def _body_for(bodies: tuple[Body, ...], media_type: str) -> Body | None:
    major = media_type.partition("/")[0]
    for candidate in (media_type, f"{major}/*", "*/*"):
        for body in bodies:
            if body.media_type == candidate:
                return body
    return None

