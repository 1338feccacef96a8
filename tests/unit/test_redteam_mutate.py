"""Payload mutations: each one changes the payload, and the change is the one its name says;
what the attack layer makes of some of them."""
from __future__ import annotations

import base64
import gzip
import html
import json
import re
import unicodedata
import zlib
from urllib.parse import parse_qs, unquote, urlsplit

import brotli
import pytest

from extproc.config.compile import parse_policy
from extproc_lab.redteam import mutate
from extproc_lab.redteam.replay import InProcess

SQLI = "' OR 1=1 UNION SELECT password FROM users--"
XSS = "<svg onload=alert(document.cookie)>"


def _u_escapes(text: str) -> str:
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m[1], 16)), text)


def _iis(text: str) -> str:
    return re.sub(r"%u([0-9A-F]{4})", lambda m: chr(int(m[1], 16)), text)


def _overlong(text: str) -> str:
    return re.sub(r"%([CD][0-9A-F])%([89AB][0-9A-F])",
                  lambda m: chr((int(m[1], 16) & 0x1F) << 6 | int(m[2], 16) & 0x3F), text)


# name -> (the value the app reads, after undoing the mutation) == the payload
VALUE_CHECKS = {
    "url-encode": lambda m: unquote(m),
    "double-url-encode": lambda m: unquote(unquote(m)) if unquote(m) != m else None,
    "iis-unicode": _iis,
    "overlong-utf8": _overlong,
    "html-entities": lambda m: html.unescape(m) if "&#" in m and "&#x" not in m else None,
    "hex-entities": lambda m: html.unescape(m) if "&#x" in m else None,
    "unicode-escape": _u_escapes,
    "fullwidth": lambda m: unicodedata.normalize("NFKC", m),
    "upper-case": lambda m: m.lower() if m == m.upper() else None,
    "alternating-case": lambda m: m.lower(),
    "sql-comment-spaces": lambda m: m.replace("/**/", " ") if " " not in m else None,
    "versioned-comments": lambda m: re.sub(r"/\*!50000(.*?)\*/", r"\1", m),
    "tab-spaces": lambda m: m.replace("\t", " ") if " " not in m else None,
    "newline-spaces": lambda m: m.replace("\n", " ") if " " not in m else None,
    "vertical-tab-spaces": lambda m: m.replace("\x0b", " ") if " " not in m else None,
    "null-prefix": lambda m: m[1:] if m[0] == "\x00" else None,
    "base64": lambda m: base64.b64decode(m, validate=True).decode(),
    "base64-urlsafe": lambda m: _unbase64_url(m),
    "base64-twice": lambda m: base64.b64decode(base64.b64decode(m, validate=True), validate=True).decode(),
    "hex": lambda m: bytes.fromhex(m).decode(),
}


def _unbase64_url(text: str) -> str:
    assert "=" not in text and "+" not in text and "/" not in text
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()


def _query_value(spec: dict) -> list[str]:
    return parse_qs(spec["query"], keep_blank_values=True)[mutate.PARAM]


def _header(spec: dict, name: str) -> str:
    return next(v for k, v in spec["headers"] if k == name)


def _multipart_value(spec: dict, filename: bool) -> str:
    body = spec["body"]
    if filename:
        return re.search(r'filename="(.*)"\r\n', body)[1]
    return re.search(r'name="q"\r\n\r\n(.*)\r\n--', body, re.S)[1]


