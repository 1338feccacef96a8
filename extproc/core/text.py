"""Client bytes as text: one representation inside Python, one way to show it to a library.

Inside Python, every byte string from the client (path, query, headers, cookies, bodies) is
decoded as UTF-8 with ``surrogateescape`` (TEXT_ERRORS): a byte that is not part of valid UTF-8
becomes the lone surrogate U+DC80..U+DCFF of the same value. That is lossless (encoding with the
same handler gives the bytes back) and cannot be mistaken for anything a client typed.

Compiled libraries (RE2, Aho-Corasick, CEL, jsonschema-rs, ua-parser, orjson, protobuf, PyJWT's
encode) take only valid Unicode: a lone surrogate makes them raise, and a layer that raises is a
503 under ``on_error: closed`` or a skipped layer under ``open``. ``library_text`` is the one rule
for every such boundary: each undecodable byte is shown as the ISO-8859-1 character of the same
value (0xF3 -> 'ó'). That is what an application reading Latin-1 sees (a legacy form posting
``?nombre=Jam%F3n``, an obs-text header value), it is one character per byte (lengths and
patterns are judged as that application would), and it is never ASCII, so undecodable bytes
cannot form syntax that a rule or schema looks for. A lone surrogate that no byte made (Python
code can build one; JSON parsing here refuses them) becomes U+FFFD.
"""
from __future__ import annotations

import codecs
from typing import Any, overload

TEXT_ERRORS = "surrogateescape"
LATIN1_ERRORS = "extproc.latin1"  # decode error handler: each undecodable byte as its Latin-1 character

# U+DC80..U+DCFF (what surrogateescape made of the bytes 0x80..0xFF) -> U+0080..U+00FF; every
# other surrogate -> U+FFFD.
_SHOWN = {code: 0xFFFD for code in range(0xD800, 0xE000)} | {0xDC00 + byte: byte for byte in range(0x80, 0x100)}


def decode(raw: bytes) -> str:
    """Client bytes as text, lossless: undecodable bytes kept as U+DC80..U+DCFF."""
    return raw.decode("utf-8", TEXT_ERRORS)


def library_text(text: str) -> str:
    """The text as a compiled library may take it: valid Unicode, undecodable bytes in Latin-1."""
    if text.isascii() or text.isprintable():  # no surrogate (they are not printable): as it is
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.translate(_SHOWN)
    return text


def library_decode(raw: bytes) -> str:
    """library_text(decode(raw)) in one pass, for bodies: the same characters, without the copy."""
    return raw.decode("utf-8", LATIN1_ERRORS)


def _as_latin1(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):  # registered for decoding only
        raise error
    return error.object[error.start:error.end].decode("latin-1"), error.end


codecs.register_error(LATIN1_ERRORS, _as_latin1)


@overload
def library_value(value: dict[str, Any]) -> dict[str, Any]: ...
@overload
def library_value(value: object) -> object: ...
def library_value(value: object) -> object:
    """library_text applied to every string of a JSON-like value (dict keys included)."""
    # type() rather than isinstance(): subclasses are left as they are, as before
    if type(value) is str:
        return library_text(value)
    if type(value) is dict:
        return {library_text(k) if type(k) is str else k: library_value(v) for k, v in value.items()}
    if type(value) is list or type(value) is tuple:
        return [library_value(item) for item in value]
    return value
