"""The rule document: rules, IP lists and signature sets, as the policy and signed bundles give them."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from extproc.config.matchers import StringMatch, validate_cidrs
from extproc.core.strict import StrictModel

RULE_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
TAG = r"^[a-z0-9][a-z0-9_.-]{0,31}$"
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
HEADER = r"^[a-z0-9][a-z0-9-]{0,127}$"
FORBIDDEN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "te", "upgrade"})


Methods = Annotated[list[str], AfterValidator(lambda methods: [m.upper() for m in methods])]
HeaderNames = Annotated[list[str], AfterValidator(lambda names: [n.lower() for n in names])]


class RuleMatch(StrictModel):
    """Declarative conditions; all given must hold."""

    methods: Methods | None = None
    path: StringMatch | None = None  # against the canonical path (extproc.core.paths), without query
    headers: dict[str, StringMatch] = {}  # header name -> match on any of its values
    args: dict[str, StringMatch] = {}  # argument name -> match on any value (query and body)
    any_arg: StringMatch | None = None  # any argument value, query or body
    source_ips: list[str] | None = None  # CIDRs
    notes: list[str] | None = None  # inspection notes, e.g. json_invalid, body_truncated

    @field_validator("source_ips")
    @classmethod
    def _cidrs(cls, cidrs: list[str] | None) -> list[str] | None:
        return None if cidrs is None else validate_cidrs(cidrs)

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


class RuleWhen(StrictModel):
    """What a rule needs before its expression is worth evaluating: the rule index.

    Requests that fail these cheap checks never reach the rule, so hundreds of rules cost what
    the few that apply cost.
    """

    methods: Methods | None = None
    hosts: list[str] | None = None  # exact or '*.suffix'
    path_prefixes: list[str] | None = None  # canonical path, case-folded; '/x/' covers '/x'
    headers: HeaderNames | None = None  # all present




class Rule(StrictModel):
    id: str = Field(pattern=RULE_ID)
    description: str = ""
    references: list[str] = []  # CVE ids, advisories, tickets
    when: RuleWhen | None = None
    match: RuleMatch | None = None
    expr: str | None = None  # CEL; see extproc.rules.expressions for variables and functions
    action: Literal["deny", "log", "tag", "skip", "set_headers"]
    status: int = Field(default=403, ge=400, le=599)
    tags: list[str] = []
    skip: list[str] = []  # layers this request skips (action: skip)
    headers: dict[str, str] = {}  # set upstream (action: set_headers)
    mode: Literal["enforce", "shadow"] = "enforce"  # shadow: would-be hits are counted, never acted on
    expires: datetime | None = None  # after this the rule is ignored

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: list[str]) -> list[str]:
        for tag in tags:
            if not re.match(TAG, tag):
                raise ValueError(f"tag {tag!r} must match {TAG}")
        return tags

    @field_validator("headers")
    @classmethod
    def _header_names(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not re.match(HEADER, name) or name in FORBIDDEN_HEADERS:
                raise ValueError(f"header {name!r} cannot be set by a rule")
            if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
                raise ValueError(f"header {name!r}: control characters in the value")
        return {name.lower(): value for name, value in headers.items()}

    @field_validator("expires")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value

    @model_validator(mode="after")
    def _consistent(self) -> "Rule":
        if self.match is None and self.expr is None:
            raise ValueError("a rule needs 'match' or 'expr' (or both)")
        if self.action == "skip" and not self.skip:
            raise ValueError("action skip needs 'skip': the layers this request skips")
        if self.action == "set_headers" and not self.headers:
            raise ValueError("action set_headers needs 'headers'")
        return self


class IPList(StrictModel):
    cidrs: list[str] = []
    file: str | None = None  # one address or CIDR per line


class Signatures(StrictModel):
    literals: list[str] = []
    regexes: list[str] = []  # RE2 syntax
    ignore_case: bool = True


class RuleDocument(StrictModel):
    """What a policy's rules section and a signed bundle share."""

    rules: list[Rule] = []
    lists: dict[str, IPList] = {}
    signatures: dict[str, Signatures] = {}

    @field_validator("lists", "signatures")
    @classmethod
    def _names(cls, values: dict) -> dict:
        for name in values:
            if not re.match(NAME, name):
                raise ValueError(f"name {name!r} must match {NAME}")
        return values