# name -> what the request carries, read back the way the app would read it
CARRIER_CHECKS = {
    "none": lambda s: _query_value(s)[0],
    "hpp-split": lambda s: "".join(_query_value(s)) if len(_query_value(s)) == 2 else None,
    "hpp-last": lambda s: _query_value(s)[1] if _query_value(s)[0] == mutate.DECOY else None,
    "form": lambda s: parse_qs(s["body"])[mutate.PARAM][0],
    "cookie": lambda s: unquote(_header(s, "cookie").split(f"{mutate.PARAM}=")[1]),
    "header": lambda s: _header(s, "x-client-note"),
    "path": lambda s: unquote(s["path"].rsplit("/", 1)[1]) if "/" not in s["path"][len(mutate.PATH) + 1:] else None,
    "json-nested": lambda s: json.loads(s["body"])["data"]["attributes"][mutate.PARAM],
    "json-unicode-escaped": lambda s: json.loads(s["body"])[mutate.PARAM] if "OR" not in s["body"] else None,
    "multipart-field": lambda s: _multipart_value(s, filename=False),
    "multipart-filename": lambda s: _multipart_value(s, filename=True),
    "form-as-text-plain": lambda s: parse_qs(s["body"])[mutate.PARAM][0]
    if _header(s, "content-type") == "text/plain" else None,
    "json-declared-as-form": lambda s: json.loads(s["body"])[mutate.PARAM]
    if _header(s, "content-type") == "application/x-www-form-urlencoded" else None,
    "charset-ibm037": lambda s: parse_qs(base64.b64decode(s["body_b64"]).decode("cp037"))[mutate.PARAM][0]
    if "ibm037" in _header(s, "content-type") else None,
    "chunked": lambda s: parse_qs(s["body"])[mutate.PARAM][0] if s["chunk_size"] == mutate.CHUNK_SIZE else None,
    "json-gzip": lambda s: _compressed_json(s, "gzip", gzip.decompress),
    "json-deflate": lambda s: _compressed_json(s, "deflate", zlib.decompress),
    "json-br": lambda s: _compressed_json(s, "br", brotli.decompress),
    "json-as-text-json": lambda s: _labelled_json(s, "text/json"),
    "json-as-x-json": lambda s: _labelled_json(s, "application/x-json"),
    "json-as-octet-stream": lambda s: _labelled_json(s, "application/octet-stream"),
    "json-as-text-csv": lambda s: _labelled_json(s, "text/csv"),
    "ndjson": lambda s: json.loads(s["body"].splitlines()[1])[mutate.PARAM],
    "padding-300": lambda s: _query_value(s)[0] if s["query"].count("&") == 300 else None,
    "padding-5000": lambda s: _query_value(s)[0] if s["query"].count("&") == 5000 else None,
    "referer-query": lambda s: parse_qs(urlsplit(_header(s, "referer")).query)[mutate.PARAM][0],
    "protocol-header": lambda s: _header(s, "accept-language"),
    "path-parameter": lambda s: unquote(s["path"].split(f";{mutate.PARAM}=")[1]),
    "multipart-base64": lambda s: base64.b64decode(re.search(r"base64\r\n\r\n(.*?)\r\n--", s["body"])[1]).decode(),
    # the application's own decoding of a value it received (a token, a file id)
    "base64-form": lambda s: base64.b64decode(parse_qs(s["body"])[mutate.PARAM][0], validate=True).decode(),
    "base64-multipart": lambda s: base64.b64decode(_multipart_value(s, filename=False), validate=True).decode(),
    "base64-path": lambda s: _unbase64_url(s["path"].rsplit("/", 1)[1]),
    # JSON bodies, read back as the lenient parser the mutation names reads them
    "json-bom": lambda s: json.loads(_body(s))[mutate.PARAM] if _body(s).startswith(b"\xef\xbb\xbf") else None,
    "json-first-of-two": lambda s: _first_document(s, b'{"q": "shoes"}'),
    "json-trailing-garbage": lambda s: _first_document(s, b"//"),
    "json-duplicate-first": lambda s: json.loads(_body(s), object_pairs_hook=lambda pairs: pairs[0][1])
    if json.loads(_body(s))[mutate.PARAM] == mutate.DECOY else None,
    "json-utf16": lambda s: json.loads(_body(s))[mutate.PARAM] if _body(s)[:2] == b"\xff\xfe" else None,
}


def _compressed_json(spec: dict, coding: str, decompress) -> str | None:
    if _header(spec, "content-encoding") != coding:
        return None
    return json.loads(decompress(base64.b64decode(spec["body_b64"])))[mutate.PARAM]


def _labelled_json(spec: dict, content_type: str) -> str | None:
    return json.loads(spec["body"])[mutate.PARAM] if _header(spec, "content-type") == content_type else None


def _body(spec: dict) -> bytes:
    return base64.b64decode(spec["body_b64"])


def _first_document(spec: dict, rest: bytes) -> str | None:
    """The first document's value, as Go's json.Decoder reads it, when `rest` follows it."""
    text = _body(spec).decode()
    document, end = json.JSONDecoder().raw_decode(text)
    return document[mutate.PARAM] if text[end:].strip().encode() == rest else None


def test_every_mutation_has_a_check_of_what_its_name_says():
    assert set(VALUE_CHECKS) | set(CARRIER_CHECKS) == set(mutate.BY_NAME)


@pytest.mark.parametrize("name", sorted(VALUE_CHECKS))
def test_a_value_mutation_changes_the_value_and_is_undone_by_what_it_claims(name):
    mutation = mutate.BY_NAME[name]
    for payload in (SQLI, XSS):
        changed = mutation.value(payload)
        if changed is None:  # not applicable: versioned comments on a payload without SQL words
            assert name == "versioned-comments" and payload == XSS
            continue
        assert changed != payload
        undone = VALUE_CHECKS[name](changed)
        expected = payload.lower() if name in ("upper-case", "alternating-case") else payload
        assert undone == expected, (name, changed)
        assert _query_value(mutate.mutated_request(payload, mutation)) == [changed]


