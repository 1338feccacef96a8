"""The parsed HTTP request every layer sees.

Built from what Envoy sends on the headers message; the body is attached later when a layer
needs it. Views (query args, cookies, form, JSON leaves, multipart parts) are computed lazily,
once, within the inspection limits; whatever the limits cut off is recorded in ``notes`` so
a layer or rule can act on it instead of it being skipped silently.
"""
from __future__ import annotations

import binascii
import codecs
import io
import quopri
import re
from dataclasses import dataclass, field
from types import GeneratorType
from typing import Any, Generic, Iterator, Mapping, NamedTuple, TypeVar
from urllib.parse import unquote, unquote_plus

import multipart
import orjson

from extproc.core.body import bom_codec, content_codings, decode_content, opens_like_json, sniff
from extproc.core.paths import CanonicalPath, canonical
from extproc.core.text import TEXT_ERRORS  # surrogateescape: invalid UTF-8 kept lossless (extproc/core/text.py)


class cached_property:  # noqa: N801 - used like functools.cached_property
    """functools.cached_property without its lock (Python 3.11 takes an RLock on every first
    access; a request is only ever read by the thread that handles it). Computed on first access,
    then stored in the instance dict, which attribute lookup finds first from then on."""

    def __init__(self, compute):
        self.compute, self.name, self.__doc__ = compute, compute.__name__, compute.__doc__

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.compute(instance)
        return value


@dataclass(frozen=True, slots=True)
class InspectionLimits:
    max_body_bytes: int = 1024 * 1024
    max_args: int = 4096
    max_json_depth: int = 32
    max_multipart_parts: int = 64
    # What a request that could not be inspected whole gets (extproc.core.inspection); noted either way.
    oversize: str = "deny"  # a body larger than inspected (or than Envoy's buffer): deny 413 | inspect_prefix
    over_limit: str = "deny"  # more args, parts, depth or scored values than the limits: deny 413 | inspect_prefix
    uninspectable: str = "deny"  # a body no one can read (unknown coding or charset, broken gzip): deny 415 | allow
    uncanonical_path: str = "deny"  # a path with no single reading (.. above the root, %252f): deny 400 | allow


@dataclass(frozen=True, slots=True)
class Part:
    """One multipart/form-data part."""

    name: str
    filename: str | None
    content_type: str
    data: bytes
    disposition: str = ""  # the raw Content-Disposition value

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", TEXT_ERRORS)

    @property
    def lenient_filename(self) -> str | None:
        """The filename as a lenient parser reads it, when that differs from the strict reading.

        The strict quoted-string ends at the first inner quote (filename="a"b" is 'a'); parsers
        that take everything up to the last quote see 'a"b', so a payload can hide past it."""
        if self.filename is None:
            return None
        lowered = self.disposition.lower()
        start = lowered.rfind("filename=")
        if start < 0:
            return None
        raw = self.disposition[start + len("filename="):].strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = raw[1:-1]
        return raw if raw != self.filename else None


class Arg(NamedTuple):
    """A named value the client controls: query or body argument, JSON leaf, form part.

    A tuple rather than a dataclass: requests carry hundreds of these and they are built hot.
    """

    source: str  # "query" | "form" | "json" | "multipart"
    name: str  # for JSON: the innermost key
    value: str
    path: str = ""  # for JSON: the dotted path from the root, e.g. "user.roles[0]"


T = TypeVar("T")
_GENERATOR = GeneratorType
_new_tuple = tuple.__new__  # an Arg without NamedTuple's Python-level __new__ (built by the hundred)

# Cached properties derived from the body: attach_body() drops them.
BODY_VIEWS = ("form", "json", "json_leaves", "json_strings", "multipart_parts", "body_args", "args",
              "declared_charset_text", "declared_charset_form", "declared_charset_json_strings", "body_shape",
              "body_syntax")
# Declared text: scored whole (its JSON strings alone flagged short paths in beacon bodies).
TEXT_TYPES = frozenset({"text/plain", "application/graphql", "application/javascript", "text/html",
                        "application/x-yaml"})
# JSON by another name: what frameworks register as JSON besides application/json and +json.
JSON_TYPES = frozenset({"text/json", "application/x-json", "application/x-ndjson", "application/ndjson",
                        "application/jsonl", "application/x-jsonlines", "application/json-seq"})
