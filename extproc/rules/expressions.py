"""Rule expressions in CEL (the expression language of Envoy, Kubernetes and Istio), compiled once.

A request's activation is built once, only when some rule that survived the index needs it,
and only with what those rules reference: scalars are cheap; maps (headers, args, cookies, the
body) are converted only for the rules that read them. Functions give the fast paths:

    header(name)  arg(name)  cookie(name)       first value, "" when absent
    in_list(list, address)                      named IP/CIDR list, one binary search
    sig(set, value)   any_arg_sig(set)          named signature set, linear time
    rx(value, pattern)                          RE2 regex, compiled once per pattern

CEL's own ``matches()`` is refused: this engine compiles its regex on every evaluation, and with
a backtracking engine on attacker input; ``rx()`` does neither.
"""
from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Callable, Mapping

import cel

from extproc.rules.ipset import IPSet
from extproc.rules.signatures import SignatureSet, compile_regex
from extproc.core.request import Request
from extproc.core.text import library_decode, library_text, library_value

SCALARS = ("method", "host", "path", "raw_path", "query", "source_ip", "route", "content_type", "user_agent",
           "body_size", "protocol")
MAPS = ("headers", "args", "cookies", "body", "scores", "labels")
FUNCTIONS = ("header", "arg", "cookie", "in_list", "sig", "any_arg_sig", "rx")
LIST_NAME = re.compile(r"in_list\(\s*['\"]([^'\"]+)['\"]")
SET_NAME = re.compile(r"(?:any_arg_sig|sig)\(\s*['\"]([^'\"]+)['\"]")
RX_PATTERN = re.compile(r"rx\([^,()]+,\s*(['\"])(.*?)\1\s*\)")
BODY_READERS = frozenset({"args", "body", "body_size", "arg", "any_arg_sig"})  # need the body to have arrived


class ExpressionError(ValueError):
    """The expression does not compile or uses what this engine does not offer."""


@dataclass(frozen=True)
class Expression:
    source: str
    program: cel.Program
    variables: frozenset[str]
    functions: frozenset[str]

    @property
    def reads_body(self) -> bool:
        return not BODY_READERS.isdisjoint(self.variables | self.functions)

    @property
    def reads_verdicts(self) -> bool:
        return not {"scores", "labels"}.isdisjoint(self.variables)

    def holds(self, context) -> bool:
        return cel_truth(self.program.execute(context))


def cel_truth(value: object) -> bool:
    return value is True


def compile_expression(source: str, lists: Mapping[str, IPSet], sets: Mapping[str, SignatureSet]) -> Expression:
    try:
        program = cel.compile(source)
    except (ValueError, RuntimeError) as exc:
        raise ExpressionError(f"CEL: {str(exc).splitlines()[0]}") from None
    references = program.references()
    variables = frozenset(references.get("variables", ()))
    functions = frozenset(references.get("functions", ()))
    unknown = variables - set(SCALARS) - set(MAPS)
    if unknown:
        raise ExpressionError(f"unknown variable(s) {sorted(unknown)}: use {', '.join(SCALARS + MAPS)}")
    if "matches" in functions:
        raise ExpressionError("matches() is refused (recompiled per evaluation, backtracking): use rx(value, 'pattern')")
    _check_names(source, lists, sets)
    return Expression(source, program, variables, functions)


def _check_names(source: str, lists: Mapping[str, IPSet], sets: Mapping[str, SignatureSet]) -> None:
    """Literal list/set names in in_list()/sig()/any_arg_sig() must exist; rx() patterns must be RE2."""
    for name in LIST_NAME.findall(source):
        if name not in lists:
            raise ExpressionError(f"in_list: no IP list named {name!r}")
    for name in SET_NAME.findall(source):
        if name not in sets:
            raise ExpressionError(f"sig: no signature set named {name!r}")
    for _quote, pattern in RX_PATTERN.findall(source):
        try:
            compile_regex(codecs.decode(pattern, "unicode_escape"))  # as CEL will read the literal
        except ValueError as exc:
            raise ExpressionError(str(exc)) from None


class Activations:
    """Builds the CEL context of one request from the names its candidate rules use."""

    def __init__(self, lists: Mapping[str, IPSet], sets: Mapping[str, SignatureSet]) -> None:
        self.lists, self.sets = lists, sets
        self._regexes: dict[str, object] = {}

    def build(self, request: Request, route: str, needed: frozenset[str], verdicts=()) -> object:
        context = cel.Context()
        values: dict[str, object] = {name: _cel_value(_SCALAR_OF[name](request, route))
                                     for name in SCALARS if name in needed}
        for name in MAPS:
            if name in needed:
                values[name] = _cel_value(_MAP_OF[name](request, verdicts))
        values.update(self._functions(request))
        context.update(values)
        return context

    def _functions(self, request: Request) -> dict[str, Callable]:
        lists, sets = self.lists, self.sets

        def first(pairs, name: str) -> str:
            return next((value for key, value in pairs if key == name), "")

        return {
            "header": lambda name: library_text(request.header(str(name).lower())),
            "arg": lambda name: library_text(first(((a.name, a.value) for a in request.args), name)),
            "cookie": lambda name: library_text(first(request.cookies, name)),
            "in_list": lambda name, address: name in lists and str(address) in lists[name],
            "sig": lambda name, value: name in sets and sets[name].search(str(value)),
            "any_arg_sig": lambda name: name in sets and any(sets[name].search(a.value) for a in request.args),
            "rx": lambda value, pattern: self._regex(str(pattern)).search(library_text(str(value))) is not None,
        }

    def _regex(self, pattern: str):
        compiled = self._regexes.get(pattern)
        if compiled is None:
            compiled = self._regexes[pattern] = compile_regex(pattern)
        return compiled


_SCALAR_OF: dict[str, Callable[[Request, str], object]] = {
    "method": lambda r, _: r.method,
    "host": lambda r, _: r.host,
    "path": lambda r, _: r.canonical_path,
    "raw_path": lambda r, _: r.url_path,
    "query": lambda r, _: r.query,
    "source_ip": lambda r, _: r.source_ip,
    "route": lambda _, route: route,
    "content_type": lambda r, _: r.content_type,
    "user_agent": lambda r, _: r.header("user-agent"),
    "body_size": lambda r, _: r.body_size,
    "protocol": lambda r, _: r.protocol,
}


def _cel_value(value: object) -> object:
    """A value CEL accepts. Invalid UTF-8 from the client (path, headers, cookies, args) is kept as
    surrogates, which CEL refuses to convert: one %ff in a path failed the whole rules layer (a
    503, or with on_error: open every rule skipped). Such bytes read as Latin-1 characters, as in
    every library (extproc/core/text.py)."""
    return library_value(value)


def _first_values(pairs) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in pairs:
        out.setdefault(name, value)
    return out


def _scores(verdicts) -> dict[str, int]:
    scores: dict[str, int] = {}
    for verdict in verdicts:
        for name, value in verdict.scores.items():
            scores[name if name == verdict.layer else f"{verdict.layer}.{name}"] = int(value)
    return scores


_MAP_OF: dict[str, Callable[[Request, tuple], object]] = {
    "headers": lambda r, _: _first_values(r.headers),
    "args": lambda r, _: _first_values((a.name, a.value) for a in r.args),
    "cookies": lambda r, _: _first_values(r.cookies),
    "body": lambda r, _: library_decode(r.body),
    "scores": lambda _, verdicts: _scores(verdicts),
    "labels": lambda _, verdicts: [label for v in verdicts for label in v.labels],
}
