"""Attack layer front end: normalisation, value extraction, n-gram features (no model needed)."""
from __future__ import annotations

import numpy as np
import pytest

from extproc.attack import normalize as norm
from extproc_lab.attack.dataset import record_values
from extproc.attack.extract import ExtractSettings, extract
from extproc.attack.features import FeatureSpec, Scratch, featurize, frame
from extproc_lab.attack.placement import PLACEMENTS, attack_records
from extproc.core.request import InspectionLimits, Request


@pytest.mark.parametrize(
    ("raw", "expected", "flags"),
    [
        ("hello   World", "hello world", 0),
        ("%252e%252e%252fetc%252fpasswd", "../etc/passwd", norm.URL_DECODED | norm.URL_DECODED_TWICE),
        ("..%c0%af..%c0%afetc/passwd", "../../etc/passwd", norm.URL_DECODED | norm.OVERLONG_UTF8),
        ("%u003cimg src=x%u003e", "<img src=x>", norm.URL_DECODED),
        ("%f0%80%80%af..%fc%80%80%80%80%ae", "/...", norm.OVERLONG_UTF8),  # 4- and 6-byte overlong
        ("\udcc0\udcae\udcc0\udcae/etc", "../etc", norm.OVERLONG_UTF8),  # already %-decoded once
        ("..\u2215..\u2215etc", "../../etc", norm.NON_ASCII),  # division slash look-alike
        ("&lt;script&gt;alert(1)&lt;/script&gt;", "<script>alert(1)</script>", norm.HTML_ENTITIES),
        ("&amp;lt;svg&amp;gt;", "<svg>", norm.HTML_ENTITIES),  # double-encoded entities
        ("\\x3cscript\\u003e\\u{61}", "<script>a", norm.BACKSLASH_ESCAPES),
        ("＜ＳＣＲＩＰＴ＞", "<script>", norm.NON_ASCII),  # fullwidth forms fold to ASCII
        ("UNION/**/SELECT/*!50000password*/", "union select password", norm.SQL_COMMENTS),
        ("1%0aOR%091=1", "1\x01or 1=1", norm.URL_DECODED),  # a line break stays visible
        ("x%0d%0aSet-Cookie: a=b", "x\x01set-cookie: a=b", norm.URL_DECODED),
        ("' or count(/*)=1 or '", "' or count(/*)=1 or '", 0),  # XPath, not a SQL comment
        ("a\u200bb\u00a0c", "a b c", norm.NON_ASCII),  # zero-width and no-break spaces
        (" \ta\x0b\x0c\x1c\x1f b \x01 ", "a b \x01", 0),  # ASCII whitespace (the fast path) folds as SPACES does
        ("\u3000a\u2028 b\u00a0", "a b", norm.NON_ASCII),  # non-ASCII whitespace (the regex path)
    ],
)
def test_normalize_undoes_evasions(raw, expected, flags):
    text, got_flags = norm.normalize(raw)
    assert text == expected
    assert got_flags & flags == flags


def test_normalize_is_bounded_and_total():
    deep = "%" + "25" * 50 + "41"  # 50 layers of percent-encoding: decoding stops after 3 rounds
    text, _ = norm.normalize(deep)
    assert text.startswith("%")
    for hostile in ("\udcff\udcfe", "%", "%zz", "&#xffffffff;", "\\u{110000}", "\x00" * 10, "é" * 10_000,
                    "\\ud800\\udc00", "%uD800", "\ud800 lone"):
        frame(*norm.normalize(hostile), "query:q")  # never raises


def test_extract_covers_every_part_and_skips_safe_values():
    request = Request(
        "POST", "/api/items/%3Cb%3E?q=drop+table&id=42",
        headers=(("user-agent", "curl/8 (x)"), ("cookie", "sid=abc; note=a b"), ("accept", "*/*"),
                 ("x-custom", "1 or 1"), ("content-type", "application/json")),
        has_body=True,
    )
    request.attach_body(b'{"comment": "hi there!", "n": 5, "key with space": "v"}')
    got = extract(request, ExtractSettings())
    pairs = list(zip(got.locations, got.texts))
    assert ("path", "/api/items/<b>") in pairs
    assert ("query:q", "drop table") in pairs
    assert ("header:user-agent", "curl/8 (x)") in pairs
    assert ("header:x-custom", "1 or 1") in pairs
    assert ("cookie:note", "a b") in pairs
    assert ("json", "hi there!") in pairs and ("json", "key with space") in pairs
    assert not any(text in ("42", "abc", "*/*", "comment") for text in got.texts)  # safe or structural


def test_extract_exclusions_and_parts():
    request = Request("GET", "/?token=a+b&q=c+d", headers=(("user-agent", "x y"),))
    settings = ExtractSettings(parts=frozenset({"query"}), exclude_args=frozenset({"token"}))
    assert extract(request, settings).texts == ["c d"]


def test_extract_limits_are_reported_not_silent():
    request = Request("GET", "/?" + "&".join(f"a{i}=x+{i}" for i in range(50)))
    got = extract(request, ExtractSettings(max_values=10))
    assert len(got.texts) == 10 and "attack_values_truncated" in got.notes
    long_value = Request("POST", "/", headers=(("content-type", "text/plain"),), has_body=True)
    long_value.attach_body(b"word " * 5000)
    got = extract(long_value, ExtractSettings(max_value_chars=1000, max_scan_chars=8000))
    assert all(len(text) <= 1000 for text in got.texts)
    assert "attack_scan_truncated" in got.notes


