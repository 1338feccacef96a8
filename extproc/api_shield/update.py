"""New traffic against an existing document: widen it only where the traffic breaks it, and say how.

Each request is checked against the document as API Shield checks it. Requests that pass change
nothing. For an operation some request broke: a parameter or form field gets its schema widened by
the values it was sent with (``widen.py``), one the document lacks is added (optional), a required
one that went missing becomes optional, a new content type is added with its learned schema, a JSON
body schema is widened by the new documents. Requests to endpoints the document lacks are learned
as new operations, their path parameters named as the document already names that position.
Security requirements are never loosened: a request without the credential is reported, not
learned. Every change is listed (operation, where, what, before, after): the upkeep is a diff to
review.
"""
from __future__ import annotations

import copy
from collections import defaultdict

from extproc.api_shield.check import body_reading, check
from extproc.api_shield.learn import (Learner, MediaSeen, Observed, field_schema, media_content, operation, parameter,
                                      sample_of)
from extproc.api_shield.operations import compile_spec
from extproc.api_shield.router import PARAM
from extproc.api_shield.shapes import Strictness
from extproc.api_shield.spec import deref, parse_spec
from extproc.api_shield.widen import Judge, widen_json, widen_scalar
from extproc.core.request import Request

Change = dict  # {"operation", "where", "change", "before"?, "after"?}


def update(document: dict, requests: list[Request], strictness: Strictness, base_path: str = "") -> tuple[dict, list[Change]]:
    """The document widened for the requests (a copy), and the changes made."""
    document = copy.deepcopy(document)
    parsed = parse_spec(document, "<document>")
    spec = compile_spec(parsed)
    judge = Judge(parsed.document.get("components") or {}, parsed.version == "3.0")
    broken: dict[tuple[str, str], Observed] = defaultdict(Observed)
    unknown: list[Request] = []
    security: set[str] = set()
    for request in requests:
        path = _below(request.url_path, base_path)
        if path is None:
            continue
        found, violations = check(spec, request, path)
        if found is None:
            unknown.append(request)
        elif violations:
            security |= {f"{found.method} {found.template}" for v in violations if v.kind == "security"}
            sample = sample_of(request, base_path)
            if sample is not None:
                broken[(found.method, found.template)].add(sample, {})
    changes: list[Change] = []
    widening = _Widening(document, strictness, judge, changes)
    for (method, template), seen in sorted(broken.items()):
        widening.operation(template, method, seen)
    _add_operations(document, unknown, strictness, base_path, changes)
    changes += [{"operation": name, "where": "security", "change": "requests without the credential: not learned"}
                for name in sorted(security)]
    return document, changes


def _below(path: str, base_path: str) -> str | None:
    if not base_path:
        return path
    if path == base_path or path.startswith(base_path + "/"):
        return path[len(base_path):] or "/"
    return None


class _Widening:
    """Widens the operations of one document, noting each change."""

    def __init__(self, document: dict, strictness: Strictness, judge: Judge, changes: list[Change]) -> None:
        self.document, self.strictness, self.judge, self.changes = document, strictness, judge, changes

    def note(self, name: str, where: str, change: str, **values) -> None:
        self.changes.append({"operation": name, "where": where, "change": change, **values})

    def operation(self, template: str, method: str, seen: Observed) -> None:
        item = deref(self.document, self.document["paths"][template])
        spec = item[method.lower()]
        name = f"{method} {template}"
        declared = [deref(self.document, p) for p in (*item.get("parameters", ()), *spec.get("parameters", ()))]
        query = {p["name"]: p for p in declared if p.get("in") == "query"}
        for param_name, per_request in sorted(seen.query.items()):
            if param_name in query:
                self.param(query[param_name], per_request, name, f"query {param_name}")
                continue
            added = parameter(param_name, "query", per_request, seen.count, self.strictness)
            added["required"] = False
            spec.setdefault("parameters", []).append(added)
            self.note(name, f"query {param_name}", "added", after=added["schema"])
        for param in query.values():
            if param.get("required") and len(seen.query.get(param["name"], ())) < seen.count:
                param["required"] = False
                self.note(name, f"query {param['name']}", "required -> optional")
        body_required = bool((deref(self.document, spec.get("requestBody")) or {}).get("required"))
        if seen.bodies or (body_required and seen.with_body < seen.count):
            self.body(spec, seen, name)

    def param(self, param: dict, per_request: list[list[str]], name: str, where: str) -> None:
        schema = deref(self.document, param.get("schema")) or {}
        widened = widen_scalar(schema, [v for values in per_request for v in values], self.strictness, judge=self.judge)
        if widened is not schema:
            param["schema"] = widened
            self.note(name, where, "widened", before=schema, after=widened)

    def body(self, spec: dict, seen: Observed, name: str) -> None:
        if spec.get("requestBody") is None:
            spec["requestBody"] = {"required": False, "content": {}}
            self.note(name, "body", "added (the operation had none)")
        body = deref(self.document, spec["requestBody"])
        if body.get("required") and seen.with_body < seen.count:
            body["required"] = False
            self.note(name, "body", "required -> optional")
        content = body.setdefault("content", {})
        for media, bodies in sorted(seen.bodies.items()):
            key = _media_key(content, media or "*/*")
            if key is None:
                learned = media_content(media, bodies, self.strictness, {})
                content[media or "*/*"] = learned
                self.note(name, f"body {media or '*/*'}", "added", after=learned.get("schema"))
                continue
            entry = content[key]
            schema = deref(self.document, entry.get("schema"))
            if not isinstance(schema, dict):
                continue
            if body_reading(media) in ("form", "multipart") and isinstance(schema.get("properties"), dict):
                self.form(schema, bodies, name)
            elif body_reading(media) == "json" and bodies.documents:
                widened = widen_json(schema, bodies.documents, self.strictness, self.judge)
                if widened is not schema:
                    entry["schema"] = widened
                    self.note(name, f"body {key}", "widened", before=schema, after=widened)

    def form(self, schema: dict, bodies: MediaSeen, name: str) -> None:
        properties = schema["properties"]
        for field, per_body in sorted(bodies.fields.items()):
            where = f"form {field}"
            if field in properties:
                holder = {"schema": properties[field]}
                self.param(holder, per_body, name, where)
                properties[field] = holder["schema"]
            else:
                properties[field] = field_schema(per_body, self.strictness)
                self.note(name, where, "added", after=properties[field])
        for field in bodies.files:
            if field not in properties:
                properties[field] = {"type": "string", "format": "binary"}
                self.note(name, f"form {field}", "added (a file)")
        present = {f: len(v) for f, v in bodies.fields.items()} | {f: sum(t.values()) for f, t in bodies.files.items()}
        required = [f for f in schema.get("required", ()) if present.get(f, 0) == bodies.count]
        for dropped in sorted(set(schema.get("required", ())) - set(required)):
            self.note(name, f"form {dropped}", "required -> optional")
        if "required" in schema:
            schema["required"] = required


