"""The attack model's structural channel: a value as a string of token classes.

Character n-grams see ``union select`` and ``onerror=`` as letters; what makes them attacks is
structure: a keyword after a quote, an event handler inside a tag, a command after a separator.
One small lexer, the same for every context, turns a normalised value into one byte per token
(a word's class from extproc/attack/lexicon.json, a number, each operator and punctuation mark),
so n-grams over it are n-grams of tokens: ``' or 1=1 --`` becomes quote, sql, number, =,
number, comment whatever the spelling, and ``/a/b/../../etc/passwd`` shows its traversal depth.

The classes are appended to the framed value after a marker byte (features.TOKENS_MARKER); their
bytes (0x80 and up) never form ASCII n-grams of the raw text. The C kernel (_ngram_bag.c) has the
same lexer; tests/unit/test_attack_tokens.py holds the two to the same output.
"""
from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path

LEXICON_FILE = Path(__file__).with_name("lexicon.json")
VERSION = 1  # the lexer's rules below; FeatureSpec.tokens names it
BASE = 0x80
MAX_WORD = 32  # longer words are in no class list
# Operators that mean more together than apart, longest first where one begins another.
OPERATORS = (b"../", b"..\\", b"://", b"--", b"/*", b"*/", b"$(", b"${", b"#{", b"{{", b"}}", b"<%", b"%>",
             b"<?", b"?>", b"||", b"&&", b">>", b"<<", b"<!", b"</")
PUNCTUATION = b"!\"#$%&'()*+,-./:;<=>?@[\\]^`{|}~"  # '_' belongs to words
# Class numbers after the word classes of the lexicon.
NUMBER, HEX_NUMBER, CONTROL, LINE_BREAK, NON_ASCII, TAG_OPEN = range(13, 19)
FIRST_OPERATOR = 19
FIRST_PUNCTUATION = FIRST_OPERATOR + len(OPERATORS)
WORD, CALL = 0, 1

TOKEN = re.compile(
    rb"([A-Za-z_][A-Za-z0-9_]*)"  # 1 word
    rb"|(0x[0-9A-Fa-f]+)"  # 2 hex number
    rb"|([0-9][0-9.]*)"  # 3 number
    rb"|( +)"  # 4 spaces: no token
    rb"|(" + b"|".join(re.escape(op) for op in OPERATORS) + rb")"  # 5 operator
    rb"|(<(?=[A-Za-z]))"  # 6 tag open
    rb"|([\x80-\xff]+)"  # 7 non-ASCII run
    rb"|(.)",  # 8 punctuation or control byte
    re.DOTALL,
)
CALL_PAREN = re.compile(rb" *\(")


class Lexicon:
    """Word -> class number, from lexicon.json; its digest goes into the model's metadata."""

    def __init__(self, path: Path = LEXICON_FILE) -> None:
        raw = path.read_bytes()
        data = json.loads(raw)
        self.digest = hashlib.sha256(raw).hexdigest()
        classes = data["classes"]
        if classes[:2] != ["word", "call"] or len(classes) != NUMBER:
            raise ValueError(f"{path}: classes must start with word, call and number {NUMBER}")
        self.classes: dict[bytes, int] = {}
        for name, words in data["words"].items():
            for word in words:
                key = word.encode()
                if key in self.classes or len(key) > MAX_WORD or not re.fullmatch(rb"[a-z_][a-z0-9_]*", key):
                    raise ValueError(f"{path}: {word!r} is listed twice, too long or not a lower-case word")
                self.classes[key] = classes.index(name)

    def sorted_entries(self) -> tuple[list[bytes], bytes]:
        """Words in byte order and their classes, for the C lexer's binary search."""
        words = sorted(self.classes)
        return words, bytes(self.classes[w] for w in words)


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    return Lexicon()


@lru_cache(maxsize=1)
def native_lexer():
    """The C lexer of _ngram_bag over the lexicon, or None where the extension was not built."""
    try:
        from extproc.attack._ngram_bag import Lexer
    except ImportError:
        return None
    words, classes = lexicon().sorted_entries()
    return Lexer(words=words, classes=classes, operators=OPERATORS, single=SINGLE)


def classes_of(content: bytes) -> bytes:
    """token_classes(content), by the C lexer where it is built (ten times faster, same bytes)."""
    lexer = native_lexer()
    return lexer.classes(content) if lexer is not None else token_classes(content)


def _single_classes() -> bytes:
    table = bytearray([BASE + CONTROL]) * 256
    for i, ch in enumerate(PUNCTUATION):
        table[ch] = BASE + FIRST_PUNCTUATION + i
    table[0x01] = BASE + LINE_BREAK  # normalize's line-break marker
    return bytes(table)


SINGLE = _single_classes()
OPERATOR_CLASS = {op: BASE + FIRST_OPERATOR + i for i, op in enumerate(OPERATORS)}


def token_classes(content: bytes) -> bytes:
    """One class byte per token of a normalised value's bytes (spaces make no token)."""
    classes = lexicon().classes
    out = bytearray()
    for match in TOKEN.finditer(content):
        kind = match.lastindex
        if kind == 1:
            word = match[1]
            found = classes.get(word.lower()) if len(word) <= MAX_WORD else None
            if found is None:
                found = CALL if CALL_PAREN.match(content, match.end()) else WORD
            out.append(BASE + found)
        elif kind == 8:
            out.append(SINGLE[match[8][0]])
        elif kind == 5:
            out.append(OPERATOR_CLASS[match[5]])
        elif kind != 4:
            out.append(BASE + (HEX_NUMBER, NUMBER, TAG_OPEN, NON_ASCII)[(2, 3, 6, 7).index(kind)])
    return bytes(out)