@pytest.mark.parametrize("name", sorted(CARRIER_CHECKS))
def test_a_carrier_keeps_the_value_and_carries_it_as_its_name_says(name):
    for payload in (SQLI, XSS):
        spec = mutate.mutated_request(payload, mutate.BY_NAME[name])
        assert CARRIER_CHECKS[name](spec) == payload, (name, spec)


def test_a_mutation_that_does_not_apply_is_left_out():
    assert mutate.BY_NAME["sql-comment-spaces"].value("<script>alert(1)</script>") is None
    assert mutate.BY_NAME["url-encode"].value("plainword") is None


def test_records_are_deterministic_named_and_cover_every_base_with_the_reference():
    first = list(mutate.mutation_records(("sqli", "xss"), 3, seed=7))
    assert first == list(mutate.mutation_records(("sqli", "xss"), 3, seed=7))
    assert len({r["id"] for r in first}) == len(first)
    bases = {r["base"] for r in first}
    assert len(bases) == 6
    assert {r["base"] for r in first if r["mutation"] == "none"} == bases
    assert all(r["label"] == "attack" and r["mutation_class"] == mutate.BY_NAME[r["mutation"]].cls for r in first)


def test_base_payloads_are_plain():
    for value in mutate.base_payloads("xss", 10, seed=3):
        assert "%" not in value or not re.search(r"%[0-9a-fA-F]{2}", value)
        assert "\n" not in value


@pytest.fixture(scope="module")
def attack_only():
    return InProcess(parse_policy("version: 1\ndefaults:\n  layers:\n    attack: {}\n"))


@pytest.mark.parametrize("name", ["none", "url-encode", "double-url-encode", "html-entities", "fullwidth",
                                  "unicode-escape", "sql-comment-spaces", "versioned-comments", "hpp-last",
                                  "json-unicode-escaped", "multipart-filename"])
def test_the_attack_layer_sees_through_these_mutations_of_a_sqli(attack_only, name):
    outcome = attack_only.send({"id": name, "label": "attack", "request":
                                mutate.mutated_request(SQLI, mutate.BY_NAME[name])})
    assert outcome.result == "blocked" and outcome.layer == "attack", outcome


@pytest.mark.parametrize("name", ["json-gzip", "json-deflate", "json-br", "json-as-text-json", "json-as-x-json",
                                  "json-as-octet-stream", "json-as-text-csv", "ndjson", "padding-300",
                                  "referer-query", "protocol-header", "path-parameter", "multipart-base64",
                                  "json-trailing-garbage", "json-utf16", "json-first-of-two"])
def test_the_outside_tests_bypass_classes_are_closed(attack_only, name):
    # Each carried the same SQL injection past the sidecar before (scored 94: never read).
    outcome = attack_only.send({"id": name, "label": "attack", "request":
                                mutate.mutated_request(SQLI, mutate.BY_NAME[name])})
    assert outcome.result == "blocked" and outcome.layer == "attack", outcome


@pytest.mark.parametrize("name", [m.name for m in mutate.APPLICATION_ENCODINGS])
def test_payloads_the_application_decodes_are_decoded_and_stopped(attack_only, name):
    """Issue 21: base64 and hex of a payload were caught 3% of the time; stopped as the plain one is."""
    for payload in (SQLI, XSS):
        outcome = attack_only.send({"id": name, "label": "attack", "request":
                                    mutate.mutated_request(payload, mutate.BY_NAME[name])})
        assert outcome.result == "blocked" and outcome.layer == "attack", outcome


def test_arguments_past_the_limit_are_refused_not_half_read(attack_only):
    outcome = attack_only.send({"id": "padding", "label": "attack", "request":
                                mutate.mutated_request(SQLI, mutate.BY_NAME["padding-5000"])})
    assert outcome.result == "blocked" and outcome.layer == "inspection", outcome


def test_an_ebcdic_body_is_read_as_the_application_would(attack_only):
    """charset=ibm037: IIS/ASP.NET decode the form as EBCDIC, so the sidecar scores that reading too."""
    outcome = attack_only.send({"id": "ebcdic", "label": "attack", "request":
                                mutate.mutated_request(SQLI, mutate.BY_NAME["charset-ibm037"])})
    assert outcome.result == "blocked" and outcome.layer == "attack", outcome