UTF8_BOM = b"\xef\xbb\xbf"
# A JSON string token; escapes are resolved afterwards only where a backslash occurs. The loop
# is unrolled (runs of plain characters, then one escape) for 3x the speed of an alternation.
JSON_STRING = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"', re.DOTALL)


class StateKey(Generic[T]):
    """The key under which one layer keeps per-request state between phases (the request's body,
    the upstream's answer); its type parameter is the type of what is kept."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"StateKey({self.name!r})"


@dataclass(eq=False)
class Request:
    method: str
    path: str  # raw :path, query string included
    authority: str = ""
    scheme: str = "http"
    headers: tuple[tuple[str, str], ...] = ()  # regular headers in arrival order, names lower-case
    pseudo_order: tuple[str, ...] = ()  # order of the pseudo-headers as Envoy sent them
    source_ip: str = ""
    route_name: str = ""
    request_id: str = ""
    received_at: float | None = None  # seconds, when replaying records (client.t); None: now
    state: dict[StateKey, object] = field(default_factory=dict)  # what layers keep between phases (kept())
    protocol: str = ""
    mtls: bool = False
    peer: Mapping[str, str] = field(default_factory=dict)  # mTLS peer certificate facts
    has_body: bool = False  # the headers message said more follows
    limits: InspectionLimits = field(default_factory=InspectionLimits)
    body: bytes = b""  # as the application reads it: content codings (gzip, br, ...) undone
    body_size: int = 0  # bytes received, including what was beyond the inspection limit
    notes: set[str] = field(default_factory=set)  # inspection limits hit, parse failures

    # -- headers -------------------------------------------------------------------------

    @cached_property
    def header_map(self) -> dict[str, tuple[str, ...]]:
        grouped: dict[str, list[str]] = {}
        for name, value in self.headers:
            grouped.setdefault(name, []).append(value)
        return {name: tuple(values) for name, values in grouped.items()}

    def header(self, name: str, default: str = "") -> str:
        """First value of a header (name lower-case), or default."""
        values = self.header_map.get(name)
        return values[0] if values else default

    # -- layer state ---------------------------------------------------------------------

    def kept(self, key: StateKey[T]) -> T | None:
        """What a layer kept for this request under ``key`` (from an earlier phase), or None."""
        return self.state.get(key)  # type: ignore[return-value]

    def keep(self, key: StateKey[T], value: T) -> T:
        self.state[key] = value
        return value

    @cached_property
    def host(self) -> str:
        """Authority without the port, lower-case."""
        host = self.authority.lower()
        if host.startswith("["):  # IPv6 literal
            return host.partition("]")[0] + "]"
        return host.rpartition(":")[0] if host.count(":") == 1 else host

    # -- URL -----------------------------------------------------------------------------

    @cached_property
    def url_path(self) -> str:
        """The path before '?', as sent (still percent-encoded)."""
        return self.path.partition("?")[0]

    @cached_property
    def query(self) -> str:
        return self.path.partition("?")[2]

    @cached_property
    def decoded_path(self) -> str:
        return unquote(self.url_path, errors=TEXT_ERRORS)

    @cached_property
    def canonical_form(self) -> CanonicalPath:
        """The path as routes and rules read it (extproc.core.paths): one spelling for every server."""
        result = canonical(self.url_path)
        if result.problem:
            self.notes.add("path_uncanonical")
        return result

    @cached_property
    def canonical_path(self) -> str:
        return self.canonical_form.path

    @cached_property
    def folded_path(self) -> str:
        """The canonical path for case-insensitive matching."""
        return canonical(self.url_path, fold=True).path

    @cached_property
    def query_args(self) -> tuple[Arg, ...]:
        return tuple(self._split_pairs("query", self.query, self.limits.max_args))

    # -- cookies -------------------------------------------------------------------------

    @cached_property
    def cookies(self) -> tuple[tuple[str, str], ...]:
        """Every cookie of every cookie header; lenient, as attackers do not follow RFC 6265."""
        pairs = []
        for header in self.header_map.get("cookie", ()):
            for item in header.split(";"):
                name, _, value = item.strip().partition("=")
                if name or value:
                    pairs.append((name, value))
        return tuple(pairs)

    # -- body ----------------------------------------------------------------------------

    def attach_body(self, body: bytes, total_size: int | None = None, complete: bool = True) -> None:
        """Set the body once it has arrived: content codings undone (what the application reads),
        bytes beyond the limit dropped and noted.

        ``complete`` is False when Envoy passed only the part that fit its buffer.
        """
        self.body_size = len(body) if total_size is None else total_size
        limit = self.limits.max_body_bytes
        if self.body_size > limit or not complete:
            self.notes.add("body_truncated")
        body = body[:limit]
        codings = content_codings(self.header_map.get("content-encoding", ()))
        if codings and body:
            decoded = decode_content(body, codings, limit, complete and self.body_size <= limit)
            body = decoded.body
            if decoded.overflow:
                self.notes.add("body_truncated")
            if decoded.problem:
                self.notes.add(decoded.problem)
        self.body = body
        for name in BODY_VIEWS:
            self.__dict__.pop(name, None)  # views of the body computed before it arrived
        if body and "charset" in self.header("content-type").lower():
            _ = self.declared_charset_text  # notes body_charset_unknown now, for rules on notes

    @cached_property
    def content_type(self) -> str:
        """Media type without parameters, lower-case."""
        return self.header("content-type").partition(";")[0].strip().lower()

    @cached_property
    def declared_charset_text(self) -> str | None:
        """The body as its declared charset reads it, when that differs from reading it as UTF-8.

        An application that honours ``charset=ibm037`` (EBCDIC), UTF-16/32 or UTF-7 sees text
        that a UTF-8 reading of the same bytes does not: a payload can hide there. None when no
        charset is declared, when the charset reads ASCII as ASCII, or when Python does not know
        it (noted as body_charset_unknown)."""
        charset = _media_param(self.header("content-type"), "charset") or bom_codec(self.body)
        if not self.body or not charset:
            return None
        try:
            codec = codecs.lookup(charset).name
            if _reads_ascii_as_ascii(codec):
                return None
            return self.body.decode(codec, "replace").removeprefix("\ufeff")  # the BOM is no text
        except (LookupError, ValueError):  # also a name with NUL or non-UTF-8 bytes, a codec refusing "replace"
            self.notes.add("body_charset_unknown")
            return None

    @cached_property
    def declared_charset_form(self) -> tuple[Arg, ...]:
        """Form arguments as the declared charset reads the body; () when that reading is UTF-8's."""
        text = self.declared_charset_text
        if text is None or self.content_type != "application/x-www-form-urlencoded":
            return ()
        return tuple(self._split_pairs("form", text, self.limits.max_args))

    @cached_property
    def form(self) -> tuple[Arg, ...]:
        if self.body_syntax != "form":
            return ()
        return tuple(self._split_pairs("form", self.body.decode("utf-8", TEXT_ERRORS), self.limits.max_args))

    @cached_property
    def body_shape(self) -> str:
        """What the body's bytes look like, whatever its declared type (extproc.core.body.sniff)."""
        return sniff(self.body)

    @cached_property
    def body_syntax(self) -> str:
        """How the application reads the body: json, form, multipart, xml, text or binary.

        The bytes decide, not only the declared type: many frameworks parse JSON whatever the type
        says (text/json, text/csv, octet-stream, none), so a payload cannot hide behind a label.
        A declared form stays a form unless it is a JSON document (a form parser reads anything);
        declared text stays text, scored whole."""
        media = self.content_type
        if not self.body:
            return ""
        if media == "multipart/form-data":
            return "multipart"
        shape = self.body_shape
        if media == "application/x-www-form-urlencoded":
            return "json" if shape == "json" else "form"
        if media in TEXT_TYPES and shape != "binary":
            return "text"
        return shape

    @cached_property
    def json(self) -> object | None:
        """The parsed JSON body, or None when absent or invalid (noted)."""
        if not self.body or not (_is_json(self.content_type) or self.body_shape == "json"):
            return None
        text = self.body.removeprefix(UTF8_BOM)
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            # orjson refuses nesting beyond 1024 levels: that is a depth problem, not bad syntax.
            if "depth limit" in str(exc):
                self.notes.add("json_depth_exceeded")
                return None
        lines = _json_lines(text)  # NDJSON / JSON Lines: one document per line
        if lines is None:
            self.notes.add("json_invalid")
        return lines

    @cached_property
    def json_strings(self) -> tuple[str, ...]:
        """Every string token of a JSON body, keys included, in order and within max_args.

        A single regex pass instead of a parse and a tree walk: this is what content scanners
        need (numbers and booleans carry no payload), it is several times faster on large
        bodies, and it still reads a body that is not valid JSON.
        """
        if not self.body or not (self.body_syntax == "json" or _is_json(self.content_type)
                                  or opens_like_json(self.body)):
            return ()
        return self._string_tokens(self.body.decode("utf-8", TEXT_ERRORS))

    @cached_property
    def declared_charset_json_strings(self) -> tuple[str, ...]:
        """The string tokens of a JSON document in a charset that reads ASCII differently (UTF-16,
        EBCDIC); () otherwise. Declared text is scored whole, never string by string."""
        text = self.declared_charset_text
        if text is None or self.content_type in TEXT_TYPES or text.lstrip()[:1] not in ("{", "["):
            return ()
        return self._string_tokens(text)

    def _string_tokens(self, text: str) -> tuple[str, ...]:
        strings = JSON_STRING.findall(text)
        if len(strings) > self.limits.max_args:
            self.notes.add("json_args_truncated")
            del strings[self.limits.max_args:]
        if "\\" in text:  # escapes are rare: resolve them only where they occur
            strings = [json_unescape(s) if "\\" in s else s for s in strings]
        return tuple(strings)

    @cached_property
    def json_leaves(self) -> tuple[Arg, ...]:
        """Scalar leaves as (dotted path, text), keys included in the path, within limits."""
        if self.json is None:
            return ()
        return tuple(self._walk_json(self.json))

    @cached_property
    def multipart_parts(self) -> tuple[Part, ...]:
        if self.content_type != "multipart/form-data":
            return ()
        boundary = _media_param(self.header("content-type"), "boundary")
        if not boundary:
            self.notes.add("multipart_invalid")
            return ()
        return tuple(self._parse_multipart(boundary))

    @cached_property
    def body_args(self) -> tuple[Arg, ...]:
        parts = tuple(
            Arg("multipart", p.name, p.filename if p.filename is not None else p.text)
            for p in self.multipart_parts
        )
        # A form in a charset that reads ASCII differently (EBCDIC, UTF-16) is also given as the
        # application would decode it, so a virtual patch cannot be stepped around by re-encoding.
        return self.form + self.declared_charset_form + self.json_leaves + parts

    @cached_property
    def args(self) -> tuple[Arg, ...]:
        """Query arguments followed by body arguments."""
        return self.query_args + self.body_args

    # -- parsing helpers -----------------------------------------------------------------

    def _split_pairs(self, source: str, text: str, limit: int) -> Iterator[Arg]:
        if not text:
            return
        # Empty items ('a=1&&b=2') are skipped before counting: padding must not push args out.
        items = [item for item in text.split("&") if item]
        if len(items) > limit:
            self.notes.add(f"{source}_args_truncated")
            del items[limit:]
        for item in items:
            name, _, value = item.partition("=")
            yield _new_tuple(Arg, (source, unquote_plus(name, errors=TEXT_ERRORS),
                                   unquote_plus(value, errors=TEXT_ERRORS), ""))

    def _walk_json(self, root: object) -> list[Arg]:
        # Iterative: deep nesting must not reach Python's recursion limit. This is a hot path
        # (hundreds of leaves in a few KB of JSON), hence type() checks and a flat stack.
        leaves: list[Arg] = []
        limit, max_depth = self.limits.max_args, self.limits.max_json_depth
        # Any: a JSON value or a generator of children, dispatched on type(node) below (kept in a
        # variable for speed, which the type checker cannot narrow through)
        stack: list[tuple[Any, str, str, int]] = [(root, "", "", 0)]
        while stack:
            node, path, key, depth = stack.pop()
            kind = type(node)
            if kind is _GENERATOR:  # the rest of a large container's children, one at a time
                child = next(node, None)
                if child is not None:
                    stack.append((node, path, key, depth))
                    stack.append(child)
                continue
            if kind is dict or kind is list:
                if depth >= max_depth:
                    self.notes.add("json_depth_exceeded")
                    continue
                if len(node) > limit:
                    # Lazily: at most `limit` leaves are kept, so a 100k-element array must not cost
                    # 100k path strings built and dropped (70 ms for 200 KB of JSON).
                    stack.append((_children(node, path, key, depth + 1), "", "", depth))
                    continue
                if kind is dict:
                    children = [(v, f"{path}.{k}" if path else k, k, depth + 1) for k, v in node.items()]
                else:
                    children = [(v, f"{path}[{i}]", key, depth + 1) for i, v in enumerate(node)]
                children.reverse()  # popped in document order
                stack.extend(children)
            elif len(leaves) >= limit:
                self.notes.add("json_args_truncated")
                break
            else:
                leaves.append(_new_tuple(Arg, ("json", key, node if kind is str else _json_scalar_text(node), path)))
        return leaves

    def _parse_multipart(self, boundary: str) -> Iterator[Part]:
        limit = self.limits.max_multipart_parts
        # Part headers are read as Latin-1, which reads any byte, then given in the one
        # representation: a byte that is not UTF-8 in a part's name must not end the parsing
        # (every later part would go uninspected) nor fault the layer reading it.
        parser = multipart.MultipartParser(
            io.BytesIO(self.body), boundary.encode("utf-8", TEXT_ERRORS), part_limit=limit + 1, charset="latin-1",
            memory_limit=self.limits.max_body_bytes * 2, disk_limit=0, spool_limit=self.limits.max_body_bytes + 1,
        )
        try:
            for count, part in enumerate(parser):
                if count == limit:
                    self.notes.add("multipart_parts_truncated")
                    return
                data = _transfer_decoded(part.raw, part.headers.get("Content-Transfer-Encoding", ""))
                if data is None:
                    self.notes.add("multipart_invalid")
                    data = part.raw
                filename = None if part.filename is None else _from_latin1(part.filename)
                yield Part(_from_latin1(part.name or ""), filename, _part_type(part), data,
                           _from_latin1(part.disposition or ""))
        except multipart.MultipartError:
            self.notes.add("multipart_invalid")


