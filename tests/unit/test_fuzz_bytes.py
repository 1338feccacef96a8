"""Arbitrary bytes in every field of a request, through every layer at once (issue 18, item 7).

Requests are built as Envoy sends them: the :path and every header value as raw bytes in
raw_value, the body as bytes; extproc/wire/convert.py turns them into the one representation of client
text (UTF-8 with surrogateescape, extproc/core/text.py). Hypothesis puts arbitrary bytes - invalid
UTF-8, NUL, lone continuation bytes, overlong forms, encoded surrogates, CR/LF, megabyte-sized
runs - into one field at a time (path, query names and values, header names and values, cookies,
form fields, JSON keys and string values, multipart names, filenames and contents), and into all
of them at once, and the kitchen-sink policy of test_fuzz_layers runs every layer on them.

Every example asserts: no layer faulted (a fault is a 503 under on_error: closed, a skipped layer
under open); the decision is an allow, or a deny with one of the statuses the layers use; the
deny reply leaks nothing (test_fuzz_layers.Driver checks each reply); and the decision's audit
record, log line and trace span can be written. Derandomised: CI runs the same examples each time.
To search further: EXTPROC_FUZZ_EXAMPLES=2000 EXTPROC_FUZZ_RANDOM=1 python -m pytest tests/unit/test_fuzz_bytes.py
"""
from __future__ import annotations

import gzip
import logging
import os
import zlib
from urllib.parse import quote_from_bytes

import brotli
import orjson
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from extproc.observability.audit import Entry, render
from extproc.observability.logs import JsonFormatter
from extproc.observability.tracing import Tracing
from extproc.core.verdict import Action, Outcome
from tests.unit.test_fuzz_layers import SECRET, Driver, credentials, sink  # noqa: F401 - sink: the kitchen-sink fixture

FUZZ = settings(max_examples=int(os.environ.get("EXTPROC_FUZZ_EXAMPLES", "60")),
                derandomize="EXTPROC_FUZZ_RANDOM" not in os.environ, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# Every status a layer of the kitchen-sink policy denies with; 503 (a fault) is not one of them.
DENY_STATUSES = {400, 401, 403, 404, 405, 413, 415, 429}
AWKWARD = [
    b"\xf3", b"\xff", b"\xfe", b"\x00", b"\x80", b"\xbf",  # Latin-1, never UTF-8, NUL, lone continuations
    b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98",  # sequences cut short
    b"\xc0\xae", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf", b"\xc1\xbf",  # overlong forms
    b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80",  # surrogates, beyond U+10FFFF
    b"\xc3\xb3", b"\xef\xbb\xbf", b"\xe2\x80\xae", b"\xf0\x9f\x98\x80",  # valid: o-acute, BOM, RLO, emoji
    b"\r\n", b"\r", b"\n", b"\t", b" ", b"%", b"%F3", b"%ff", b"%c0%ae", b"%00", b"%u00f3", b"+",
    b";", b"=", b"&", b",", b'"', b"\\", b"/", b"../", b"{", b"[", b"\\u0000", b"\\udcf3", b"\\ud800",
]
piece = st.one_of(st.sampled_from(AWKWARD), st.binary(max_size=6), st.sampled_from([b"a", b"Jam", b"n", b"1"]))
short = st.lists(piece, max_size=10).map(b"".join)
long = st.tuples(st.sampled_from([b"\xf3", b"\xff\xfe", b"\xc0\xae", b"a\xf3", b"\x00"]),
                 st.integers(1_000, 40_000)).map(lambda pair: pair[0] * pair[1])
octets = st.one_of(short, short, short, short, long)


def in_url(raw: bytes, how: str) -> bytes:
    """The bytes as a client may put them in a URL: raw, or percent-encoded (all or the unsafe)."""
    if how == "raw":
        return raw
    return quote_from_bytes(raw, safe="" if how == "all" else "/=&;+%").encode()


url_encoding = st.sampled_from(["raw", "all", "some"])


def json_string(raw: bytes, how: str) -> bytes:
    """A JSON string literal: the raw bytes between quotes (often invalid JSON or invalid UTF-8),
    or those bytes with quote, backslash and control characters escaped (valid JSON syntax)."""
    if how == "raw":
        return b'"' + raw + b'"'
    out = bytearray(b'"')
    for byte in raw:
        out += b"\\u%04x" % byte if byte < 0x20 or byte in b'"\\' else bytes([byte])
    return bytes(out + b'"')


json_encoding = st.sampled_from(["raw", "escaped", "escaped"])

# -- the checks -----------------------------------------------------------------------------


def tracing() -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider.get_tracer("fuzz"), provider), exporter


TRACING, SPANS = tracing()


