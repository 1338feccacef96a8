"""Custom rules: deny, log or tag on method, path, header, argument and source matches.

The first building block of threat-intel rules and virtual patches. Rules run in order; every
matching ``tag``/``log`` rule is recorded and the first matching ``deny`` rule ends evaluation.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from extproc.layers.base import Context, LayerSettings, LayerSpec, StrictModel
from extproc.matchers import StringMatch, compile_networks, validate_cidrs
from extproc.request import Request
from extproc.verdict import Action, Verdict

RULE_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
TAG = r"^[a-z0-9][a-z0-9_.-]{0,31}$"
TAGS_HEADER = "x-extproc-tags"
RULES_HEADER = "x-extproc-rules"

Condition = Callable[[Request], bool]


class RuleMatch(StrictModel):
    """All given conditions must hold."""

    methods: list[str] | None = None
    path: StringMatch | None = None  # against the percent-decoded path, without query
    headers: dict[str, StringMatch] = {}  # header name -> match on any of its values
    args: dict[str, StringMatch] = {}  # argument name -> match on any value (query and body)
    any_arg: StringMatch | None = None  # any argument value, query or body
    source_ips: list[str] | None = None  # CIDRs
    notes: list[str] | None = None  # inspection notes, e.g. json_invalid, body_truncated

    @field_validator("source_ips")
    @classmethod
    def _cidrs(cls, cidrs: list[str] | None) -> list[str] | None:
        return None if cidrs is None else validate_cidrs(cidrs)

    @field_validator("methods")
    @classmethod
    def _upper(cls, methods: list[str] | None) -> list[str] | None:
        return None if methods is None else [m.upper() for m in methods]

    @field_validator("headers")
    @classmethod
    def _lower(cls, headers: dict[str, StringMatch]) -> dict[str, StringMatch]:
        return {name.lower(): match for name, match in headers.items()}

    @model_validator(mode="after")
    def _not_empty(self) -> "RuleMatch":
        if not any((self.methods, self.path, self.headers, self.args, self.any_arg, self.source_ips, self.notes)):
            raise ValueError("a rule needs at least one condition")
        return self

    @property
    def reads_body(self) -> bool:
        return bool(self.args or self.any_arg or self.notes)

    def compile(self) -> Condition:
        conditions = tuple(self._conditions())
        return lambda request: all(condition(request) for condition in conditions)

    def _conditions(self):
        if self.methods is not None:
            methods = frozenset(self.methods)
            yield lambda r: r.method in methods
        if self.path is not None:
            path = self.path.compile()
            yield lambda r: path(r.decoded_path)
        for name, match in self.headers.items():
            yield _any_header(name, match.compile())
        for name, match in self.args.items():
            yield _any_arg_named(name, match.compile())
        if self.any_arg is not None:
            value = self.any_arg.compile()
            yield lambda r: any(value(arg.value) for arg in r.args)
        if self.source_ips is not None:
            inside = compile_networks(self.source_ips)
            yield lambda r: inside(r.source_ip)
        if self.notes is not None:
            notes = frozenset(self.notes)

            def noted(r: Request) -> bool:
                _ = r.args  # parsing the body is what records most notes
                return not notes.isdisjoint(r.notes)

            yield noted


def _any_header(name: str, value: Callable[[str], bool]) -> Condition:
    return lambda r: any(value(v) for v in r.header_map.get(name, ()))


def _any_arg_named(name: str, value: Callable[[str], bool]) -> Condition:
    return lambda r: any(arg.name == name and value(arg.value) for arg in r.args)


class Rule(StrictModel):
    id: str = Field(pattern=RULE_ID)
    description: str = ""
    match: RuleMatch
    action: Literal["deny", "log", "tag"]
    status: int = Field(default=403, ge=400, le=599)
    tags: list[str] = []

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: list[str]) -> list[str]:
        for tag in tags:
            if not re.match(TAG, tag):
                raise ValueError(f"tag {tag!r} must match {TAG}")
        return tags


class RulesSettings(LayerSettings):
    rules: list[Rule] = []


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: str
    action: str
    status: int
    tags: tuple[str, ...]
    matches: Condition


class RulesLayer:
    name: ClassVar[str] = "rules"

    def __init__(self, settings: RulesSettings) -> None:
        self.rules = tuple(
            CompiledRule(r.id, r.action, r.status, tuple(r.tags), r.match.compile()) for r in settings.rules
        )
        self.needs_body = any(r.match.reads_body for r in settings.rules)

    def evaluate(self, request: Request, context: Context) -> Verdict:
        matched: list[CompiledRule] = []
        for rule in self.rules:
            if rule.matches(request):
                matched.append(rule)
                if rule.action == "deny":
                    break
        if not matched:
            return Verdict(self.name)
        last = matched[-1]
        denied = last.action == "deny"
        return Verdict(
            self.name,
            Action.DENY if denied else Action.LOG,
            last.status if denied else 403,
            reasons=tuple(f"rule:{rule.id}" for rule in matched),
            labels=tuple(dict.fromkeys(tag for rule in matched for tag in rule.tags)),
            upstream_headers=_tag_headers(matched),  # kept in observe mode, where a deny lets it pass
        )


def _tag_headers(matched: list[CompiledRule]) -> tuple[tuple[str, str], ...]:
    tagging = [rule for rule in matched if rule.action == "tag"]
    if not tagging:
        return ()
    tags = ",".join(dict.fromkeys(tag for rule in tagging for tag in rule.tags))
    headers = [(RULES_HEADER, ",".join(rule.id for rule in tagging))]
    if tags:
        headers.append((TAGS_HEADER, tags))
    return tuple(headers)


SPEC = LayerSpec(
    name=RulesLayer.name,
    settings=RulesSettings,
    build=RulesLayer,
    upstream_headers=frozenset({TAGS_HEADER, RULES_HEADER}),
)
