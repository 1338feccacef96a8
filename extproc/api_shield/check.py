"""One request against the compiled spec: the violations, each with a kind and a spec location.

Kinds: unknown_path, method_not_allowed, missing_param, invalid_param, unknown_param,
content_type, missing_body, body_schema, security. Parameters arrive as strings and are coerced
to the schema's type first (``?limit=10`` is the integer 10; ``?tags=a&tags=b`` or ``tags=a,b``
an array, as the parameter's style and explode say).
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from extproc.api_shield.operations import Body, CompiledSpec, Operation, Param
from extproc.core.request import Request
from extproc.core.text import TEXT_ERRORS, library_text

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
    query: dict[str, list[str]] = {}
    for arg in request.query_args:
        query.setdefault(arg.name, []).append(arg.value)
    for param in operation.params:
        raw = _raw_values(param, request, query, path_params)
        if not raw:
            if param.required:
                out.append(Violation("missing_param", param.pointer, f"{param.location} {param.name}"))
            continue
        value = coerce(param, raw)
        if param.validator is not None and not param.validator.is_valid(value):
            error = next(iter(param.validator.iter_errors(value)), None)
            out.append(Violation("invalid_param", param.pointer, f"{param.location} {param.name}: "
                                 + (error.message[:200] if error else "")))
    for name in query:
        if name not in operation.query_names:
            out.append(Violation("unknown_param", operation.pointer, f"query {name[:64]}"))


def _raw_values(param: Param, request: Request, query: dict[str, list[str]], path_params: dict[str, str]) -> list[str]:
    """The parameter's values as the validator reads them: bytes that are not UTF-8 as the Latin-1
    text a legacy application reads (``?q=Jam%F3n`` is 'Jamón'), judged by the schema like any."""
    if param.location == "query":
        values = query.get(param.name, [])
    elif param.location == "path":
        values = [unquote(path_params[param.name], errors=TEXT_ERRORS)] if param.name in path_params else []
    elif param.location == "header":
        values = request.header_map.get(param.name, ())
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
    if body.validator is None or "json" not in request.content_type:
        return  # forms, multipart and other media: the content type is checked, the schema is not
    document = request.json
    if document is None and request.body.strip() != b"null":
        out.append(Violation("body_schema", body.pointer, "not a JSON document"))
        return
    error = next(iter(body.validator.iter_errors(document)), None)
    if error is not None:
        instance = "/" + "/".join(str(p) for p in error.instance_path)
        schema = "/".join(str(p) for p in error.schema_path)
        out.append(Violation("body_schema", f"{body.pointer} ({schema}) at {instance}", error.message[:200]))


def _body_for(bodies: tuple[Body, ...], media_type: str) -> Body | None:
    major = media_type.partition("/")[0]
    for candidate in (media_type, f"{major}/*", "*/*"):
        for body in bodies:
            if body.media_type == candidate:
                return body
    return None