def send(policy, method: str, path: bytes, headers, body: bytes | None = None):
    driver = Driver(policy, "bytes")
    span = TRACING.start(())
    decision = driver.request(method, path, headers, body)
    assert_defined(driver, decision, span)
    return decision


def assert_defined(driver: Driver, decision, span) -> None:
    assert decision is not None
    faults = [(r.verdict.layer, r.outcome.value) for r in decision.results
              if r.outcome in (Outcome.ERROR, Outcome.SKIPPED)]
    assert not faults, (faults, decision.reasons)
    if not decision.allowed:
        assert decision.status in DENY_STATUSES, (decision.status, decision.denied_by, decision.reasons)
    request = driver.stream.transaction.request
    # The records of the decision: the audit line, the log line, the trace span (the exporter
    # encodes it to protobuf, which takes valid UTF-8 only).
    record = orjson.loads(render(Entry(0.0, decision, None, request.source_ip, request.method, request.host,
                                       request.url_path, "digest", 1.0)))
    assert record["path"] and record["decision"] in ("allow", "deny")
    log = logging.makeLogRecord({"msg": "request denied", "reasons": list(decision.reasons),
                                 "path": request.path, "user_agent": request.header("user-agent")})
    orjson.loads(JsonFormatter().format(log))
    TRACING.finish(span, decision, request, "digest")
    spans = SPANS.get_finished_spans()
    encode_spans(spans).SerializeToString()
    SPANS.clear()


JSON = ("content-type", b"application/json")
# API Shield operations with query, path and header parameters of every type (tests/data/shop-openapi.yaml).
API_PATHS = [b"/api/v1/search", b"/api/v1/products", b"/api/v1/orders", b"/api/v1/partner/stock",
             b"/api/v1/admin/reports/sales", b"/api/v1/categories/shoes", b"/api/v1/health"]
QUERY_NAMES = [b"q", b"sort", b"tags", b"limit", b"min_price", b"in_stock", b"from", b"sku", b"debug"]
CHARSETS = [b"", b"; charset=utf-8", b"; charset=iso-8859-1", b"; charset=ibm037", b"; charset=utf-16",
            b"; charset=utf-7", b"; charset=nope"]

# -- one field at a time --------------------------------------------------------------------


@FUZZ
@given(prefix=st.sampled_from([b"/api/v1/categories/", b"/api/v1/users/", b"/api/v1/cart/items/", b"/api/v1/",
                               b"/", b"/mcp/", b"/v1/", b"/api/v1/products/"]),
       raw=octets, how=url_encoding, method=st.sampled_from(["GET", "POST", "DELETE"]),
       who=st.sampled_from(["jwt", "none"]))
def test_path_bytes(sink, prefix, raw, how, method, who):
    policy, token = sink
    send(policy, method, prefix + in_url(raw, how), credentials(token, who))


@FUZZ
@given(path=st.sampled_from(API_PATHS + [b"/", b"/mcp"]),
       pairs=st.lists(st.tuples(st.one_of(st.sampled_from(QUERY_NAMES), octets), octets, url_encoding), max_size=4))
def test_query_bytes(sink, path, pairs):
    policy, token = sink
    query = b"&".join(in_url(name, how) + b"=" + in_url(value, how) for name, value, how in pairs)
    send(policy, "GET", path + b"?" + query, [("authorization", f"Bearer {token}")])


HEADER_NAMES = ["user-agent", "authorization", "content-type", "x-scan", "idempotency-key", "x-partner-key",
                "x-access-client-id", "x-access-client-secret", "x-request-id", "sec-ch-ua", "sec-ch-ua-platform",
                "accept-language", "referer", "x-forwarded-for", "mcp-session-id", "mcp-method", "mcp-name",
                "x-extproc-user-email", "accept", "origin", "content-encoding", "x-forwarded-client-cert"]
# Header names reach us as a protobuf string (valid UTF-8): Envoy only passes tokens, but a name
# is still read by rules (headers map, CEL) and written to records.
header_name = st.one_of(st.sampled_from(HEADER_NAMES), st.text(min_size=1, max_size=12).map(str.lower))


@FUZZ
@given(path=st.sampled_from(API_PATHS + [b"/mcp", b"/v1/chat/completions", b"/"]),
       headers=st.lists(st.tuples(header_name, octets), min_size=1, max_size=5),
       who=st.sampled_from(["jwt", "robot", "none"]))
def test_header_bytes(sink, path, headers, who):
    policy, token = sink
    send(policy, "GET", path, [*credentials(token, who), *headers])