def test_extract_windows_overlap_so_a_payload_on_a_boundary_is_seen_whole():
    request = Request("POST", "/", headers=(("content-type", "text/plain"),), has_body=True)
    payload = "<script>alert(1)</script>"
    request.attach_body(("a " * 250 + payload + " b" * 250).encode())
    texts = extract(request, ExtractSettings(max_value_chars=512)).texts
    assert any(payload in text for text in texts)


def test_binary_bodies_are_noted_not_scored():
    request = Request("POST", "/upload", headers=(("content-type", "image/png"),), has_body=True,
                      limits=InspectionLimits())
    request.attach_body(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    got = extract(request, ExtractSettings())
    assert "attack_body_not_inspected" in got.notes
    assert got.locations == ["path"]


def test_feature_hashing_is_stable():
    # Golden values: a change here silently invalidates every trained model (bump the spec version).
    batch = featurize([frame("' or 1=1--", 0, "query:q")], FeatureSpec())
    assert batch.ids.shape == (5, 14)  # START, flags, location, 10 characters, END
    assert batch.ids[:, :3].tolist() == [[24558, 14134, 4839], [3076, 29590, 14247], [4247, 7313, 19582],
                                         [14708, 27033, 8346], [10571, 28786, 22627]]


def _bucket(gram: bytes, spec: FeatureSpec) -> int:
    """The hash's definition, one n-gram at a time: what the vectorised featurize must match."""
    from extproc.attack.features import MULTIPLIER, ORDER_SALTS

    h = 0
    for byte in gram:
        h = (h * int(MULTIPLIER) + byte) % 2**32
    return ((((h ^ int(ORDER_SALTS[len(gram)])) * int(ORDER_SALTS[0])) % 2**32) >> (32 - spec.bits)) + 1


@pytest.mark.parametrize("orders", [(1, 2, 3, 4, 5), (2, 4), (3, 7)])
def test_vectorised_hashing_matches_the_definition(orders):
    spec = FeatureSpec(orders=orders)
    values = [frame(text, 0) for text in ("", "a", "' or 1=1--", "é\udcff" * 3, "x" * 3000, "ab")]
    batch = featurize(values, spec, Scratch())
    for value, start, end in zip(values, batch.starts, batch.ends, strict=True):
        for row, k in enumerate(orders):
            expected = [_bucket(value[i:i + k], spec) if i + k <= len(value) else 0 for i in range(len(value))]
            assert batch.ids[row, start:end].tolist() == expected
        assert (batch.ids[:, end:end + 1] == 0).all()  # the separator


def test_ngrams_never_span_two_values():
    spec = FeatureSpec()
    together = featurize([frame("abc", 0), frame("xyz", 0)], spec)
    alone = [featurize([frame(text, 0)], spec) for text in ("abc", "xyz")]
    first, second = together.ids[:, : together.ends[0]], together.ids[:, together.starts[1]:]
    assert (first == alone[0].ids).all() and (second == alone[1].ids).all()
    assert (together.ids[:, together.ends[0]] == 0).all()  # the separator position


def test_location_kinds():
    from extproc.attack.features import location_kind

    kinds = {loc: location_kind(loc) for loc in ("path", "query:q", "query-name", "cookie-name", "json",
                                                  "multipart-filename:f", "header:referer", "body", "form:x")}
    assert kinds == {"path": b"p", "query:q": b"q", "query-name": b"n", "cookie-name": b"n", "json": b"j",
                     "multipart-filename:f": b"m", "header:referer": b"h", "body": b"b", "form:x": b"f"}


def test_scratch_reuse_gives_the_same_ids():
    spec, scratch = FeatureSpec(), Scratch()
    values = [frame(f"value number {i} with text", 0) for i in range(100)]
    fresh = featurize(values, spec).ids.copy()
    featurize([frame("other", 0)], spec, scratch)  # a smaller call first: views must shrink
    assert np.array_equal(featurize(values, spec, scratch).ids, fresh)


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_payloads_are_found_wherever_they_are_placed(placement):
    payloads = [("' union select password from users--", "sqli"), ("<svg onload=alert(1)>", "xss"),
                ("../../../../etc/passwd", "lfi"), ("; cat /etc/shadow", "rce")]
    records = [r for r in attack_records(payloads * 40, seed=3) if r["expect"]["placement"] == placement]
    assert records
    for record in records:
        assert record_values(record).payload_found, record["request"]


@pytest.mark.parametrize("raw", ["%f8%87%bf%bf%bf", "%fc%83%bf%bf%bf%bf", "%f0%8d%a0%80"])
def test_overlong_forms_beyond_unicode_or_of_surrogates_fold_to_a_replacement(raw):
    # Five- and six-byte overlong forms can encode numbers no character has (EBCDIC bodies
    # decoded as Latin-1 produce them): they become U+FFFD instead of an exception.
    from extproc.attack.normalize import normalize

    text, _flags = normalize(raw)
    assert "\ufffd" in text


def test_a_referer_url_that_urlsplit_refuses_still_gives_its_query_arguments():
    # A bracketed host that is no address made urllib raise ValueError (found in fuzzdb's records).
    request = Request("GET", "/", headers=(("referer", "http://['a'+'lert']/x?q=<script>alert(1)</script>"),))
    extracted = extract(request, ExtractSettings())
    assert "<script>alert(1)</script>" in extracted.texts
