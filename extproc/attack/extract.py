"""Every value of a request an attacker controls, with where it came from.

The model scores values, not whole requests: a request's score is that of its worst value. This
keeps the model from learning what a site or a data source looks like instead of what an attack
looks like, and it tells the audit log which value was the problem.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote_plus, urlsplit

from extproc.attack.decode import ENCODED, MIN_CHARS, decoded_forms
from extproc.core.body import opens_like_json
from extproc.core.request import TEXT_TYPES, Request

# Values made only of these characters cannot carry an injection: skipped without scoring. So can
# groups of digits (card, phone and account numbers): whatever context they land in, they stay numbers.
SAFE_VALUE = re.compile(r"(?:[A-Za-z0-9_.@-]{0,128}|[0-9][0-9 ]{0,127})\Z")
# Argument names of nested forms (PHP, Rails, qs: 'search[state]', 'items[0][sku]') are ordinary too,
# unless a part is an operator ('user[$ne]': NoSQL) or reaches an object's prototype.
SAFE_NESTED_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}(?:\[[A-Za-z0-9_.@-]{0,64}\]){1,8}\Z")
PROTOTYPE_KEYS = re.compile(r"__proto__|constructor|prototype", re.IGNORECASE)
Part = Literal["path", "query", "cookies", "headers", "body"]
PARTS: tuple[Part, ...] = ("path", "query", "cookies", "headers", "body")
LIMIT_NOTES = frozenset({"attack_values_truncated", "attack_scan_truncated"})
# Headers that carry user data and are commonly used as injection vectors.
DEFAULT_HEADERS = (
    "user-agent", "referer", "origin", "x-forwarded-for", "x-forwarded-host", "x-real-ip",
    "x-original-url", "x-rewrite-url", "x-api-version", "forwarded", "true-client-ip", "contact", "from",
)
# Headers whose values are protocol tokens or credentials, never inspected as free text.
STRUCTURAL_HEADERS = frozenset({
    "accept", "accept-encoding", "accept-language", "accept-charset", "authorization", "cache-control",
    "connection", "content-length", "content-type", "content-encoding", "cookie", "host", "if-match",
    "if-none-match", "if-modified-since", "if-unmodified-since", "pragma", "priority", "te",
    "upgrade-insecure-requests", "x-request-id", "traceparent", "tracestate", "x-forwarded-proto",
    "x-envoy-external-address", "dnt", "sec-gpc", "range", "proxy-authorization", "keep-alive",
})


# Headers whose values are credentials: never free text to score (a token is random by design).
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
# What protocol tokens are made of; a quote, '$', '|', '<', '{' or a backslash is not among them.
PROTOCOL_VALUE = re.compile(r'[\w \t,;=./*+:()?"!#%&@~\[\]-]*\Z')
# The commonest protocol headers with a grammar of their own, tighter than PROTOCOL_VALUE: a path,
# a URL or SQL words in Accept-Language are not a language.
_WEIGHTED = r"(?:\s*;\s*q=[0-9.]{1,5})?"
_LIST = r"\s*(?:{item}{weight}(?:\s*,\s*{item}{weight})*)?\s*\Z"
HEADER_GRAMMARS = {
    "accept-language": re.compile(_LIST.format(item=r"(?:[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*|\*)", weight=_WEIGHTED)),
    "accept-encoding": re.compile(_LIST.format(item=r"[A-Za-z0-9*-]{1,32}", weight=_WEIGHTED)),
    "accept": re.compile(_LIST.format(item=r"[\w.+*-]{1,64}/[\w.+*-]{1,128}", weight=r"(?:\s*;\s*[\w.-]{1,32}=[\w.\"-]{1,64})*")),
    "content-length": re.compile(r"\d{1,19}\Z"),
}
GRAMMAR_MEMO = 4096
_GRAMMAR_SEEN: dict[tuple[str, str], bool] = {}
URL_HEADERS = frozenset({"referer", "x-original-url", "x-rewrite-url"})
MAX_URL_ARGS = 64


@dataclass(frozen=True)
class ExtractSettings:
    parts: frozenset[str] = frozenset(PARTS)
    headers: tuple[str, ...] = DEFAULT_HEADERS
    custom_headers: bool = True  # also headers outside the standard set (x-foo, my-header)
    exclude_args: frozenset[str] = frozenset()  # argument names never scored (known noisy fields)
    exclude_headers: frozenset[str] = frozenset()
    exclude_cookies: frozenset[str] = frozenset()
    max_values: int = 4096
    max_value_chars: int = 4096  # longer values are scored in windows of this size
    max_scan_chars: int = 262_144  # total text scored per request


@dataclass
class Extracted:
    locations: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    decodings: list[str] = field(default_factory=list)  # per text: "" for the raw value, else e.g. "base64"
    notes: set[str] = field(default_factory=set)
    scanned: int = 0
    seen: set[tuple[str, str]] = field(default_factory=set)

    def add(self, location: str, text: str, settings: ExtractSettings, decoding: str = "") -> None:
        if not text:
            return
        if not decoding and len(text) >= MIN_CHARS and ENCODED.match(text):
            self.add_decoded(location, text, settings)  # before the safe-value shortcut: base64 is safe characters
        place = location.partition(":")[0]
        if SAFE_VALUE.match(text) or (place.endswith("-name") and SAFE_NESTED_NAME.match(text)
                                      and not PROTOTYPE_KEYS.search(text)):
            return
        # The same text in the same kind of place scores the same: score it once. JSON arrays
        # repeat values, and repeating a value must not push others past max_values.
        key = (place, text)
        if key in self.seen:
            return
        self.seen.add(key)
        if len(self.texts) >= settings.max_values:
            self.notes.add("attack_values_truncated")
            return
        room = settings.max_scan_chars - self.scanned
        if room <= 0:
            self.notes.add("attack_scan_truncated")
            return
        if len(text) > room:
            text = text[:room]
            self.notes.add("attack_scan_truncated")
        for piece in _windows(text, settings.max_value_chars):
            self.locations.append(location)
            self.texts.append(piece)
            self.decodings.append(decoding)
        self.scanned += len(text)

    def add_decoded(self, location: str, text: str, settings: ExtractSettings) -> None:
        """Each reading of the value the application may decode (base64, hex), scored as a value of
        its own place; they count against the request's value and scan limits like any other."""
        if " " in text:  # a query's unencoded '+' arrives as a space; applications put it back
            text = text.replace(" ", "+")
        if location == "path":
            location = "segment"
        for encoding, decoded in decoded_forms(text):
            self.notes.add(f"decoded:{encoding.rpartition('+')[2]}")
            self.add(location, decoded, settings, encoding)


