"""Secrets and personal data out of a whole request, for the capture (capture.py).

Credentials go entirely: the value of every header, cookie, query parameter, form field, multipart
field or JSON key whose name is sensitive (redact.py's fragments: token, secret, password, pwd, key,
auth, session, ...) becomes ``REDACTED``; an Authorization header keeps only its scheme
(``Bearer REDACTED``); every cookie value goes; a JSON Web Token goes wherever it appears.

Personal data found by its content - e-mail addresses and card numbers (13 to 19 digits that pass
the Luhn check) - is masked character by character instead: letters become ``x``/``X`` (``á``
beyond ASCII), digits ``0``, punctuation stays (``ana.peña@correo.es`` -> ``xxx.xxxá@xxxxxx.xx``).
Nothing of the person is left, but the shape is: ``extproc learn`` still learns an e-mail field as
one, and a card field as sixteen digits. File parts and bodies that are not text are dropped.
What was redacted is listed in the record (``redacted``), by kind and name, never by value.
"""
from __future__ import annotations

import re
from urllib.parse import quote_plus, unquote_plus

import orjson

from extproc.core.text import TEXT_ERRORS
from extproc.observability.redact import REDACTED, is_sensitive

# Letters include U+DC80-U+DCFF: bytes that were not UTF-8 (a Latin-1 'ñ' sent as %F1).
EMAIL = re.compile(r"[A-Za-z0-9À-ÖØ-öø-ÿ\udc80-\udcff._%+'-]+(?:@|%40)[A-Za-z0-9À-ÖØ-öø-ÿ\udc80-\udcff.-]+\.[A-Za-z]{2,}")
CARD = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])")
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
ESCAPE_OR_CHAR = re.compile(r"%[0-9A-Fa-f]{2}|.", re.DOTALL)
SCHEMES = ("bearer", "basic", "digest", "negotiate", "aws4-hmac-sha256", "token")


def mask(text: str) -> str:
    """Each character by its class: the shape of the value without the value (a percent-escape of
    a URL, ``%40``, stays: it is the encoding, not the person)."""
    out = []
    for piece in ESCAPE_OR_CHAR.findall(text):
        ch = piece
        if len(piece) > 1:
            out.append(piece)
        elif "a" <= ch <= "z":
            out.append("x")
        elif "A" <= ch <= "Z":
            out.append("X")
        elif ch.isdigit():
            out.append("0")
        elif ch.isalpha() or "\udc80" <= ch <= "\udcff" and chr(ord(ch) - 0xDC00).isalpha():
            out.append("á")  # a letter beyond ASCII, also one sent as a single Latin-1 byte
        else:
            out.append(ch)
    return "".join(out)


def luhn(digits: str) -> bool:
    total = 0
    for index, ch in enumerate(reversed(digits)):
        value = int(ch) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


class Scrubber:
    """Redacts one request at a time; ``found`` lists what it redacted."""

    def __init__(self) -> None:
        self.found: set[str] = set()

    def text(self, value: str) -> str:
        """Personal data and tokens inside free text."""
        if JWT.search(value):
            self.found.add("token")
            value = JWT.sub(REDACTED, value)
        if "@" in value or "%40" in value:
            value, count = EMAIL.subn(lambda m: mask(m.group(0)), value)
            if count:
                self.found.add("email")
        if sum(ch.isdigit() for ch in value) >= 13:
            value = CARD.sub(self._card, value)
        return value

    def _card(self, match: re.Match) -> str:
        digits = re.sub(r"[ -]", "", match.group(0))
        if not luhn(digits):
            return match.group(0)
        self.found.add("card")
        return mask(match.group(0))

    def named(self, where: str, name: str, value: str) -> str:
        if is_sensitive(name):
            self.found.add(f"{where} {name[:64]}")
            return REDACTED
        return self.text(value)

    def header(self, name: str, value: str) -> str:
        if name == "cookie":
            return "; ".join(self._cookie(item.strip()) for item in value.split(";") if item.strip())
        if name in ("authorization", "proxy-authorization"):
            self.found.add(f"header {name}")
            scheme = value.split(" ", 1)[0]
            return f"{scheme} {REDACTED}" if scheme.lower() in SCHEMES else REDACTED
        return self.named("header", name, value)

    def _cookie(self, item: str) -> str:
        name, _, _ = item.partition("=")
        self.found.add(f"cookie {name[:64]}")
        return f"{name}={REDACTED}"

    def pairs(self, where: str, encoded: str) -> str:
        """A query string or form body, each value redacted by its name or content; encoding kept."""
        out = []
        for item in encoded.split("&"):
            raw_name, eq, raw_value = item.partition("=")
            name = unquote_plus(raw_name, errors=TEXT_ERRORS)
            value = unquote_plus(raw_value, errors=TEXT_ERRORS)
            scrubbed = self.named(where, name, value)
            out.append(item if scrubbed == value else f"{raw_name}{eq}{_encoded(scrubbed, raw_value)}")
        return "&".join(out)

    def json(self, document: object, key: str = "", secret: bool = False) -> object:
        """A JSON document with the strings under a sensitive key redacted (its structure kept)."""
        if key and not secret and is_sensitive(key):
            self.found.add(f"json {key[:64]}")
            secret = True
        if isinstance(document, dict):
            return {k: self.json(v, str(k), secret) for k, v in document.items()}
        if isinstance(document, list):
            return [self.json(item, key, secret) for item in document]
        if isinstance(document, str):
            return REDACTED if secret else self.text(document)
        return document


def _encoded(scrubbed: str, raw_value: str) -> str:
    """The scrubbed value percent-encoded again; masking keeps ASCII, so Latin-1 bytes stay bytes."""
    if scrubbed == REDACTED:
        return REDACTED
    return quote_plus(scrubbed.encode("utf-8", TEXT_ERRORS), safe="@%") if raw_value else scrubbed


def scrub_json_body(scrubber: Scrubber, body: bytes) -> bytes | None:
    """A JSON body with its secrets and personal data out; None when it is not JSON."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return orjson.dumps(scrubber.json(document))


def scrub_multipart(scrubber: Scrubber, body: bytes, content_type: str) -> bytes | None:
    """A multipart/form-data body rebuilt with the same boundary: fields redacted like form fields,
    file names masked, file contents dropped. None when it does not parse."""
    from extproc.core.request import Request

    request = Request("POST", "/", headers=(("content-type", content_type),), has_body=True)
    request.attach_body(body)
    parts = request.multipart_parts
    boundary = content_type.partition("boundary=")[2].split(";")[0].strip().strip('"')
    if not parts or not boundary or "multipart_invalid" in request.notes:
        return None
    out = []
    for part in parts:
        name = part.name.replace('"', "%22")
        if part.filename is None:
            head = f'Content-Disposition: form-data; name="{name}"'
            data = scrubber.named("form", part.name, part.text).encode("utf-8", TEXT_ERRORS)
        else:
            scrubber.found.add(f"file {part.name[:64]}")
            head = (f'Content-Disposition: form-data; name="{name}"; filename="{mask(part.filename)}"\r\n'
                    f"Content-Type: {part.content_type}")
            data = REDACTED.encode()
        out.append(f"--{boundary}\r\n{head}\r\n\r\n".encode("utf-8", TEXT_ERRORS) + data + b"\r\n")
    return b"".join(out) + f"--{boundary}--\r\n".encode()
