"""Undo the encodings attackers hide payloads behind, so one model sees one canonical form.

Each step runs only when its trigger character is present: most values are plain text and
cost one regex and a lower(). The steps applied are returned as flags; the model sees them
too, since a value that needed three rounds of URL decoding is itself suspicious.
"""
from __future__ import annotations

import html
import re
import unicodedata
from urllib.parse import unquote_to_bytes

MAX_DECODE_ROUNDS = 3

# Flags: one marker character each, prepended to the normalised text for the model.
URL_DECODED, URL_DECODED_TWICE, HTML_ENTITIES, BACKSLASH_ESCAPES, SQL_COMMENTS, OVERLONG_UTF8, NON_ASCII = (
    1, 2, 4, 8, 16, 32, 64
)

PERCENT_U = re.compile(r"%u([0-9a-fA-F]{4})")
OVERLONG = re.compile(rb"[\xc0\xc1][\x80-\xbf]|\xe0[\x80-\x9f][\x80-\xbf]")
BACKSLASH = re.compile(r"\\(?:x([0-9a-fA-F]{2})|u\{([0-9a-fA-F]{1,6})\}|u([0-9a-fA-F]{4})|([0-7]{3}))")
SQL_COMMENT = re.compile(r"/\*!?\d*|\*/")
# Whitespace, zero-width and control characters attackers use as separators: one space.
SPACES = re.compile(r"[\s\x0b\x0c\u00a0\u1680\u180e\u2000-\u200f\u2028\u2029\u202f\u205f\u2060\u3000\ufeff]+")


def normalize(value: str) -> tuple[str, int]:
    """Canonical lower-case text of a value and the flags of the decodings it needed."""
    text, flags = value, 0
    if "%" in text:
        text, flags = _url_decode(text, flags)
    if "&" in text:
        unescaped = html.unescape(html.unescape(text))
        if unescaped != text:
            text, flags = unescaped, flags | HTML_ENTITIES
            if "%" in text:  # entities hiding percent-encoding
                text, flags = _url_decode(text, flags)
    if "\\" in text:
        unescaped = BACKSLASH.sub(_backslash_char, text)
        if unescaped != text:
            text, flags = unescaped, flags | BACKSLASH_ESCAPES
    if not text.isascii():
        flags |= NON_ASCII
        text = unicodedata.normalize("NFKC", text)  # fullwidth '＜' is '<'
    text = text.lower()
    if "/*" in text or "*/" in text:
        text, flags = SQL_COMMENT.sub(" ", text), flags | SQL_COMMENTS
    return SPACES.sub(" ", text).strip(), flags


def _url_decode(text: str, flags: int) -> tuple[str, int]:
    for round_number in range(MAX_DECODE_ROUNDS):
        if "%" not in text:
            break
        if "%u" in text or "%U" in text:  # IIS-style %uXXXX
            widened = PERCENT_U.sub(lambda m: chr(int(m[1], 16)), text)
            if widened != text:
                text, flags = widened, flags | (URL_DECODED if round_number == 0 else URL_DECODED_TWICE)
        raw = unquote_to_bytes(text.encode("utf-8", "surrogateescape"))
        if OVERLONG.search(raw):
            raw, flags = OVERLONG.sub(_fold_overlong, raw), flags | OVERLONG_UTF8
        decoded = raw.decode("utf-8", "surrogateescape")
        if decoded == text:
            break
        text = decoded
        flags |= URL_DECODED if round_number == 0 else URL_DECODED_TWICE
    return text, flags


def _fold_overlong(match: re.Match) -> bytes:
    """Overlong UTF-8 ('\\xc0\\xaf' for '/') decoded to the code point it smuggles."""
    seq = match[0]
    if len(seq) == 2:
        code = ((seq[0] & 0x1F) << 6) | (seq[1] & 0x3F)
    else:
        code = ((seq[0] & 0x0F) << 12) | ((seq[1] & 0x3F) << 6) | (seq[2] & 0x3F)
    return bytes([code]) if code < 0x80 else chr(code).encode()


def _backslash_char(match: re.Match) -> str:
    hex2, brace, hex4, octal = match.groups()
    code = int(hex2 or brace or hex4, 16) if not octal else int(octal, 8)
    return chr(code) if code <= 0x10FFFF else match[0]
