"""A rule document compiled: IP lists, signature sets, rules with their CEL programs, and the
index that picks the few rules worth evaluating for a request. Immutable; a new document (policy
reload, a new feed bundle) builds a new RuleSet that replaces the old one whole."""
from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from extproc.rules.expressions import Activations, Expression, ExpressionError, compile_expression
from extproc.rules.ipset import IPSet, read_list
from extproc.rules.model import Rule, RuleDocument, RuleMatch, RuleWhen
from extproc.rules.signatures import SignatureSet
from extproc.config.matchers import compile_networks, host_matcher
from extproc.core.paths import canonical, prefix_matcher
from extproc.core.request import Request

Condition = Callable[[Request], bool]
ANY = "*"


@dataclass(frozen=True, slots=True)
class CompiledRule:
    order: int
    id: str
    action: str
    status: int
    tags: tuple[str, ...]
    skip: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]
    shadow: bool
    expires: float  # epoch seconds; inf when it never does
    when: Condition | None
    match: Condition | None
    expr: Expression | None

    def __lt__(self, other: "CompiledRule") -> bool:  # candidates from several buckets keep rule order
        return self.order < other.order


@dataclass
class Hits:
    matched: list[CompiledRule] = field(default_factory=list)
    shadow: list[CompiledRule] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class RuleSet:
    def __init__(self, document: RuleDocument, base_dir: str | Path = ".", where: str = "") -> None:
        self.where = where
        self.lists = {name: self._ip_list(name, spec, Path(base_dir)) for name, spec in document.lists.items()}
        self.sets = {name: self._signatures(name, spec) for name, spec in document.signatures.items()}
        self.rules = tuple(self._rule(index, rule) for index, rule in enumerate(document.rules))
        self.activations = Activations(self.lists, self.sets)
        self.index = _index(document.rules, self.rules)
        self.reads_body = any(_reads_body(rule, compiled) for rule, compiled in zip(document.rules, self.rules))
        self.reads_verdicts = any(r.expr is not None and r.expr.reads_verdicts for r in self.rules)
        self.needed = frozenset().union(*(r.expr.variables for r in self.rules if r.expr is not None))

    # -- compile ---------------------------------------------------------------------------

    def _ip_list(self, name: str, spec, base_dir: Path) -> IPSet:
        entries = list(spec.cidrs)
        try:
            if spec.file:
                path = Path(spec.file)
                entries += read_list(path if path.is_absolute() else base_dir / path)
            return IPSet(entries)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{self.where}lists.{name}: {getattr(exc, 'strerror', None) or exc}") from None

    def _signatures(self, name: str, spec) -> SignatureSet:
        try:
            return SignatureSet(spec.literals, spec.regexes, spec.ignore_case)
        except ValueError as exc:
            raise ValueError(f"{self.where}signatures.{name}: {exc}") from None

    def _rule(self, order: int, rule: Rule) -> CompiledRule:
        expr = None
        if rule.expr is not None:
            try:
                expr = compile_expression(rule.expr, self.lists, self.sets)
            except ExpressionError as exc:
                raise ValueError(f"{self.where}rules[{order}].expr: {exc}") from None
        return CompiledRule(
            order=order, id=rule.id, action=rule.action, status=rule.status, tags=tuple(rule.tags),
            skip=tuple(rule.skip), headers=tuple(rule.headers.items()), shadow=rule.mode == "shadow",
            expires=rule.expires.timestamp() if rule.expires else math.inf,
            when=_when(rule.when), match=_match(rule.match, rule.action in PROTECTIVE) if rule.match else None, expr=expr,
        )

    # -- evaluate --------------------------------------------------------------------------

    def candidates(self, request: Request) -> list[CompiledRule]:
        by_method = self.index
        segment = request.folded_path.split("/", 2)[1]
        buckets = [rules for method in (request.method, ANY) if (bucket := by_method.get(method))
                   for key in (segment, ANY) if (rules := bucket.get(key))]
        if not buckets:
            return []
        return buckets[0] if len(buckets) == 1 else list(heapq.merge(*buckets))

    def evaluate(self, request: Request, route: str, verdicts=(), now: float | None = None) -> Hits:
        hits, context = Hits(), None
        now = time.time() if now is None else now
        for rule in self.candidates(request):
            if rule.expires < now or (rule.when is not None and not rule.when(request)):
                continue
            if rule.match is not None and not rule.match(request):
                continue
            if rule.expr is not None:
                if context is None:  # built once, for the first rule that needs it
                    context = self.activations.build(request, route, self.needed, verdicts)
                try:
                    if not rule.expr.holds(context):
                        continue
                except Exception as exc:  # noqa: BLE001 - a rule that fails on this request does not match
                    hits.errors.append(f"{rule.id}: {type(exc).__name__}")
                    continue
            (hits.shadow if rule.shadow else hits.matched).append(rule)
            if rule.action == "deny" and not rule.shadow:
                break
        return hits