def _children(node: dict | list, path: str, key: str, depth: int) -> Iterator[tuple[object, str, str, int]]:
    """A container's children as _walk_json stacks them, one at a time (a function, so that the
    path and key are bound now, not when the walk has moved on)."""
    if type(node) is dict:
        for k, v in node.items():
            yield v, f"{path}.{k}" if path else k, k, depth
    else:
        for i, v in enumerate(node):
            yield v, f"{path}[{i}]", key, depth


def _transfer_decoded(raw: bytes, encoding: str) -> bytes | None:
    """A part's content as parsers that honour Content-Transfer-Encoding read it; None when it
    does not decode (the parser that honours it reads something the sidecar cannot)."""
    encoding = encoding.strip().lower()
    try:
        if encoding == "base64":
            return binascii.a2b_base64(raw, strict_mode=False)
        if encoding == "quoted-printable":
            return quopri.decodestring(raw)
    except (binascii.Error, ValueError):
        return None
    return raw


def _from_latin1(text: str) -> str:
    """Text read as Latin-1 (byte for character) in the one representation of client bytes."""
    return text if text.isascii() else text.encode("latin-1").decode("utf-8", TEXT_ERRORS)


def _part_type(part: multipart.MultipartPart) -> str:
    """The part's media type, lower-case (Latin-1 lower-casing would change bytes), or the default."""
    declared = _from_latin1(part.headers.get("Content-Type", "")).partition(";")[0].strip().lower()
    return declared or ("application/octet-stream" if part.filename else "text/plain")


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json") or media_type in JSON_TYPES


