"""Anomalies in the shape of one application's own traffic: its real requests, one thing changed.

Each anomaly starts from a normal request of the application (held out from learning) and changes
one thing, the way attacks on that application would look:

- ``payload``: the value of one of its real parameters (query or form field) replaced by a red-team
  payload (``extproc_lab.attack.payloads``, one family at a time);
- ``appended``: the payload appended to the real value (``Vaciar carrito'; DROP TABLE ...``);
- ``static``: a resource next to a real one that the application never served (backups, editor
  leftovers, configuration files, admin pages);
- ``tampering``: values no form produces: a number or code turned to letters, a value hundreds of
  characters long, one field's value in another field, an empty value, a required parameter
  dropped or its name changed (``errorMsgA=``), a parameter the application never had;
- ``method``: a real request sent with a method the application never received for it.

Everything is deterministic for a seed. Records carry ``label: attack``, ``family`` (the payload
family or the tampering) and ``kind``.
"""
from __future__ import annotations

import random
from typing import Callable
from urllib.parse import quote_plus

from extproc_lab.attack import payloads

FORM = "application/x-www-form-urlencoded"
STATIC_SUFFIXES = (".bak", ".BAK", ".old", "~", ".orig", ".inc", ".swp", ".tmp", ".zip", ".1", "/", ";.jsp")
STATIC_NAMES = ("WEB-INF/web.xml", ".git/config", "admin/", "config.inc", "backup.sql", ".env", "server-status",
                "phpinfo.php", "manager/html", "test.jsp", "debug.log", ".htaccess")
EXTRA_NAMES = ("debug", "admin", "isAdmin", "role", "cmd", "file", "redirect", "callback", "__proto__[x]", "sql")


def parameters(record: dict) -> tuple[str, list[list[str]]] | None:
    """Where the record's parameters are ('query' or 'body') and their raw name/value pairs."""
    request = record["request"]
    if request.get("query"):
        return "query", _pairs(request["query"])
    if request.get("body") and _content_type(request).startswith(FORM):
        return "body", _pairs(request["body"])
    return None


def _pairs(text: str) -> list[list[str]]:
    return [item.split("=", 1) if "=" in item else [item, ""] for item in text.split("&") if item]


def _content_type(request: dict) -> str:
    return next((v.lower() for k, v in request.get("headers", ()) if k.lower() == "content-type"), "")


def with_parameters(record: dict, where: str, pairs: list[list[str]], **labels) -> dict:
    """A copy of the record with these raw pairs as its query or form body."""
    request = dict(record["request"])
    text = "&".join(f"{name}={value}" for name, value in pairs)
    if where == "query":
        request["query"] = text
    else:
        request["body"] = text
        request["headers"] = [[k, str(len(text.encode())) if k.lower() == "content-length" else v]
                              for k, v in request.get("headers", ())]
    return {"id": "", "label": "attack", **labels, "request": request}


def encoded(value: str) -> str:
    return quote_plus(value, safe="")


# -- the kinds ------------------------------------------------------------------------------------


def payload_anomalies(bases: list[dict], per_family: int, seed: int, append: bool = False) -> list[dict]:
    rng = random.Random(seed * 7 + append)
    out = []
    for family in payloads.FAMILIES:
        for value in payloads.generate(family, per_family, seed):
            base = rng.choice(bases)
            where, pairs = parameters(base)  # type: ignore[misc] - bases all have parameters
            index = rng.randrange(len(pairs))
            pairs = [list(p) for p in pairs]
            pairs[index][1] = (pairs[index][1] if append else "") + encoded(value)
            out.append(with_parameters(base, where, pairs, family=family, kind="appended" if append else "payload",
                                       parameter=pairs[index][0]))
    return out


