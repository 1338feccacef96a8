"""Encodings an application undoes before it uses a value, tried on every value the attack layer
scores: base64 (standard, URL-safe, unpadded) and hex. A decoded form is scored beside the raw value
only when it reads as text, so tokens, hashes and images (random bytes) cost one regex and nothing
more. URL, HTML, backslash and ``%u`` escapes, fullwidth forms and comments are undone for every
value by extproc/attack/normalize.py; these two need a guess, so they are scored as extra values and
the worst reading counts.
"""
from __future__ import annotations

import binascii
import re

MIN_CHARS = 12  # shorter runs decode to a word or two: nothing to inject, and ids look like that
MAX_DEPTH = 2  # base64 of base64, hex of base64: attackers stack them, applications rarely do more
MIN_TEXT_SHARE = 0.9  # of the decoded characters printable or whitespace
URL_SAFE = str.maketrans("-_", "+/")
# What an encoded value can be made of (a query's '+' may have become a space): the cheap first test.
ENCODED = re.compile(r"[A-Za-z0-9+/_ =-]+\Z")
BASE64 = re.compile(r"[A-Za-z0-9+/_-]{%d,}={0,2}\Z" % MIN_CHARS)
HEX = re.compile(r"(?:0x)?((?:[0-9a-fA-F]{2}){%d,})\Z" % (MIN_CHARS // 2))
# Text is ASCII (payloads are), so every byte's top bits say what its encoding starts with: the
# first character of each base64 quad of bytes 0x09-0x7e is one of C, D, I-Z, a-f, and the first
# hex digit of each byte 0, 2-7. One slice and one match reject words, ids and hashes at once.
BASE64_TEXT_LEADS = re.compile(r"[CDI-Za-f]+")
HEX_TEXT_LEADS = re.compile(r"[02-7]+")


def decoded_forms(value: str) -> list[tuple[str, str]]:
    """(encoding, text) for each plausible decoding of the value, nested ones included."""
    found: list[tuple[str, str]] = []
    _decode(value.strip(), "", found, 0)
    return found


def _decode(value: str, prefix: str, found: list[tuple[str, str]], depth: int) -> None:
    if depth >= MAX_DEPTH or len(value) < MIN_CHARS:
        return
    for encoding, text in _readings(value):
        name = f"{prefix}{encoding}"
        found.append((name, text))
        _decode(text.strip(), f"{name}+", found, depth + 1)


def _readings(value: str) -> list[tuple[str, str]]:
    readings = []
    hexed = HEX.match(value)
    if hexed:
        if HEX_TEXT_LEADS.fullmatch(hexed[1][::2]):
            text = _as_text(binascii.unhexlify(hexed[1]))
            if text is not None:
                readings.append(("hex", text))
    elif BASE64_TEXT_LEADS.fullmatch(value[::4]) and BASE64.match(value):
        text = _as_text(_unbase64(value))
        if text is not None:
            readings.append(("base64", text))
    return readings


def _unbase64(value: str) -> bytes:
    """Standard or URL-safe, padded or not; what does not decode is no reading."""
    body = value.rstrip("=")
    if "-" in body or "_" in body:
        body = body.translate(URL_SAFE)
    if len(body) % 4 == 1:  # no base64 text has this length
        return b""
    try:
        return binascii.a2b_base64(body + "=" * (-len(body) % 4), strict_mode=True)
    except binascii.Error:
        return b""


def _as_text(raw: bytes) -> str | None:
    """The bytes as text when they read as text: valid UTF-8 and mostly printable. (Random bytes
    are almost never both; Latin-1 would read most of them as printable letters.)"""
    if len(raw) < MIN_CHARS // 2:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text.isprintable():
        return text if not text.isspace() else None
    printable = sum(ch.isprintable() or ch in "\t\r\n" for ch in text)
    return text if printable >= MIN_TEXT_SHARE * len(text) and not text.isspace() else None

