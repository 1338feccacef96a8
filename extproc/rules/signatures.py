"""Signature sets matched in time linear in the input: literals with Aho-Corasick, regexes with
RE2 (no backtracking: a pattern RE2 cannot run in linear time, such as a backreference, is a
config error rather than a risk)."""
from __future__ import annotations

from collections.abc import Sequence

import ahocorasick
import re2

from extproc.core.text import library_text

OPTIONS = re2.Options()
OPTIONS.log_errors = False  # a bad pattern is reported as a config error, not on stderr
CASELESS = re2.Options()
CASELESS.log_errors = False
CASELESS.case_sensitive = False


def compile_regex(pattern: str, ignore_case: bool = False):
    """An RE2 pattern; ValueError naming the pattern when RE2 refuses it."""
    try:
        return re2.compile(pattern, options=CASELESS if ignore_case else OPTIONS)
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"regex {pattern!r} is not accepted (RE2, linear time): {detail}") from None


class SignatureSet:
    def __init__(self, literals: Sequence[str] = (), regexes: Sequence[str] = (), ignore_case: bool = True) -> None:
        self.ignore_case = ignore_case
        self._automaton = None
        if literals:
            automaton = ahocorasick.Automaton()
            for literal in literals:
                key = literal.lower() if ignore_case else literal
                automaton.add_word(key, key)
            automaton.make_automaton()
            self._automaton = automaton
        self._regexes = None
        if regexes:
            for pattern in regexes:
                compile_regex(pattern, ignore_case)  # one error per bad pattern, with its text
            rx_set = re2.Set.SearchSet(CASELESS if ignore_case else OPTIONS)
            for pattern in regexes:
                rx_set.Add(pattern)
            rx_set.Compile()
            self._regexes = rx_set

    def search(self, value: str) -> bool:
        if not value:
            return False
        value = library_text(value)  # RE2 reads UTF-8; literals see undecodable bytes as RE2 does
        if self._automaton is not None:
            text = value.lower() if self.ignore_case else value
            for _ in self._automaton.iter(text):
                return True
        return self._regexes is not None and bool(self._regexes.Match(value))