@FUZZ
@given(token_at=st.integers(0, 2000), raw=octets, replace=st.booleans(), where=st.sampled_from(["jwt", "secret", "id"]))
def test_credential_bytes(sink, token_at, raw, replace, where):
    """A valid token or service-token secret with bytes put in (or over) it: a 401, never a fault."""
    policy, token = sink
    if where == "jwt":
        original = f"Bearer {token}".encode()
        name = "authorization"
    else:
        original = (SECRET if where == "secret" else "robot.access").encode()
        name = f"x-access-client-{where}"
    at = token_at % (len(original) + 1)
    value = original[:at] + raw + original[at + (len(raw) if replace else 0):]
    other = [] if where == "jwt" else [pair for pair in credentials(token, "robot") if pair[0] != name]
    decision = send(policy, "GET", b"/mcp", [*other, (name, value)])
    if not raw.isascii():  # no JWT, client id or secret has such a byte: refused, whatever it was
        assert (decision.allowed, decision.status) == (False, 401), decision.reasons


@FUZZ
@given(path=st.sampled_from(API_PATHS + [b"/mcp", b"/"]),
       cookies=st.lists(st.tuples(octets, octets), min_size=1, max_size=5),
       separator=st.sampled_from([b"; ", b";", b",", b"\n"]))
def test_cookie_bytes(sink, path, cookies, separator):
    policy, token = sink
    header = separator.join(name + b"=" + value for name, value in cookies)
    send(policy, "GET", path, [("authorization", f"Bearer {token}"), ("cookie", header)])


@FUZZ
@given(path=st.sampled_from([b"/api/v1/auth/login", b"/upload", b"/mcp", b"/api/v1/products"]),
       fields=st.lists(st.tuples(st.one_of(st.sampled_from([b"username", b"password", b"q"]), octets), octets,
                                 url_encoding), max_size=5),
       charset=st.one_of(st.sampled_from(CHARSETS), octets.map(lambda raw: b"; charset=" + raw)))
def test_form_bytes(sink, path, fields, charset):
    policy, token = sink
    body = b"&".join(in_url(name, how) + b"=" + in_url(value, how) for name, value, how in fields)
    headers = [("authorization", f"Bearer {token}"), ("content-type", b"application/x-www-form-urlencoded" + charset)]
    send(policy, "POST", path, headers, body or None)


def json_bodies(path: bytes, keys: list[bytes], values: list[bytes], how: str) -> bytes:
    """A JSON body of the shape the path's layer reads, with the fuzzed strings where it looks."""
    members = b", ".join(json_string(k, how) + b": " + json_string(v, how) for k, v in zip(keys, values))
    first = json_string(values[0] if values else b"", how)
    if path == b"/mcp":
        return (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": ' + first
                + b', "arguments": {' + members + b"}}}")
    if path.startswith(b"/v1/"):
        return b'{"model": "gpt-4o", "messages": [{"role": "user", "content": ' + first + b"}], " \
            b'"metadata": {' + members + b"}}"
    if path == b"/api/v1/products/7/reviews":
        return b'{"rating": 5, "text": ' + first + b", " + members + b"}" if members else \
            b'{"rating": 5, "text": ' + first + b"}"
    return b"{" + members + b"}"


@FUZZ
@given(path=st.sampled_from([b"/api/v1/products/7/reviews", b"/api/v1/auth/login", b"/api/v1/users/me", b"/mcp",
                             b"/v1/chat/completions", b"/v1/responses", b"/upload"]),
       keys=st.lists(octets, max_size=4), values=st.lists(octets, min_size=1, max_size=4), how=json_encoding,
       content_type=st.sampled_from([b"application/json", b"application/json; charset=utf-8",
                                     b"application/merge-patch+json", b"application/x-www-form-urlencoded"]))
def test_json_bytes(sink, path, keys, values, how, content_type):
    policy, token = sink
    body = json_bodies(path, keys, values, how)
    method = "PATCH" if path == b"/api/v1/users/me" else "POST"
    send(policy, method, path, [("authorization", f"Bearer {token}"), ("content-type", content_type)], body)


def multipart_body(parts: list[tuple[bytes, bytes | None, bytes, bytes]], boundary: bytes = b"fuzz",
                   transfer: bytes = b"") -> bytes:
    out = b""
    for name, filename, content_type, data in parts:
        disposition = b'form-data; name="' + name + b'"'
        if filename is not None:
            disposition += b'; filename="' + filename + b'"'
        out += b"--" + boundary + b"\r\nContent-Disposition: " + disposition + b"\r\n"
        if content_type:
            out += b"Content-Type: " + content_type + b"\r\n"
        if transfer:
            out += b"Content-Transfer-Encoding: " + transfer + b"\r\n"
        out += b"\r\n" + data + b"\r\n"
    return out + b"--" + boundary + b"--\r\n"


