"""Widen a schema just enough to accept new values, keeping the rest of what it says.

``extproc learn --update`` uses this where new traffic breaks a document: an enum gains the new
values (or, past the strictness's limit, becomes the pattern of all of them), a number range
grows to the new values' digits, a character-class pattern admits the new characters (widened by
the strictness, as learning does) and lengths, a format the new values do not have is dropped.
A pattern this module did not write (edited by hand) is kept as it is beside the new shape
(``anyOf``), never rewritten. Every widened schema accepts every value it was widened for.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from extproc.api_shield.spec import openapi30_to_json_schema
from extproc.api_shield.shapes import (CLASS_TEXT, INTEGER, NUMBER, Strictness, accepts, char_class, class_text,
                                       length_bounds, quantifier, runs, scalar_schema, text_schema, widened)

_RUN = re.compile(r"\[((?:\\u\{[0-9a-f]+\}|\\p\{L\}|\\.|[^\]\\])*)\]\{(\d+)(?:,(\d+))?\}")
_UNESCAPED = {"\\\\": "\\", "\\]": "]", "\\[": "[", "\\^": "^", "\\-": "-", "\\t": "\t", "\\n": "\n", "\\r": "\r"}


@dataclass(frozen=True)
class Judge:
    """Validates as API Shield will: ``$ref``s against the document's components, an OpenAPI 3.0
    schema rewritten to JSON Schema first (``nullable``)."""

    components: dict = field(default_factory=dict)
    openapi30: bool = False

    def accepts(self, schema: dict, values: list) -> bool:
        if self.openapi30:
            schema = openapi30_to_json_schema(schema)
        return accepts({"allOf": [schema], "components": self.components} if self.components else schema, values)


PLAIN = Judge()


@dataclass
class Run:
    """One bracket of a learned pattern: the classes it admits and its length bounds."""

    classes: set[str]
    low: int
    high: int


def parse_pattern(pattern: str) -> list[Run] | None:
    """The runs of a pattern learning wrote (``^[0-9]{8}[A-Za-z]{1}$``); None for any other pattern."""
    if not (pattern.startswith("^") and pattern.endswith("$")):
        return None
    body, found, position = pattern[1:-1], [], 0
    while position < len(body):
        match = _RUN.match(body, position)
        if match is None:
            return None
        classes = _parse_class(match.group(1))
        if classes is None:
            return None
        low = int(match.group(2))
        found.append(Run(classes, low, int(match.group(3)) if match.group(3) else low))
        position = match.end()
    return found or None


def _parse_class(text: str) -> set[str] | None:
    classes: set[str] = set()
    for name, spelled in sorted(CLASS_TEXT.items(), key=lambda item: -len(item[1])):
        if spelled in text:
            classes.add(name)
            text = text.replace(spelled, "", 1)
    position = 0
    while position < len(text):
        if text.startswith("\\u{", position):
            end = text.index("}", position)
            classes.add(chr(int(text[position + 3:end], 16)))
            position = end + 1
        elif text[position] == "\\":
            escaped = _UNESCAPED.get(text[position:position + 2])
            if escaped is None:
                return None
            classes.add(escaped)
            position += 2
        elif text[position] == "-":  # a range this module never writes
            return None
        else:
            classes.add(text[position])
            position += 1
    return classes


def render(runs_: list[Run]) -> str:
    return "^" + "".join(class_text(r.classes) + quantifier(r.low, r.high) for r in runs_) + "$"


# -- scalar parameters ----------------------------------------------------------------------------


def widen_scalar(schema: dict, values: list[str], strictness: Strictness, as_text: bool = False,
                 judge: Judge = PLAIN) -> dict:
    """``schema`` widened to accept ``values`` (strings as the client sent them; ``as_text``: JSON
    strings, which stay strings whatever they spell)."""
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        return {**schema, "items": widen_scalar(schema["items"], values, strictness, as_text, judge)}
    if _accepts_text(schema, values, as_text, judge):
        return schema
    kind = schema.get("type")
    if kind == "integer" and not as_text and all(INTEGER.match(v) for v in values):
        return _widen_numbers(schema, [int(v) for v in values], strictness)
    if kind == "number" and not as_text and all(NUMBER.match(v) for v in values):
        return _widen_numbers(schema, [float(v) for v in values], strictness)
    if kind not in (None, "string") and not as_text and _fits_numbers(values):
        # integers met decimals: a number range around both
        return {"type": "number"}
    return _widen_string(schema, values, strictness, judge)


def _fits_numbers(values: list[str]) -> bool:
    return all(NUMBER.match(v) for v in values)


def _accepts_text(schema: dict, values: list[str], as_text: bool, judge: Judge) -> bool:
    kind = schema.get("type")
    if as_text or kind in (None, "string"):
        return judge.accepts(schema, values)
    converted: list[object] = []
    for value in values:
        if kind == "integer" and INTEGER.match(value):
            converted.append(int(value))
        elif kind == "number" and NUMBER.match(value):
            converted.append(float(value))
        elif kind == "boolean" and value in ("true", "false"):
            converted.append(value == "true")
        else:
            return False
    return judge.accepts(schema, converted)


def _widen_numbers(schema: dict, numbers: list, strictness: Strictness) -> dict:
    out = dict(schema)
    if "enum" in out:
        merged = sorted(set(out["enum"]) | set(numbers))
        if len(merged) <= strictness.enum_max:
            return {**out, "enum": merged}
        numbers, out = merged, {k: v for k, v in out.items() if k != "enum"}
    learned = scalar_schema([str(n) for n in numbers], _at_once(strictness), enum=False)
    for bound, pick in (("minimum", min), ("maximum", max)):
        if bound in out and bound in learned:
            out[bound] = pick(out[bound], learned[bound])
        elif bound in out:
            out[bound] = pick(out[bound], *numbers)
    return out


def _at_once(strictness: Strictness) -> Strictness:
    """The strictness with no minimum support: widening learns from the few values it is given."""
    return replace(strictness, min_support=1)


def _widen_string(schema: dict, values: list[str], strictness: Strictness, judge: Judge) -> dict:
    old = _as_strings(schema)
    if "enum" in schema and all(isinstance(v, str) for v in old):
        merged = sorted(set(old) | set(values))
        if len(merged) <= strictness.enum_max:
            return {**_without(schema, "enum"), "type": "string", "enum": merged}
    out = {k: v for k, v in schema.items() if k not in ("enum", "minimum", "maximum", "exclusiveMinimum",
                                                         "exclusiveMaximum", "multipleOf")}
    out["type"] = "string"
    if "format" in out and not accepts({"format": out["format"]}, values):
        # an e-mail address with letters beyond ASCII is still one
        wider = "idn-email" if out["format"] == "email" and accepts({"format": "idn-email"}, values) else None
        if wider:
            out["format"] = wider
        else:
            out.pop("format")
    if "maxLength" in out:  # with the margin, however few the new values
        lengths = [len(v) for v in values]
        out["maxLength"] = max(out["maxLength"], length_bounds(lengths, replace(strictness, exact_length=False))[1])
    if "minLength" in out:
        out["minLength"] = min([out["minLength"], *map(len, values)])
    pattern = out.get("pattern")
    if pattern is not None or "enum" in schema or schema.get("type") not in (None, "string"):
        widened_pattern = _widen_pattern(pattern, old + values, strictness)
        if widened_pattern is None:  # a pattern written by hand: kept, beside the new values' shape
            out.pop("pattern")
            return {"anyOf": [schema, text_schema(values, _at_once(strictness), enum=False)]}
        out["pattern"] = widened_pattern
    if not judge.accepts(out, values):  # never: but a widening must not refuse what it was made for
        return {"anyOf": [schema, {"type": "string"}]}
    return out


def _without(schema: dict, key: str) -> dict:
    return {k: v for k, v in schema.items() if k != key}


def _as_strings(schema: dict) -> list[str]:
    """Values that stand for what the schema admitted before: its enum, or its number range."""
    if "enum" in schema:
        return [v if isinstance(v, str) else str(v).lower() for v in schema["enum"] if v is not None]
    if schema.get("type") in ("integer", "number"):
        return [str(schema[b]) for b in ("minimum", "maximum") if b in schema] or ["0"]
    if schema.get("type") == "boolean":
        return ["true", "false"]
    return []


def _widen_pattern(pattern: str | None, values: list[str], strictness: Strictness) -> str | None:
    """A learned pattern grown to admit values; None when the pattern is not one learning writes."""
    old = parse_pattern(pattern) if pattern is not None else []
    if old is None:
        return None
    new = _runs_of(values, strictness)
    if not old:  # an enum or a number range becoming a pattern: the shape of all its values
        merged = new
    elif len(old) == len(new) and _same_kinds(old, new):
        merged = [Run(a.classes | b.classes, min(a.low, b.low), max(a.high, b.high)) for a, b in zip(old, new)]
    else:  # different structures: one class run holding both
        lows = [sum(r.low for r in part) for part in (old, new) if part]
        highs = [sum(r.high for r in part) for part in (old, new) if part]
        merged = [Run(set().union(*(r.classes for r in old + new)), min(lows), max(highs))]
    return render(merged)


def _runs_of(values: list[str], strictness: Strictness) -> list[Run]:
    split = [runs(v) for v in values]
    signature = [kind for kind, _ in split[0]] if split else []
    if split and all([kind for kind, _ in r] == signature for r in split) and len(signature) > 1:
        out = []
        for index in range(len(signature)):
            texts = [r[index][1] for r in split]
            low, high = length_bounds([len(t) for t in texts], strictness)
            out.append(Run(widened({char_class(c) for t in texts for c in t}, strictness), max(low, 1), high))
        return out
    low, high = length_bounds([len(v) for v in values] or [0], strictness)
    return [Run(widened({char_class(c) for v in values for c in v}, strictness), low, high)]


def _same_kinds(old: list[Run], new: list[Run]) -> bool:
    """Runs line up when each pair holds the same kind of character (digits with digits, ...)."""
    def kind(run: Run) -> str:
        letters = {"lower", "upper", "latin", "letter"}
        return "alpha" if run.classes & letters else "".join(sorted(run.classes))
    return all(kind(a) == kind(b) for a, b in zip(old, new))


# -- JSON bodies ----------------------------------------------------------------------------------


def widen_json(schema: dict, samples: list, strictness: Strictness, judge: Judge = PLAIN) -> dict:
    """A JSON body's schema widened to accept the samples: new properties learned, required ones
    that went missing made optional, values widened as parameters are."""
    from extproc.api_shield.learn import json_schema, json_type

    if not samples or judge.accepts(schema, samples):
        return schema
    if any(key in schema for key in ("$ref", "anyOf", "oneOf", "allOf")):
        return {"anyOf": [schema, json_schema(samples, strictness)]}
    admitted = _types(schema)
    admits = [admitted is None or json_type(s) in admitted or (json_type(s) == "integer" and "number" in admitted)
              for s in samples]
    fits = [s for s, ok in zip(samples, admits) if ok]
    others = [s for s, ok in zip(samples, admits) if not ok]
    out = _widen_kind(schema, fits, strictness, judge) if fits else schema
    if others:
        out = {"anyOf": [out, json_schema(others, strictness)]}
    return out if judge.accepts(out, samples) else {"anyOf": [schema, json_schema(samples, strictness)]}


def _types(schema: dict) -> set[str] | None:
    kind = schema.get("type")
    if kind is None:
        return None
    return {kind} if isinstance(kind, str) else set(kind)


def _widen_kind(schema: dict, samples: list, strictness: Strictness, judge: Judge) -> dict:
    from extproc.api_shield.learn import json_schema

    out = dict(schema)
    objects = [s for s in samples if isinstance(s, dict)]
    if objects and isinstance(out.get("properties"), dict):
        properties = dict(out["properties"])
        for key in sorted({k for o in objects for k in o}):
            values = [o[key] for o in objects if key in o]
            properties[key] = widen_json(properties[key], values, strictness, judge) if key in properties \
                else json_schema(values, strictness)
        out["properties"] = properties
        if "required" in out:
            out["required"] = [k for k in out["required"] if all(k in o for o in objects)]
            if not out["required"]:
                out.pop("required")
    arrays = [s for s in samples if isinstance(s, list)]
    if arrays and isinstance(out.get("items"), dict):
        out["items"] = widen_json(out["items"], [item for a in arrays for item in a], strictness, judge)
    strings = [s for s in samples if isinstance(s, str)]
    if strings:
        out = _merge_string(out, widen_scalar(_string_part(out), strings, strictness, True, judge))
    numbers = [s for s in samples if isinstance(s, (int, float)) and not isinstance(s, bool)]
    if numbers:
        out = _widen_json_numbers(out, numbers, strictness)
    return out


def _string_part(schema: dict) -> dict:
    keys = ("enum", "pattern", "format", "minLength", "maxLength")
    return {"type": "string", **{k: v for k, v in schema.items() if k in keys}}


def _merge_string(schema: dict, widened_string: dict) -> dict:
    if "anyOf" in widened_string:
        return {"anyOf": [schema, widened_string["anyOf"][1]]}
    out = {k: v for k, v in schema.items() if k not in ("enum", "pattern", "format", "minLength", "maxLength")}
    out.update({k: v for k, v in widened_string.items() if k != "type"})
    return out


def _widen_json_numbers(schema: dict, numbers: list, strictness: Strictness) -> dict:
    out = dict(schema)
    if any(isinstance(n, float) for n in numbers) and out.get("type") == "integer":
        out["type"] = "number"
    if "enum" in out:
        merged = sorted({*out["enum"], *numbers}, key=str)
        if len(merged) <= strictness.enum_max:
            out["enum"] = merged
            return out
        out.pop("enum")
    for bound, pick in (("minimum", min), ("maximum", max)):
        if bound in out:
            out[bound] = pick(out[bound], *numbers)
    return out