# Rules that only add protection may match any spelling of the path; the others only its canonical form.
PROTECTIVE = frozenset({"deny", "log", "tag"})


def _reads_body(rule: Rule, compiled: CompiledRule) -> bool:
    return bool((rule.match and rule.match.reads_body) or (compiled.expr and compiled.expr.reads_body))


def _index(rules: list[Rule], compiled: tuple[CompiledRule, ...]) -> dict[str, dict[str, list[CompiledRule]]]:
    """method -> first path segment -> rules, from what each rule's `when` says (ANY otherwise)."""
    index: dict[str, dict[str, list[CompiledRule]]] = {}
    for rule, entry in zip(rules, compiled):
        when = rule.when or RuleWhen()
        methods = when.methods or [ANY]
        segments = [_segment_of(prefix) for prefix in when.path_prefixes] if when.path_prefixes else [ANY]
        for method in methods:
            for segment in set(segments):
                index.setdefault(method, {}).setdefault(segment, []).append(entry)
    return index


def _segment_of(prefix: str) -> str:
    """The first path segment a prefix pins down, or ANY ('/ap' also matches '/apple')."""
    first, slash, _ = canonical(prefix, fold=True).path[1:].partition("/")
    return first if first and (slash or prefix.endswith("/")) else ANY


def _when(when: RuleWhen | None) -> Condition | None:
    if when is None:
        return None
    checks: list[Condition] = []
    if when.methods:
        methods = frozenset(when.methods)
        checks.append(lambda r: r.method in methods)
    if when.hosts:
        host = host_matcher(when.hosts)
        checks.append(lambda r: host(r.host))
    if when.path_prefixes:
        covers = tuple(prefix_matcher(prefix, fold=True) for prefix in when.path_prefixes)
        checks.append(lambda r: any(cover(r.folded_path) for cover in covers))
    if when.headers:
        names = tuple(when.headers)
        checks.append(lambda r: all(name in r.header_map for name in names))
    return _all(checks) if checks else None


def _match(match: RuleMatch, any_spelling: bool = False) -> Condition:
    conditions: list[Condition] = []
    if match.methods is not None:
        methods = frozenset(match.methods)
        conditions.append(lambda r: r.method in methods)
    if match.path is not None:
        path = match.path.compile()
        if any_spelling:  # '/a/../etc/passwd' is an attack even though the upstream reads '/etc/passwd'
            conditions.append(lambda r: path(r.canonical_path) or path(r.decoded_path))
        else:  # a rule that grants (skip, set_headers) holds only for the path the upstream reads
            conditions.append(lambda r: path(r.canonical_path))
    for name, spec in match.headers.items():
        conditions.append(_header_condition(name, spec.compile()))
    for name, spec in match.args.items():
        conditions.append(_arg_condition(name, spec.compile()))
    if match.any_arg is not None:
        any_value = match.any_arg.compile_any()
        conditions.append(lambda r: any_value([arg.value for arg in r.args]))
    if match.source_ips is not None:
        inside = compile_networks(match.source_ips)
        conditions.append(lambda r: inside(r.source_ip))
    if match.notes is not None:
        notes = frozenset(match.notes)

        def noted(r: Request) -> bool:
            _ = r.args  # parsing the body is what records most notes
            return not notes.isdisjoint(r.notes)

        conditions.append(noted)
    return _all(conditions)


def _all(conditions: list[Condition]) -> Condition:
    """All of the conditions; most rules have one or two, which skip the generator (a few us a rule)."""
    if len(conditions) == 1:
        return conditions[0]
    if len(conditions) == 2:
        first, second = conditions
        return lambda r: first(r) and second(r)
    return lambda r: all(condition(r) for condition in conditions)


def _header_condition(name: str, value: Callable[[str], bool]) -> Condition:
    def header_matches(r: Request) -> bool:
        for candidate in r.header_map.get(name, ()):
            if value(candidate):
                return True
        return False

    return header_matches


def _arg_condition(name: str, value: Callable[[str], bool]) -> Condition:
    return lambda r: any(a.name == name and value(a.value) for a in r.args)