def static_anomalies(records: list[dict], count: int, seed: int) -> list[dict]:
    rng = random.Random(seed * 11)
    paths = sorted({r["request"]["path"] for r in records})
    out = []
    for _ in range(count):
        path = rng.choice(paths)
        if rng.random() < 0.6:
            target = path + rng.choice(STATIC_SUFFIXES)
        else:
            target = path.rpartition("/")[0] + "/" + rng.choice(STATIC_NAMES)
        out.append({"id": "", "label": "attack", "family": "static", "kind": "static",
                    "request": {"method": "GET", "path": target, "query": "",
                                "headers": _get_headers(rng.choice(records)), "body": ""}})
    return out


def _get_headers(record: dict) -> list[list[str]]:
    return [[k, v] for k, v in record["request"].get("headers", ())
            if k.lower() not in ("content-type", "content-length")]


def _letters(value: str, rng: random.Random) -> str | None:
    """A number or code spelled with letters ('31790' -> 'xkqfe'); None for a value with letters."""
    if not value or any(c.isalpha() for c in value):
        return None
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in value)


def _overflow(value: str, rng: random.Random) -> str:
    return encoded("A" * rng.randrange(300, 3000))


TAMPERINGS: dict[str, Callable[[list[list[str]], int, random.Random], list[list[str]] | None]] = {
    "letters-in-number": lambda pairs, i, rng: _set(pairs, i, _letters(pairs[i][1], rng)),
    "overflow": lambda pairs, i, rng: _set(pairs, i, _overflow(pairs[i][1], rng)),
    "swapped-field": lambda pairs, i, rng: _set(pairs, i, rng.choice([v for n, v in pairs if v != pairs[i][1]] or [None])),
    "empty": lambda pairs, i, rng: _set(pairs, i, "") if pairs[i][1] else None,
    "missing": lambda pairs, i, rng: pairs[:i] + pairs[i + 1:],
    "renamed": lambda pairs, i, rng: pairs[:i] + [[pairs[i][0] + rng.choice("A1_x"), pairs[i][1]]] + pairs[i + 1:],
    "extra": lambda pairs, i, rng: pairs + [[encoded(rng.choice(EXTRA_NAMES)), "1"]],
}


def _set(pairs: list[list[str]], index: int, value: str | None) -> list[list[str]] | None:
    if value is None:
        return None
    out = [list(p) for p in pairs]
    out[index][1] = value
    return out


def tampering_anomalies(bases: list[dict], per_kind: int, seed: int) -> list[dict]:
    rng = random.Random(seed * 13)
    out = []
    for name, tamper in TAMPERINGS.items():
        made, attempts = 0, 0
        while made < per_kind and attempts < per_kind * 50:
            attempts += 1
            base = rng.choice(bases)
            where, pairs = parameters(base)  # type: ignore[misc]
            index = rng.randrange(len(pairs))
            changed = tamper(pairs, index, rng)
            if changed is None:
                continue
            out.append(with_parameters(base, where, changed, family=name, kind="tampering", parameter=pairs[index][0]))
            made += 1
    return out


METHODS = ("PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND")


def method_anomalies(records: list[dict], count: int, seed: int) -> list[dict]:
    rng = random.Random(seed * 17)
    seen = {(r["request"]["method"], r["request"]["path"]) for r in records}
    out = []
    for _ in range(count * 10):
        if len(out) == count:
            break
        base = rng.choice(records)
        method = rng.choice(METHODS)
        if (method, base["request"]["path"]) not in seen:
            out.append({"id": "", "label": "attack", "family": method, "kind": "method",
                        "request": {**base["request"], "method": method}})
    return out


def generate(normal: list[dict], per_family: int, seed: int) -> list[dict]:
    """Every kind of anomaly from these normal records (numbered ids)."""
    bases = [r for r in normal if parameters(r)]
    made: list[dict] = []
    if bases:
        made += payload_anomalies(bases, per_family, seed)
        made += payload_anomalies(bases, per_family, seed, append=True)
        made += tampering_anomalies(bases, per_family * 2, seed)
    made += static_anomalies(normal, per_family * 4, seed)
    made += method_anomalies(normal, per_family * 2, seed)
    for number, record in enumerate(made, 1):
        record["id"] = f"anomaly-{record['kind']}-{number}"
    return made