def _windows(text: str, size: int, overlap: int = 64) -> list[str]:
    """The text, or overlapping slices of it: a payload across a boundary is still seen whole."""
    if len(text) <= size:
        return [text]
    return [text[start:start + size] for start in range(0, len(text) - overlap, size - overlap)]


def extract(request: Request, settings: ExtractSettings) -> Extracted:
    out = Extracted()
    parts = settings.parts
    if "path" in parts:
        out.add("path", request.decoded_path, settings)
        for segment in request.decoded_path.split("/"):  # /files/<base64 of a payload>
            if len(segment) >= MIN_CHARS and ENCODED.match(segment):
                out.add_decoded("path", segment, settings)
    if "query" in parts:
        _add_args(out, "query", request.query_args, settings)
    if "cookies" in parts:
        for name, value in request.cookies:
            if name not in settings.exclude_cookies:
                out.add("cookie-name", name, settings)
                out.add(f"cookie:{name}", value, settings)
    if "headers" in parts:
        _add_headers(out, request, settings)
    if "body" in parts and request.body:
        _add_body(out, request, settings)
    # Values left unscored are the request's shortfall too: the route's over_limit setting decides.
    # Decodings that fired are for rules and the audit to see.
    request.notes.update(note for note in out.notes if note in LIMIT_NOTES or note.startswith("decoded:"))
    out.notes |= request.notes
    return out


def _add_args(out: Extracted, source: str, args, settings: ExtractSettings) -> None:
    for arg in args:
        if arg.name in settings.exclude_args:
            continue
        out.add(f"{source}-name", arg.name, settings)
        out.add(f"{source}:{arg.name}", arg.value, settings)
    if len({arg.name for arg in args}) < len(args):
        _add_joined_repeats(out, source, args, settings)


def _add_joined_repeats(out: Extracted, source: str, args, settings: ExtractSettings) -> None:
    """A repeated name: ASP.NET hands the application its values joined by commas, so a payload
    split over q=..&q=.. is whole again there. Score that joined value too."""
    values: dict[str, dict[str, None]] = {}
    for arg in args:
        if arg.name not in settings.exclude_args:
            values.setdefault(arg.name, {})[arg.value] = None  # size=XL&size=XL is one choice
    for name, distinct in values.items():
        if len(distinct) > 1:
            out.add(f"{source}:{name}", ",".join(distinct), settings)