@FUZZ
@given(path=st.sampled_from([b"/api/v1/uploads/avatar", b"/upload", b"/mcp"]),
       parts=st.lists(st.tuples(octets, st.none() | octets, st.sampled_from([b"", b"text/plain", b"image/png"]) | short,
                                octets), min_size=1, max_size=4),
       transfer=st.sampled_from([b"", b"base64", b"quoted-printable"]) | short)
def test_multipart_bytes(sink, path, parts, transfer):
    policy, token = sink
    headers = [("authorization", f"Bearer {token}"), ("content-type", b"multipart/form-data; boundary=fuzz")]
    send(policy, "POST", path, headers, multipart_body(parts, transfer=transfer))


CODERS = {"gzip": gzip.compress, "deflate": zlib.compress, "br": brotli.compress,
          "zstd": lambda data: zstandard.ZstdCompressor().compress(data)}


@FUZZ
@given(path=st.sampled_from([b"/api/v1/auth/login", b"/upload", b"/mcp", b"/v1/chat/completions"]),
       value=octets, coding=st.sampled_from(sorted(CODERS)) | octets, compressed=st.booleans(),
       shape=st.sampled_from(["form", "json", "text"]))
def test_encoded_body_bytes(sink, path, value, coding, compressed, shape):
    """A body with a content coding (real, claimed but absent, or bytes), around fuzzed text."""
    policy, token = sink
    body, content_type = {"form": (b"username=" + value, b"application/x-www-form-urlencoded"),
                          "json": (json_bodies(path, [b"k"], [value], "escaped"), b"application/json"),
                          "text": (value or b"x", b"text/plain; charset=" + value[:8])}[shape]
    if compressed and isinstance(coding, str):
        body = CODERS[coding](body)
    coding = coding.encode() if isinstance(coding, str) else coding
    headers = [("authorization", f"Bearer {token}"), ("content-type", content_type), ("content-encoding", coding)]
    send(policy, "POST", path, headers, body)


# -- everything at once ---------------------------------------------------------------------


@FUZZ
@given(path=st.sampled_from(API_PATHS + [b"/mcp", b"/v1/chat/completions", b"/upload", b"/"]), segment=octets,
       query=st.lists(st.tuples(octets, octets), max_size=3),
       headers=st.lists(st.tuples(header_name, octets), max_size=3),
       cookie=octets, body_kind=st.sampled_from(["none", "form", "json", "multipart"]), name=octets, value=octets,
       how=url_encoding, who=st.sampled_from(["jwt", "robot", "none"]))
def test_every_field_at_once(sink, path, segment, query, headers, cookie, body_kind, name, value, how, who):
    policy, token = sink
    full = path + in_url(segment, how)[:64] + b"?" + b"&".join(in_url(n, how) + b"=" + in_url(v, how) for n, v in query)
    pairs = [*credentials(token, who), *headers, ("cookie", b"s=" + cookie)]
    body = None
    if body_kind == "form":
        pairs.append(("content-type", b"application/x-www-form-urlencoded"))
        body = in_url(name, how) + b"=" + in_url(value, how)
    elif body_kind == "json":
        pairs.append(JSON)
        body = json_bodies(path, [name], [value], "escaped")
    elif body_kind == "multipart":
        pairs.append(("content-type", b"multipart/form-data; boundary=fuzz"))
        body = multipart_body([(name, value, b"", value)])
    send(policy, "POST" if body else "GET", full, pairs, body)


# -- what the layers decide about text that is not UTF-8 ------------------------------------


@pytest.mark.parametrize("path, allowed", [
    (b"/api/v1/search?q=Jam%F3n", True),  # a Latin-1 form: 'Jamón' to the application
    (b"/api/v1/search?q=Jam\xf3n", True),  # the same byte unescaped
    (b"/api/v1/search?q=" + b"Jam%F3n" * 40, True),  # maxLength 200: one character per byte, as the app counts
    (b"/api/v1/search?q=" + b"Jam%F3n" * 40 + b"%F3", False),
    (b"/api/v1/products?sort=pr%EDce", False),  # enum: not one of the values
    (b"/api/v1/categories/caf%E9", False),  # pattern ^[a-z0-9-]+$: 'café' is not a slug
    (b"/api/v1/categories/caf\xe9", False),
])
def test_latin1_parameters_are_judged_as_the_application_reads_them(sink, path, allowed):
    """API Shield's decision on a parameter whose bytes are not UTF-8: the Latin-1 text a legacy
    application reads, judged by the schema like any other value (extproc/core/text.py)."""
    policy, _ = sink
    decision = send(policy, "GET", path, [])
    (shield,) = [r.verdict for r in decision.results if r.verdict.layer == "api_shield"]
    assert decision.allowed is allowed and (shield.action is Action.ALLOW) is allowed, decision.reasons
    if not allowed:
        assert decision.denied_by == "api_shield" and any("invalid_param" in r for r in shield.reasons)