def _json_lines(text: bytes) -> list | None:
    """The documents of a JSON Lines body, or None when it is not one."""
    lines = [line for line in text.replace(b"\x1e", b"\n").splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    try:
        return [orjson.loads(line) for line in lines]
    except orjson.JSONDecodeError:
        return None


def json_unescape(raw: str) -> str:
    try:
        return orjson.loads(('"' + raw + '"').encode("utf-8", TEXT_ERRORS))
    except orjson.JSONDecodeError:  # invalid escape: keep the raw text, it is what was sent
        return raw


def _json_scalar_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# Printable ASCII plus the sequences that make UTF-7 differ ('+ADw-' is '<').
_ASCII_PROBE = bytes(range(0x20, 0x7F)) + b" +ADw- +AD4-"
_TRANSPARENT: dict[str, bool] = {}


def _reads_ascii_as_ascii(codec: str) -> bool:
    """True when the codec decodes ASCII bytes to the same characters (UTF-8, Latin-1, ...)."""
    known = _TRANSPARENT.get(codec)
    if known is None:
        try:
            known = _ASCII_PROBE.decode(codec, "replace") == _ASCII_PROBE.decode("ascii")
        except (LookupError, TypeError, ValueError):  # codecs that are not text encodings (base64, zlib)
            known = True
        _TRANSPARENT[codec] = known
    return known


def _media_param(content_type: str, wanted: str) -> str:
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == wanted:
            return value.strip().strip('"')
    return ""
