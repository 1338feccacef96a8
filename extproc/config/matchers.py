"""String and address matchers shared by route selection and rules, compiled once at load."""
from __future__ import annotations

import ipaddress
from typing import Callable

import re2
from pydantic import model_validator

from extproc.rules.ipset import IPSet
from extproc.rules.signatures import CASELESS, OPTIONS, compile_regex
from extproc.core.strict import StrictModel
from extproc.core.text import library_text

StrPredicate = Callable[[str], bool]
OPERATORS = ("exact", "prefix", "suffix", "contains", "regex")


class StringMatch(StrictModel):
    """Exactly one operator; ``ignore_case`` applies to all of them."""

    exact: str | None = None
    prefix: str | None = None
    suffix: str | None = None
    contains: str | None = None
    regex: str | None = None
    ignore_case: bool = False

    @model_validator(mode="after")
    def _one_operator(self) -> "StringMatch":
        given = [op for op in OPERATORS if getattr(self, op) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(OPERATORS)} (got {len(given)})")
        if self.regex is not None:
            compile_regex(self.regex, self.ignore_case)  # RE2: linear time on attacker input
        return self

    def compile(self) -> StrPredicate:
        if self.regex is not None:
            return _regex_predicate(self.regex, self.ignore_case)
        operator = next(op for op in OPERATORS if getattr(self, op) is not None)
        wanted: str = getattr(self, operator)
        fold = _caseless if self.ignore_case else library_text  # bytes that were not UTF-8 read as RE2 reads them
        wanted = fold(wanted)
        if operator == "exact":
            return lambda value: fold(value) == wanted
        if operator == "prefix":
            return lambda value: fold(value).startswith(wanted)
        if operator == "suffix":
            return lambda value: fold(value).endswith(wanted)
        return lambda value: wanted in fold(value)

    def compile_any(self) -> Callable[[list[str]], bool]:
        """Does any of many values match (every argument of a 16 KB JSON body, say)? Their joined
        text is screened first in one pass: whatever matches inside one value also matches in the
        joined text (values end at line breaks, and ^/$ are read per line there), so a miss in the
        joined text answers for all of them at once."""
        one, screen = self.compile(), self._screen()
        if screen is None:
            return lambda values: any(one(value) for value in values)

        def any_match(values: list[str]) -> bool:
            if len(values) > 4 and not screen("\n".join(values)):
                return False
            return any(one(value) for value in values)

        return any_match

    def _screen(self) -> StrPredicate | None:
        if self.regex is not None:
            if "\\A" in self.regex or "\\z" in self.regex:
                return None  # whole-text anchors do not carry over to the joined text
            return _regex_predicate("(?m)" + self.regex, self.ignore_case)
        wanted = next(getattr(self, op) for op in OPERATORS if getattr(self, op) is not None)
        fold = _caseless if self.ignore_case else library_text
        wanted = fold(wanted)
        return lambda text: wanted in fold(text)  # exact, prefix and suffix hits contain it too


def _regex_predicate(pattern: str, ignore_case: bool) -> StrPredicate:
    """Match or not, nothing else: a one-pattern RE2 set answers that at half the cost of
    search(), which also works out the match's position (rules run it on every argument)."""
    compile_regex(pattern, ignore_case)  # a refused pattern fails with its own text
    matcher = re2.Set.SearchSet(CASELESS if ignore_case else OPTIONS)
    matcher.Add(pattern)
    matcher.Compile()
    return lambda value: bool(matcher.Match(library_text(value)))


def _caseless(value: str) -> str:
    return library_text(value).casefold()


def compile_networks(cidrs: list[str]) -> Callable[[str], bool]:
    """Predicate over a textual IP address; invalid addresses never match."""
    networks = IPSet(cidrs)
    return networks.__contains__


def validate_cidrs(cidrs: list[str]) -> list[str]:
    for cidr in cidrs:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError as exc:
            raise ValueError(f"invalid CIDR {cidr!r}: {exc}") from None
    return cidrs


def host_matcher(patterns: list[str]) -> StrPredicate:
    """Exact host names or '*.suffix' wildcards, compared without port and case."""
    exact = frozenset(p.lower() for p in patterns if not p.startswith("*."))
    suffixes = tuple(p[1:].lower() for p in patterns if p.startswith("*."))
    return lambda host: host in exact or host.endswith(suffixes)
