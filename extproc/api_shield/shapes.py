"""Value shapes: the narrowest safe schema for the string values one parameter was seen with.

Values arrive in the representation API Shield checks them in (``library_text``: a byte that is not
UTF-8 is its Latin-1 character), so what is learned is what is matched. With fewer values than the
strictness's ``min_support`` only the type and a generous length are kept: too little was seen to
say more. With enough:

- a number type (integer with a range of digits, number) or boolean when every value is one;
- an ``enum`` when few values repeat often (every one seen ``enum_min_count`` times: a value seen
  once or twice says the list goes on);
- else a known ``format`` (uuid, date, date-time, email, ipv4) that every value passes, and a
  ``pattern``: positional (``^[0-9]{8}[A-Za-z]$``) when every value has the same runs of character
  classes, otherwise one character class with length bounds (``^[ A-Za-zÀ-ÖØ-öø-ÿ]{2,31}$``).

Classes widen by the strictness (a lower-case letter seen admits upper case, one accented letter
admits every Latin-1 letter) and lengths get a margin, so rare legitimate values do not become
false positives. Every schema accepts every value it was learned from (``accepts`` checks it with
the validator that enforces it).
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import jsonschema_rs

REDACTED = "REDACTED"  # a value the capture redacted: present, but its shape is unknown
INTEGER = re.compile(r"^-?(0|[1-9]\d{0,17})$")  # no leading zero: "08263" is a code, not a number
NUMBER = re.compile(r"^-?\d{1,18}(\.\d{1,18})?$")
FORMATS = (  # name, a fast pre-check; the validator has the last word
    ("uuid", re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    ("date-time", re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$")),
    ("date", re.compile(r"^\d{4}-\d{2}-\d{2}$")),
    ("email", re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]{2,}$")),
    ("idn-email", re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]{2,}$")),  # an e-mail address with letters beyond ASCII
    ("ipv4", re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")),
)
SELF_DESCRIBING = frozenset({"uuid", "date-time", "date", "ipv4"})  # the format alone is the shape
LATIN1_LETTERS = "ªµºÀ-ÖØ-öø-ÿ"  # every letter of ISO-8859-1 beyond ASCII
MAX_RUNS = 8  # positional patterns with more runs than this are noise, not structure


@dataclass(frozen=True)
class Strictness:
    """How much is read into what was seen: support before a shape, margins around it."""

    name: str
    min_support: int  # values of a parameter before a pattern, enum or range is learned
    enum_max: int  # distinct values an enum may have
    enum_min_count: int  # every enum value seen at least this often
    length_margin: float  # the longest value seen, plus this share, plus length_slack
    length_slack: int
    exact_length: bool  # a length every value had stays exact (codes, card numbers)
    both_cases: bool  # a letter of one case admits the other
    any_letter: bool  # a letter admits every letter of every script (\p{L})
    digit_margin: int  # integers: this many digits beyond the longest seen
    keep_min_length: bool  # the shortest length seen is the minimum (else: not empty, if never empty)
    required_min: int  # requests of an operation before "always present" means required
    closed_forms: bool  # form fields nobody sent are refused (additionalProperties: false)


STRICTNESS = {
    "loose": Strictness("loose", min_support=100, enum_max=16, enum_min_count=5, length_margin=1.0,
                        length_slack=8, exact_length=False, both_cases=True, any_letter=True, digit_margin=2,
                        keep_min_length=False, required_min=20, closed_forms=False),
    "balanced": Strictness("balanced", min_support=30, enum_max=64, enum_min_count=3, length_margin=0.5,
                           length_slack=4, exact_length=True, both_cases=True, any_letter=False, digit_margin=1,
                           keep_min_length=False, required_min=5, closed_forms=False),
    "strict": Strictness("strict", min_support=15, enum_max=64, enum_min_count=2, length_margin=0.2,
                         length_slack=1, exact_length=True, both_cases=False, any_letter=False, digit_margin=0,
                         keep_min_length=True, required_min=3, closed_forms=True),
}
DEFAULT_STRICTNESS = STRICTNESS["balanced"]


def scalar_schema(values: list[str], strictness: Strictness = DEFAULT_STRICTNESS, enum: bool = True,
                  pool: list[str] | None = None) -> dict:
    """The schema of a parameter seen with these (string) values. ``pool`` holds these and the
    values of the application's other parameters of the same name: a pattern admits what any of
    them was seen with (a field on two pages is one field), the rest is decided on ``values``."""
    if not values:
        return {"type": "string"}
    if REDACTED in values:  # a redacted capture: the parameter exists, its values were not kept
        return {"type": "string"}
    if all(v in ("true", "false") for v in values):
        return {"type": "boolean"}
    if all(INTEGER.match(v) for v in values):
        return _enum_or(values, strictness, enum, lambda: integer_schema([int(v) for v in values], strictness), int)
    if all(NUMBER.match(v) for v in values) and not any(_leading_zero(v) for v in values):
        return {"type": "number"}
    return _enum_or(values, strictness, enum, lambda: string_schema(values, strictness, pool), str)


def text_schema(values: list[str], strictness: Strictness = DEFAULT_STRICTNESS, enum: bool = True) -> dict:
    """The schema of strings that are strings whatever they spell (JSON strings: "12" is no number)."""
    if not values or REDACTED in values:
        return {"type": "string"}
    return _enum_or(values, strictness, enum, lambda: string_schema(values, strictness), str)


def _leading_zero(text: str) -> bool:
    digits = text.lstrip("-")
    return len(digits) > 1 and digits[0] == "0" and digits[1] != "."


def _enum_or(values: list[str], strictness: Strictness, enum: bool, otherwise: Callable[[], dict],
             cast: type[int] | type[str]) -> dict:
    counts = Counter(values)
    if (enum and len(values) >= strictness.min_support and len(counts) <= strictness.enum_max
            and min(counts.values()) >= strictness.enum_min_count):
        kind = "integer" if cast is int else "string"
        return {"type": kind, "enum": sorted({cast(v) for v in counts})}
    return otherwise()


def integers_schema(numbers: list[int], strictness: Strictness = DEFAULT_STRICTNESS, enum: bool = True) -> dict:
    """The schema of JSON integers: an enum of few values seen often, else a range."""
    return _enum_or([str(n) for n in numbers], strictness, enum, lambda: integer_schema(numbers, strictness), int)


def integer_schema(numbers: list[int], strictness: Strictness) -> dict:
    schema: dict = {"type": "integer"}
    if len(numbers) < strictness.min_support:
        return schema
    low, high = min(numbers), max(numbers)
    schema["minimum"] = 0 if low >= 0 else -_digits_bound(low, strictness)
    schema["maximum"] = _digits_bound(high, strictness) if high > 0 else 0
    return schema


def _digits_bound(number: int, strictness: Strictness) -> int:
    """The largest number with the digits of ``number`` plus the margin: 57 -> 99 (strict), 999."""
    return 10 ** (len(str(abs(number))) + strictness.digit_margin) - 1


def string_schema(values: list[str], strictness: Strictness, pool: list[str] | None = None) -> dict:
    longest = max(len(v) for v in values)
    fmt = _format(values)
    if fmt in SELF_DESCRIBING:  # a UUID, a date: the shape says itself, however few were seen
        return {"type": "string", "format": fmt}
    if len(values) < strictness.min_support:
        return {"type": "string", "maxLength": max(64, 2 * longest)}
    schema: dict = {"type": "string"}
    if fmt:
        schema["format"] = fmt
    basis = pool if pool and REDACTED not in pool else values
    schema["pattern"] = positional_pattern(basis, strictness) or class_pattern(basis, strictness)
    # A shape must never refuse what it was learned from (a class this module renders wrongly).
    if not accepts(schema, values) or not accepts({"pattern": schema["pattern"]}, basis):
        return {"type": "string", "maxLength": max(64, 2 * max(len(v) for v in basis))}
    return schema


def _format(values: list[str]) -> str | None:
    for name, shape in FORMATS:
        if all(shape.match(v) for v in values) and accepts({"type": "string", "format": name}, values):
            return name
    return None


# -- character classes ---------------------------------------------------------------------------


def char_class(ch: str) -> str:
    """'lower', 'upper', 'digit', 'latin' (a Latin-1 letter), 'letter' (any other), or the character."""
    if "a" <= ch <= "z":
        return "lower"
    if "A" <= ch <= "Z":
        return "upper"
    if "0" <= ch <= "9":
        return "digit"
    if ch.isalpha():
        return "latin" if ord(ch) <= 0xFF else "letter"
    return ch


def widened(classes: set[str], strictness: Strictness) -> set[str]:
    """The classes a value may use, given those seen and how far the strictness generalises."""
    out = set(classes)
    letters = {"lower", "upper", "latin", "letter"} & out
    if letters and strictness.any_letter or "letter" in out:
        return (out - letters) | {"letter"}
    if strictness.both_cases and {"lower", "upper"} & out:
        out |= {"lower", "upper"}
    return out


CLASS_TEXT = {"lower": "a-z", "upper": "A-Z", "digit": "0-9", "latin": LATIN1_LETTERS, "letter": r"\p{L}"}
CLASS_ORDER = ("digit", "upper", "lower", "latin", "letter")
ESCAPED = {"\\": "\\\\", "]": "\\]", "[": "\\[", "^": "\\^", "-": "\\-", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def class_text(classes: set[str]) -> str:
    """A regex character class for these classes: named ones first, then each character (sorted)."""
    named = [CLASS_TEXT[c] for c in CLASS_ORDER if c in classes]
    if "letter" in classes:  # \p{L} already holds every letter range
        named = [CLASS_TEXT[c] for c in ("digit",) if c in classes] + [CLASS_TEXT["letter"]]
    singles = sorted(c for c in classes if c not in CLASS_TEXT)
    return "[" + "".join(named) + "".join(_escape(c) for c in singles) + "]"


def _escape(ch: str) -> str:
    if ch in ESCAPED:
        return ESCAPED[ch]
    if not ch.isprintable() or ch.isspace() and ch != " ":
        return f"\\u{{{ord(ch):x}}}"
    return ch


def length_bounds(lengths: list[int], strictness: Strictness) -> tuple[int, int]:
    low, high = min(lengths), max(lengths)
    if low == high and strictness.exact_length:
        return low, high
    upper = math.ceil(high * (1 + strictness.length_margin)) + strictness.length_slack
    lower = low if strictness.keep_min_length else min(low, 1)
    return lower, upper


def quantifier(low: int, high: int) -> str:
    return f"{{{low}}}" if low == high else f"{{{low},{high}}}"


def class_pattern(values: list[str], strictness: Strictness) -> str:
    classes = widened({char_class(ch) for v in values for ch in v}, strictness)
    low, high = length_bounds([len(v) for v in values], strictness)
    if not classes:  # only empty values were seen
        return "^$"
    return "^" + class_text(classes) + quantifier(low, high) + "$"


# -- positional patterns -------------------------------------------------------------------------


def _run_kind(ch: str) -> str:
    cls = char_class(ch)
    return "alpha" if cls in ("lower", "upper", "latin", "letter") else cls


def runs(value: str) -> list[tuple[str, str]]:
    """The value as runs of one kind: '12345678Z' -> [('digit', '12345678'), ('alpha', 'Z')]."""
    out: list[tuple[str, str]] = []
    for ch in value:
        kind = _run_kind(ch)
        if out and out[-1][0] == kind:
            out[-1] = (kind, out[-1][1] + ch)
        else:
            out.append((kind, ch))
    return out


def positional_pattern(values: list[str], strictness: Strictness) -> str | None:
    """A pattern run by run when every value has the same sequence of runs (2 to MAX_RUNS), else None."""
    split = [runs(v) for v in values]
    signature = [kind for kind, _ in split[0]]
    if not 2 <= len(signature) <= MAX_RUNS or any([kind for kind, _ in r] != signature for r in split):
        return None
    parts = []
    for index in range(len(signature)):
        texts = [r[index][1] for r in split]
        classes = widened({char_class(ch) for text in texts for ch in text}, strictness)
        low, high = length_bounds([len(t) for t in texts], strictness)
        parts.append(class_text(classes) + quantifier(max(low, 1), high))
    return "^" + "".join(parts) + "$"


def accepts(schema: dict, values: list) -> bool:
    """True when the validator that enforces ``schema`` accepts every value."""
    validator = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
    return all(validator.is_valid(v) for v in values)