def _add_headers(out: Extracted, request: Request, settings: ExtractSettings) -> None:
    wanted = settings.headers
    for name, value in request.headers:
        if name in settings.exclude_headers:
            continue
        if name in wanted or (settings.custom_headers and _is_custom(name)) or _off_grammar(name, value):
            out.add(f"header:{name}", value, settings)
            if name in URL_HEADERS:
                _add_url(out, name, value, settings)


def _off_grammar(name: str, value: str) -> bool:
    """A protocol header whose value is not made of protocol tokens: the application may still
    read it (a language, an ETag, a cache key), so it is scored like any other header."""
    if name not in STRUCTURAL_HEADERS or name in CREDENTIAL_HEADERS:
        return False
    key = (name, value)
    known = _GRAMMAR_SEEN.get(key)
    if known is None:  # clients repeat these values on every request: checked once each
        if len(_GRAMMAR_SEEN) >= GRAMMAR_MEMO:
            _GRAMMAR_SEEN.clear()
        grammar = HEADER_GRAMMARS.get(name)
        known = _GRAMMAR_SEEN[key] = not (grammar or PROTOCOL_VALUE).match(value)
    return known


def _add_url(out: Extracted, name: str, value: str, settings: ExtractSettings) -> None:
    """A URL header's query arguments, scored as the query arguments they are (an application that
    parses its referer reads them so). Its path is left to the header's own score: scored as a
    path, ordinary asset paths of other sites were flagged (3 of 1,829 captured requests)."""
    query = _url_query(value) if value.isascii() else ""
    if not query:
        return
    for pair in query.split("&")[:MAX_URL_ARGS]:
        arg, _, text = pair.partition("=")
        out.add(f"query-name:{name}", unquote_plus(arg, errors="surrogateescape"), settings)
        out.add(f"query:{name}.{arg[:32]}", unquote_plus(text, errors="surrogateescape"), settings)


def _url_query(url: str) -> str:
    """The query of a URL; of a URL urlsplit refuses (a bracketed host that is no address,
    `http://['a'+'lert']/?q=..`: a payload's own shape), what follows its first '?'."""
    try:
        return urlsplit(url).query
    except ValueError:
        return url.partition("?")[2].partition("#")[0]


def _add_declared_charset(out: Extracted, request: Request, settings: ExtractSettings) -> None:
    text = request.declared_charset_text
    if request.content_type == "application/x-www-form-urlencoded":
        _add_args(out, "form", request.declared_charset_form, settings)
        return
    out.add("body-charset", text, settings)
    for string in dict.fromkeys(request.declared_charset_json_strings):  # JSON in UTF-16, EBCDIC
        out.add("json", string, settings)


def _is_custom(name: str) -> bool:
    return name not in STRUCTURAL_HEADERS and not name.startswith(("sec-", "x-extproc-", "x-envoy-", "x-b3-"))


def _add_body(out: Extracted, request: Request, settings: ExtractSettings) -> None:
    if request.declared_charset_text is not None:
        # The application may decode the declared charset (EBCDIC, UTF-16, UTF-7): score what it
        # would read as well as the UTF-8 reading, since either may be the one that reaches it.
        _add_declared_charset(out, request, settings)
    syntax = request.body_syntax  # what the bytes are, whatever the declared type says
    if syntax == "form":
        _add_args(out, "form", request.form, settings)
    elif syntax == "json":
        for text in dict.fromkeys(request.json_strings):  # arrays repeat values: score each once
            out.add("json", text, settings)
    elif syntax == "multipart":
        _add_parts(out, request, settings)
    elif syntax in ("xml", "text"):
        out.add("body", request.body.decode("utf-8", "surrogateescape"), settings)
        # A JSON document with bytes after it: its strings as JSON too. Not declared text, whose
        # strings alone flagged short paths in beacons ("/c/cameras": 28 of 36,000 shop requests).
        if request.content_type not in TEXT_TYPES and opens_like_json(request.body):
            for text in dict.fromkeys(request.json_strings):
                out.add("json", text, settings)
    elif request.declared_charset_text is None:
        out.notes.add("attack_body_not_inspected")  # binary: images, archives, ...


def _add_parts(out: Extracted, request: Request, settings: ExtractSettings) -> None:
    for part in request.multipart_parts:
        if part.name in settings.exclude_args:
            continue
        out.add("multipart-name", part.name, settings)
        if part.filename is not None:
            out.add(f"multipart-filename:{part.name}", part.filename, settings)
            lenient = part.lenient_filename
            if lenient:
                out.add(f"multipart-filename:{part.name}", lenient, settings)
        if part.filename is None or part.content_type.startswith("text/"):
            out.add(f"multipart:{part.name}", part.text, settings)
