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
# Overlong UTF-8 (2 to 6 bytes for what fits in fewer, e.g. '\xc0\xaf' or '\xf0\x80\x80\xaf' for
# '/'): invalid, but lenient decoders accept them, which is why attackers send them.
OVERLONG = re.compile(
    rb"[\xc0\xc1][\x80-\xbf]|\xe0[\x80-\x9f][\x80-\xbf]|\xf0[\x80-\x8f][\x80-\xbf]{2}"
    rb"|\xf8[\x80-\x87][\x80-\xbf]{3}|\xfc[\x80-\x83][\x80-\xbf]{4}"
)
SURROGATE = re.compile("[\udc80-\udcff]")  # undecodable bytes kept by surrogateescape
# Look-alikes NFKC leaves alone but some parsers or file systems treat as the ASCII character.
CONFUSABLES = str.maketrans({
    "\u2215": "/", "\u2044": "/", "\u29f8": "/", "\u2216": "\\", "\u29f9": "\\",
    "\u2024": ".", "\u3002": ".", "\u02bc": "'", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
    "\u2039": "<", "\u203a": ">", "\u2329": "<", "\u232a": ">", "\u27e8": "<", "\u27e9": ">",
})
BACKSLASH = re.compile(r"\\(?:x([0-9a-fA-F]{2})|u\{([0-9a-fA-F]{1,6})\}|u([0-9a-fA-F]{4})|([0-7]{3}))")
# MySQL runs the body of /*!50000 ... */; other comments act as a space. Only closed comments
# count, so XPath's '//*' and 'count(/*)' are left alone.
SQL_VERSIONED_COMMENT = re.compile(r"/\*!\d*(.*?)\*/", re.DOTALL)
SQL_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
# Line breaks matter (CRLF injection, command separators): one marker, not a plain space.
LINE_BREAKS = re.compile(r"[\r\n]+")
LINE_BREAK = "\x01"
# Whitespace, zero-width and control characters attackers use as separators: one space.
SPACES = re.compile(r"[\s\x0b\x0c\u00a0\u1680\u180e\u2000-\u200f\u2028\u2029\u202f\u205f\u2060\u3000\ufeff]+")


def normalize(value: str) -> tuple[str, int]:
    """Canonical lower-case text of a value and the flags of the decodings it needed."""
    text, flags = value, 0
    if "%" in text:
        text, flags = _url_decode(text, flags)
    if "&" in text:
        unescaped = html.unescape(text)
        if unescaped != text:
            # Entities hiding entities ('&amp;lt;'). Unchanged text needs no second pass, and
            # query strings full of '&name=' are slow to search for entities (a lookup per prefix).
            text, flags = html.unescape(unescaped), flags | HTML_ENTITIES
            if "%" in text:  # entities hiding percent-encoding
                text, flags = _url_decode(text, flags)
    if "\\" in text:
        unescaped = BACKSLASH.sub(_backslash_char, text)
        if unescaped != text:
            text, flags = unescaped, flags | BACKSLASH_ESCAPES
    if not text.isascii():
        flags |= NON_ASCII
        if _has_surrogates(text):  # raw bytes that were not valid UTF-8
            raw = text.encode("utf-8", "surrogateescape")
            if OVERLONG.search(raw):
                text = OVERLONG.sub(_fold_overlong, raw).decode("utf-8", "surrogateescape")
                flags |= OVERLONG_UTF8
        text = unicodedata.normalize("NFKC", text).translate(CONFUSABLES)  # fullwidth '＜' is '<'
    text = text.lower()
    if "/*" in text:
        stripped = SQL_COMMENT.sub(" ", SQL_VERSIONED_COMMENT.sub(r" \1 ", text))
        if stripped != text:
            text, flags = stripped, flags | SQL_COMMENTS
    if "\n" in text or "\r" in text:
        text = LINE_BREAKS.sub(LINE_BREAK, text)
    if text.isascii():  # most values: str.split() knows the same ASCII whitespace as SPACES, 5x faster
        return " ".join(text.split()), flags
    return SPACES.sub(" ", text).strip(), flags


def _url_decode(text: str, flags: int) -> tuple[str, int]:
    for round_number in range(MAX_DECODE_ROUNDS):
        if "%" not in text:
            break
        if "%u" in text or "%U" in text:  # IIS-style %uXXXX
            widened = PERCENT_U.sub(lambda m: _char(int(m[1], 16)), text)
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


def _has_surrogates(text: str) -> bool:
    return SURROGATE.search(text) is not None


def _fold_overlong(match: re.Match) -> bytes:
    """Overlong UTF-8 ('\\xc0\\xaf' for '/') decoded to the code point it smuggles."""
    seq = match[0]
    code = seq[0] & (0x7F >> len(seq))  # the lead byte keeps 7 - length payload bits
    for byte in seq[1:]:
        code = (code << 6) | (byte & 0x3F)
    if code < 0x80:
        return bytes([code])
    # Five- and six-byte forms carry up to 31 bits: beyond Unicode, or a surrogate, is no character.
    return _char(code).encode() if code <= 0x10FFFF else "\ufffd".encode()


def _backslash_char(match: re.Match) -> str:
    hex2, brace, hex4, octal = match.groups()
    code = int(hex2 or brace or hex4, 16) if not octal else int(octal, 8)
    return _char(code) if code <= 0x10FFFF else match[0]


def _char(code: int) -> str:
    """The character of a decoded escape; a lone UTF-16 surrogate is not one: U+FFFD."""
    return "\ufffd" if 0xD800 <= code <= 0xDFFF else chr(code)