def _media_key(content: dict, media: str) -> str | None:
    major = media.partition("/")[0]
    return next((k for k in (media, f"{major}/*", "*/*") if k in content), None)


def _add_operations(document: dict, requests: list[Request], strictness: Strictness, base_path: str,
                    changes: list[Change]) -> None:
    if not requests:
        return
    learner = Learner(base_path.rstrip("/"))
    for request in requests:
        learner.add(request)
    known = list(document["paths"])
    for (method, template), seen in sorted(learner.build().items()):
        aligned = align(template, known)
        item = document["paths"].setdefault(aligned, {})
        spec = operation(seen, strictness)
        if aligned != template:
            spec = _renamed(spec, template, aligned)
        item[method.lower()] = spec
        changes.append({"operation": f"{method} {aligned}", "where": "operation", "change": "added",
                        "requests": seen.count})


def align(template: str, known: list[str]) -> str:
    """The template with each path parameter named as the document names a parameter at the same
    position under the same literal prefix: the router has one parameter branch per position."""
    parts = template.strip("/").split("/")
    for other in known:
        theirs = other.strip("/").split("/")
        for index, (mine, their) in enumerate(zip(parts, theirs)):
            if PARAM.match(mine) and PARAM.match(their):
                parts[index] = their
            elif mine != their:
                break
    return "/" + "/".join(parts)


def _renamed(spec: dict, template: str, aligned: str) -> dict:
    names = dict(zip(template.strip("/").split("/"), aligned.strip("/").split("/")))
    for param in spec.get("parameters", ()):
        if param.get("in") == "path":
            param["name"] = names.get("{%s}" % param["name"], "{%s}" % param["name"])[1:-1]
    return spec


# -- the report of --diff --------------------------------------------------------------------------


def diff(document: dict, requests: list[Request], strictness: Strictness, base_path: str = "") -> dict:
    """What the traffic would change (``changes``), with the traffic's endpoints the document lacks
    (shadow endpoints), its undocumented parameters, and the document's endpoints it never used."""
    _, changes = update(document, requests, strictness, base_path)
    spec = compile_spec(parse_spec(document, "<document>"))
    used: set[tuple[str, str]] = set()
    for request in requests:
        path = _below(request.url_path, base_path)
        found = spec.router.match(path) if path is not None else None
        if found is not None and request.method in found[0]:
            used.add((request.method, found[1]))
    shadow = [{"method": c["operation"].split(" ", 1)[0], "path": c["operation"].split(" ", 1)[1],
               "requests": c["requests"]} for c in changes if c["where"] == "operation"]
    undocumented = _undocumented(changes)
    declared = [(m.upper(), t) for t, item in document["paths"].items() for m in item if m in _METHODS]
    return {"shadow_endpoints": shadow, "undocumented_params": undocumented,
            "spec_endpoints_not_seen": sorted(f"{m} {t}" for m, t in declared if (m, t) not in used),
            "changes": changes}


_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _undocumented(changes: list[Change]) -> list[dict]:
    found: dict[str, list[str]] = defaultdict(list)
    for change in changes:
        if change["change"] == "added" and change["where"].startswith(("query ", "form ")):
            found[change["operation"]].append(change["where"])
    out = []
    for name, wheres in sorted(found.items()):
        method, path = name.split(" ", 1)
        entry: dict = {"method": method, "path": path}
        for kind in ("query", "form"):
            names = sorted(w.split(" ", 1)[1] for w in wheres if w.startswith(kind + " "))
            if names:
                entry[kind] = names
        out.append(entry)
    return out
