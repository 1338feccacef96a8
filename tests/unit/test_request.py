"""Request parsing: what every layer sees of a request, and the notes the inspection limits leave."""
from __future__ import annotations

import json

import pytest

from extproc.core.request import Arg, InspectionLimits, Part, Request

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
BOUNDARY = "XyZ"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def make(
    path: str = "/",
    *,
    method: str = "GET",
    authority: str = "",
    headers: tuple[tuple[str, str], ...] = (),
    content_type: str | None = None,
    body: bytes | None = None,
    **limits,
) -> Request:
    if content_type is not None:
        headers = (*headers, ("content-type", content_type))
    request = Request(method, path, authority=authority, headers=headers, limits=InspectionLimits(**limits))
    if body is not None:
        request.attach_body(body)
    return request


def pairs(args) -> list[tuple[str, str]]:
    return [(arg.name, arg.value) for arg in args]


def multipart_body(*parts: tuple[str, str | None, bytes], boundary: str = BOUNDARY) -> bytes:
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


# -- host and URL -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authority", "host"),
    [
        ("example.com", "example.com"),
        ("Example.COM:8080", "example.com"),
        ("example.com:", "example.com"),
        ("10.0.0.1:443", "10.0.0.1"),
        ("[::1]:8080", "[::1]"),
        ("[::1]", "[::1]"),
        ("[2001:DB8::1]:443", "[2001:db8::1]"),
        ("2001:db8::1", "2001:db8::1"),  # bare IPv6 (no brackets): no port to strip
        ("", ""),
    ],
)
def test_host_is_authority_without_port_lower_case(authority, host):
    assert make(authority=authority).host == host


@pytest.mark.parametrize(
    ("path", "url_path", "query", "decoded"),
    [
        ("/", "/", "", "/"),
        ("/a/b?x=1&y=2", "/a/b", "x=1&y=2", "/a/b"),
        ("/a?", "/a", "", "/a"),
        ("/a?x=1?y=2", "/a", "x=1?y=2", "/a"),  # only the first '?' splits
        ("/%2e%67it/config", "/%2e%67it/config", "", "/.git/config"),
        ("/a%2Fb", "/a%2Fb", "", "/a/b"),
        ("/a+b%20c", "/a+b%20c", "", "/a+b c"),  # '+' is literal in a path
        ("/x%zz", "/x%zz", "", "/x%zz"),  # invalid escape stays as sent
        ("/x%ff", "/x%ff", "", "/x\udcff"),  # invalid UTF-8: lossless, visible
    ],
)
def test_url_path_query_split_and_decoded_path(path, url_path, query, decoded):
    request = make(path)
    assert (request.url_path, request.query, request.decoded_path) == (url_path, query, decoded)


def test_invalid_utf8_in_path_round_trips_through_surrogateescape():
    decoded = make("/x%ff%fe").decoded_path
    assert decoded.encode("utf-8", "surrogateescape") == b"/x\xff\xfe"


# -- query arguments ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", []),
        ("a=1", [("a", "1")]),
        ("a=1&a=2", [("a", "1"), ("a", "2")]),  # repeated names all kept, in order
        ("a=&b", [("a", ""), ("b", "")]),  # blank values
        ("=v", [("", "v")]),
        ("q=hello+world", [("q", "hello world")]),  # '+' is a space in a query
        ("q=a%2Bb", [("q", "a+b")]),
        ("x=%41%42&%6eame=v", [("x", "AB"), ("name", "v")]),
        ("x=a%26b%3Dc", [("x", "a&b=c")]),  # encoded separators stay in the value
        ("x=1=2", [("x", "1=2")]),
        ("a=1&&b=2&", [("a", "1"), ("b", "2")]),  # empty items skipped
        ("bad=%zz&%g=1", [("bad", "%zz"), ("%g", "1")]),  # invalid escapes kept as sent
        ("u=%ff", [("u", "\udcff")]),  # invalid UTF-8 lossless
    ],
)
def test_query_args(query, expected):
    request = make(f"/p?{query}")
    assert pairs(request.query_args) == expected
    assert all(arg.source == "query" for arg in request.query_args)
    assert request.notes == set()


def test_query_invalid_utf8_round_trips():
    (arg,) = make("/?n%ff=%c3%28").query_args
    assert arg.name.encode("utf-8", "surrogateescape") == b"n\xff"
    assert arg.value.encode("utf-8", "surrogateescape") == b"\xc3("


def test_query_args_within_limit_are_not_noted():
    request = make("/?a=1&b=2&c=3", max_args=3)
    assert pairs(request.query_args) == [("a", "1"), ("b", "2"), ("c", "3")]
    assert "query_args_truncated" not in request.notes


def test_query_args_beyond_limit_are_cut_and_noted():
    request = make("/?" + "&".join(f"a{i}={i}" for i in range(10)), max_args=3)
    assert pairs(request.query_args) == [("a0", "0"), ("a1", "1"), ("a2", "2")]
    assert "query_args_truncated" in request.notes


@pytest.mark.parametrize("query", ["a=1&b=2&", "a=1&&b=2", "&a=1&b=2"])
def test_empty_query_items_do_not_count_against_the_limit(query):
    request = make(f"/?{query}", max_args=2)
    assert pairs(request.query_args) == [("a", "1"), ("b", "2")]
    assert "query_args_truncated" not in request.notes


# -- cookies and headers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cookie_headers", "expected"),
    [
        (["a=1"], [("a", "1")]),
        (["a=1; b=2"], [("a", "1"), ("b", "2")]),
        (["a=1", "b=2; c=3"], [("a", "1"), ("b", "2"), ("c", "3")]),  # several cookie headers
        (["a=1;;b=2;"], [("a", "1"), ("b", "2")]),  # empty items skipped
        (["flag"], [("flag", "")]),
        (["=orphan"], [("", "orphan")]),
        (["t=x=y=="], [("t", "x=y==")]),  # value keeps its '='
        (['q="quoted"'], [("q", '"quoted"')]),  # kept as sent
        (["s=%3Cscript%3E"], [("s", "%3Cscript%3E")]),  # not URL-decoded
        ([";;"], []),
    ],
)
def test_cookies(cookie_headers, expected):
    request = make(headers=tuple(("cookie", value) for value in cookie_headers))
    assert list(request.cookies) == expected


def test_no_cookie_header_means_no_cookies():
    assert make(headers=(("x-a", "b"),)).cookies == ()


def test_header_returns_first_value_or_default():
    request = make(headers=(("x-a", "1"), ("x-b", "2"), ("x-a", "3")))
    assert request.header("x-a") == "1"
    assert request.header_map["x-a"] == ("1", "3")
    assert request.header("x-missing") == ""
    assert request.header("x-missing", "dflt") == "dflt"


@pytest.mark.parametrize(
    ("value", "media_type"),
    [
        ("application/json", "application/json"),
        ("Application/JSON; charset=UTF-8", "application/json"),
        ("  text/plain ;format=flowed", "text/plain"),
        (MULTIPART, "multipart/form-data"),
        ("", ""),
    ],
)
def test_content_type_without_params(value, media_type):
    assert make(content_type=value).content_type == media_type


def test_missing_content_type_is_empty():
    assert make().content_type == ""


# -- form bodies --------------------------------------------------------------------------


def test_form_body_args():
    request = make(method="POST", content_type=f"{FORM}; charset=utf-8", body=b"user=bob&q=a+b&pw=%26x&flag")
    assert pairs(request.form) == [("user", "bob"), ("q", "a b"), ("pw", "&x"), ("flag", "")]
    assert all(arg.source == "form" for arg in request.form)
    assert request.body_args == request.form


def test_form_args_limit_is_noted():
    request = make(method="POST", content_type=FORM, body=b"a=1&b=2&c=3", max_args=2)
    assert pairs(request.form) == [("a", "1"), ("b", "2")]
    assert "form_args_truncated" in request.notes


def test_form_body_with_other_content_type_is_not_parsed():
    assert make(method="POST", content_type="text/plain", body=b"a=1").form == ()


def test_args_are_query_then_body():
    request = make("/?q=1", method="POST", content_type=FORM, body=b"f=2")
    assert [(a.source, a.name, a.value) for a in request.args] == [("query", "q", "1"), ("form", "f", "2")]


# -- JSON bodies --------------------------------------------------------------------------


def leaves(request: Request) -> list[tuple[str, str, str]]:
    return [(arg.name, arg.path, arg.value) for arg in request.json_leaves]


def test_json_leaves_name_path_and_scalar_text():
    body = (
        b'{"user": {"name": "bob", "roles": ["admin", "dev"], "age": 42, "ok": true, "off": false,'
        b' "none": null, "ratio": 1.5, "empty": {}, "grid": [[7]]}, "top": "t"}'
    )
    request = make(method="POST", content_type=JSON, body=body)
    assert leaves(request) == [
        ("name", "user.name", "bob"),
        ("roles", "user.roles[0]", "admin"),
        ("roles", "user.roles[1]", "dev"),
        ("age", "user.age", "42"),
        ("ok", "user.ok", "true"),
        ("off", "user.off", "false"),
        ("none", "user.none", "null"),
        ("ratio", "user.ratio", "1.5"),
        ("grid", "user.grid[0][0]", "7"),
        ("top", "top", "t"),
    ]
    assert all(arg.source == "json" for arg in request.json_leaves)
    assert request.notes == set()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'"just a string"', [("", "", "just a string")]),
        (b"[1, \"two\"]", [("", "[0]", "1"), ("", "[1]", "two")]),
        (b'[{"k": "v"}]', [("k", "[0].k", "v")]),
        (b"{}", []),
        (b'{"a.b": 1, "c": {"d e": 2}}', [("a.b", "a.b", "1"), ("d e", "c.d e", "2")]),  # keys kept verbatim
        (b'{"s": "\\u00e9\\n"}', [("s", "s", "\u00e9\n")]),
    ],
)
def test_json_shapes(body, expected):
    assert leaves(make(method="POST", content_type=JSON, body=body)) == expected


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "application/vnd.api+json", "application/problem+json; x=y"],
)
def test_json_media_types_are_parsed(content_type):
    assert leaves(make(method="POST", content_type=content_type, body=b'{"a": "1"}')) == [("a", "a", "1")]


@pytest.mark.parametrize("content_type", ["text/plain", "application/jsonx", FORM, "", "text/json", "text/csv",
                                          "application/octet-stream", "application/x-ndjson", "application/xml"])
def test_a_json_document_is_json_whatever_its_declared_type(content_type):
    # Frameworks parse JSON whatever the label says: the arguments are what the application reads.
    request = make(method="POST", content_type=content_type, body=b' {"a": "1"}\n')
    assert leaves(request) == [("a", "a", "1")]


@pytest.mark.parametrize("body", [b"a=1&b=2", b"plain words", b"\x89PNG\r\n\x1a\n\x00\x00", b"<a>1</a>"])
def test_a_body_that_is_not_json_is_not_read_as_json(body):
    request = make(method="POST", content_type=JSON, body=body)
    assert request.json is None and request.json_leaves == ()


def test_json_lines_are_read_document_by_document():
    request = make(method="POST", content_type="application/x-ndjson", body=b'{"a": "1"}\n{"b": "2"}\n')
    assert [arg.value for arg in request.json_leaves] == ["1", "2"]


def test_json_depth_limit_is_noted_and_shallow_leaves_kept():
    request = make(method="POST", content_type=JSON, body=b'{"a": {"b": {"c": "deep"}}, "z": "shallow"}', max_json_depth=2)
    assert leaves(request) == [("z", "z", "shallow")]
    assert "json_depth_exceeded" in request.notes


def test_json_within_depth_limit_is_not_noted():
    request = make(method="POST", content_type=JSON, body=b'{"a": {"b": 1}}', max_json_depth=2)
    assert leaves(request) == [("b", "a.b", "1")]
    assert request.notes == set()


@pytest.mark.parametrize(
    "body",
    [b"[" * 5000 + b"]" * 5000, b'{"a":' * 5000 + b"1" + b"}" * 5000],
    ids=["lists", "objects"],
)
def test_very_deep_json_does_not_crash_and_is_noted(body):
    request = make(method="POST", content_type=JSON, body=body)
    assert request.json_leaves == ()
    assert "json_depth_exceeded" in request.notes
    assert "json_invalid" not in request.notes


@pytest.mark.parametrize("body", [b'{"a":', b"{'a': 1}", b'{"a": "\xff"}', b"nope", b'{"a": 1} trailing'])
def test_invalid_json_is_noted_not_raised(body):
    request = make(method="POST", content_type=JSON, body=body)
    assert request.json is None
    assert request.json_leaves == ()
    assert request.args == ()
    assert "json_invalid" in request.notes


def test_empty_json_body_is_not_invalid():
    request = make(method="POST", content_type=JSON, body=b"")
    assert request.json is None
    assert request.notes == set()


def test_json_leaf_limit_is_noted():
    request = make(method="POST", content_type=JSON, body=b'{"a": [1, 2, 3, 4], "b": 5}', max_args=2)
    assert leaves(request) == [("a", "a[0]", "1"), ("a", "a[1]", "2")]
    assert "json_args_truncated" in request.notes


def test_json_leaf_count_at_limit_is_not_noted():
    request = make(method="POST", content_type=JSON, body=b'{"a": [1, 2]}', max_args=2)
    assert len(request.json_leaves) == 2
    assert request.notes == set()


def reference_leaves(document, max_args: int, max_depth: int) -> tuple[list, set]:
    """A plain recursive walk in document order that stops at the leaf after the limit: the
    leaves and notes json_leaves must give."""
    found, notes = [], set()

    class Full(Exception):
        pass

    def walk(node, path, key, depth):
        if isinstance(node, (dict, list)):
            if depth >= max_depth:
                notes.add("json_depth_exceeded")
                return
            for k, v in (node.items() if isinstance(node, dict) else enumerate(node)):
                named = isinstance(node, dict)
                walk(v, (f"{path}.{k}" if path else k) if named else f"{path}[{k}]", k if named else key, depth + 1)
        elif len(found) == max_args:
            notes.add("json_args_truncated")
            raise Full
        else:
            found.append((key, path, node if isinstance(node, str) else json.dumps(node)))

    try:
        walk(document, "", "", 0)
    except Full:
        pass
    return found, notes


@pytest.mark.parametrize("document", [
    {"big": list(range(50)), "after": 1},
    [[], [], [[1]] * 30, {"k%d" % i: {} for i in range(40)}, "tail"],
    {"k%d" % i: [[]] * 3 for i in range(30)} | {"deep": [[[[[["x"]]]]]]},
    [{"a": [{}] * 20}] * 20,
    [[[[[[1]]]]]] * 40 + [2],
])
@pytest.mark.parametrize("max_args", [1, 3, 8, 100])
def test_json_leaves_of_containers_larger_than_the_limit_are_walked_lazily_in_document_order(document, max_args):
    # Containers with more children than max_args are walked one child at a time (a 100k-element
    # array cost 70 ms when every child's path was built first); the leaves, their order and the
    # notes must be exactly those of a plain recursive walk.
    request = make(method="POST", content_type=JSON, body=json.dumps(document).encode(), max_args=max_args,
                   max_json_depth=4)
    assert (leaves(request), request.notes) == reference_leaves(document, max_args, 4)


# -- multipart bodies ---------------------------------------------------------------------


def test_multipart_fields_and_files():
    body = multipart_body(("user", None, b"bob"), ("upload", "evil.php", b"<?php system($_GET[c]); ?>"))
    request = make(method="POST", content_type=MULTIPART, body=body)
    user, upload = request.multipart_parts
    assert (user.name, user.filename, user.data, user.text) == ("user", None, b"bob", "bob")
    assert (upload.name, upload.filename, upload.content_type) == ("upload", "evil.php", "application/octet-stream")
    assert upload.data == b"<?php system($_GET[c]); ?>"
    # A file part is an argument whose value is its file name.
    assert [(a.source, a.name, a.value) for a in request.body_args] == [
        ("multipart", "user", "bob"),
        ("multipart", "upload", "evil.php"),
    ]
    assert request.notes == set()


def test_multipart_quoted_boundary():
    body = multipart_body(("a", None, b"1"))
    request = make(method="POST", content_type=f'multipart/form-data; charset=utf-8; boundary="{BOUNDARY}"', body=body)
    assert pairs(request.body_args) == [("a", "1")]


def test_multipart_part_text_keeps_invalid_utf8():
    request = make(method="POST", content_type=MULTIPART, body=multipart_body(("a", None, b"x\xffy")))
    (part,) = request.multipart_parts
    assert part == Part("a", None, "text/plain", b"x\xffy", 'form-data; name="a"')
    assert part.text.encode("utf-8", "surrogateescape") == b"x\xffy"


def test_multipart_without_boundary_is_noted():
    request = make(method="POST", content_type="multipart/form-data", body=multipart_body(("a", None, b"1")))
    assert request.multipart_parts == ()
    assert "multipart_invalid" in request.notes


@pytest.mark.parametrize(
    "body",
    [
        b"garbage",
        b"",
        b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated",
        b"--XyZ\r\nNo-Disposition: x\r\n\r\nv\r\n--XyZ--\r\n",
    ],
)
def test_broken_multipart_is_noted_not_raised(body):
    request = make(method="POST", content_type=MULTIPART, body=body)
    assert request.args == ()  # no exception
    assert "multipart_invalid" in request.notes


def test_multipart_headers_that_are_not_utf8_are_read_not_given_up():
    """A Latin-1 byte in one part's name or filename used to make the whole body 'invalid': every
    later part (a payload, say) went uninspected. Names keep the bytes as every other field does."""
    body = (b'--XyZ\r\nContent-Disposition: form-data; name="caf\xe9"; filename="r\xe9sum\xc3\xa9.txt"\r\n'
            b"Content-Type: Text/Plain\xf3\r\n\r\nv\r\n"
            b'--XyZ\r\nContent-Disposition: form-data; name="q"\r\n\r\n1 UNION SELECT pw\r\n--XyZ--\r\n')
    request = make(method="POST", content_type=MULTIPART, body=body)
    first, second = request.multipart_parts
    assert first.name.encode("utf-8", "surrogateescape") == b"caf\xe9"
    assert first.filename.encode("utf-8", "surrogateescape") == b"r\xe9sum\xc3\xa9.txt"
    assert first.content_type.encode("utf-8", "surrogateescape") == b"text/plain\xf3"  # ASCII lower-cased only
    assert Arg("multipart", "q", "1 UNION SELECT pw") in request.args
    assert "multipart_invalid" not in request.notes


def test_multipart_boundary_that_is_not_utf8_is_used_as_sent():
    body = b'--\xf3\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--\xf3--\r\n'
    request = make(method="POST", content_type="multipart/form-data; boundary=\udcf3", body=body)
    assert [(p.name, p.data) for p in request.multipart_parts] == [("a", b"v")]


def test_multipart_parts_before_the_breakage_are_kept():
    good = multipart_body(("a", None, b"1"))[: -len(f"--{BOUNDARY}--\r\n")]
    body = good + b"--XyZ\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\ncut off"
    request = make(method="POST", content_type=MULTIPART, body=body)
    assert pairs(request.body_args) == [("a", "1")]
    assert "multipart_invalid" in request.notes


def test_multipart_part_limit_is_noted():
    body = multipart_body(*((f"p{i}", None, b"v") for i in range(10)))
    request = make(method="POST", content_type=MULTIPART, body=body, max_multipart_parts=3)
    assert [part.name for part in request.multipart_parts] == ["p0", "p1", "p2"]
    assert "multipart_parts_truncated" in request.notes


def test_multipart_parts_at_limit_are_not_noted():
    body = multipart_body(*((f"p{i}", None, b"v") for i in range(3)))
    request = make(method="POST", content_type=MULTIPART, body=body, max_multipart_parts=3)
    assert len(request.multipart_parts) == 3
    assert request.notes == set()


def test_multipart_is_only_parsed_for_form_data():
    request = make(method="POST", content_type=f"multipart/mixed; boundary={BOUNDARY}", body=multipart_body(("a", None, b"1")))
    assert request.multipart_parts == ()
    assert request.notes == set()


# -- attach_body --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "total_size", "complete", "kept", "size", "truncated"),
    [
        (b"12345", None, True, b"12345", 5, False),
        (b"123456", None, True, b"12345", 6, True),  # cut to max_body_bytes
        (b"12345", 5000, True, b"12345", 5000, True),  # more arrived than was kept
        (b"123", None, False, b"123", 3, True),  # Envoy passed only what fit its buffer
        (b"", None, True, b"", 0, False),
    ],
)
def test_attach_body_limits(body, total_size, complete, kept, size, truncated):
    request = make(max_body_bytes=5)
    request.attach_body(body, total_size, complete)
    assert request.body == kept
    assert request.body_size == size
    assert ("body_truncated" in request.notes) is truncated


def test_views_are_recomputed_after_attach_body():
    request = Request("POST", "/?q=1", headers=(("content-type", FORM),))
    assert pairs(request.args) == [("q", "1")]  # computed before the body arrived
    assert request.form == ()
    request.attach_body(b"f=2")
    assert pairs(request.form) == [("f", "2")]
    assert pairs(request.body_args) == [("f", "2")]
    assert pairs(request.args) == [("q", "1"), ("f", "2")]


def test_json_and_multipart_views_are_recomputed_after_attach_body():
    json_request = Request("POST", "/", headers=(("content-type", JSON),))
    assert json_request.json is None and json_request.json_leaves == ()
    json_request.attach_body(b'{"a": "b"}')
    assert json_request.json == {"a": "b"}
    assert leaves(json_request) == [("a", "a", "b")]

    mp_request = Request("POST", "/", headers=(("content-type", MULTIPART),))
    assert mp_request.multipart_parts == ()
    mp_request.attach_body(multipart_body(("a", None, b"1")))
    assert [part.name for part in mp_request.multipart_parts] == ["a"]


def test_truncated_body_is_inspected_as_far_as_it_goes():
    request = make(method="POST", content_type=FORM, max_body_bytes=7)
    request.attach_body(b"a=1&b=2&c=3")
    assert pairs(request.form) == [("a", "1"), ("b", "2")]
    assert "body_truncated" in request.notes


def test_arg_defaults():
    assert Arg("query", "a", "1") == Arg("query", "a", "1", "")


@pytest.mark.parametrize("charset", ["ibm037", "cp500", "utf-16", "utf-32", "utf-7"])
def test_a_form_in_a_charset_that_reads_ascii_differently_has_a_second_reading(charset):
    # UTF-7 writes most ASCII as itself; '+ACc-' and '+AD0-' are its spellings of ' and =.
    body = b"q=+ACc- OR 1+AD0-1--&page=2" if charset == "utf-7" else "q=' OR 1=1--&page=2".encode(charset)
    request = make(method="POST", content_type=f"{FORM}; charset={charset}", body=body)
    assert pairs(request.declared_charset_form) == [("q", "' OR 1=1--"), ("page", "2")]
    assert ("q", "' OR 1=1--") not in pairs(request.form)  # the UTF-8 reading is noise


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "iso-8859-1", "windows-1252", "shift_jis", "us-ascii"])
def test_charsets_that_read_ascii_as_ascii_need_no_second_reading(charset):
    request = make(method="POST", content_type=f"{FORM}; charset={charset}", body=b"q=%27+OR+1%3D1--")
    assert request.declared_charset_text is None and request.declared_charset_form == ()
    assert pairs(request.form) == [("q", "' OR 1=1--")]


def test_an_unknown_charset_is_noted_and_the_body_still_read_as_utf8():
    request = make(method="POST", content_type=f"{FORM}; charset=x-made-up", body=b"q=hello")
    assert request.declared_charset_text is None
    assert "body_charset_unknown" in request.notes
    assert pairs(request.form) == [("q", "hello")]


def test_a_declared_charset_is_read_leniently():
    # Odd UTF-16 length, invalid UTF-7: replaced, never raised.
    for charset, body in (("utf-16", b"q=\xff"), ("utf-7", b"+\xff\xfe-")):
        request = make(method="POST", content_type=f"text/plain; charset={charset}", body=body)
        assert isinstance(request.declared_charset_text, str)


def test_an_unknown_charset_is_noted_as_soon_as_the_body_arrives():
    request = make(method="POST", content_type="text/plain; Charset=x-made-up", body=b"hello")
    assert "body_charset_unknown" in request.notes


def test_a_filename_past_an_inner_quote_is_read_leniently_too():
    body = multipart_body(("f", '<svg onload=alert("x")>.png', b"data"))
    (part,) = make(method="POST", content_type=MULTIPART, body=body).multipart_parts
    assert part.filename == "<svg onload=alert("  # the strict quoted string ends at the inner quote
    assert part.lenient_filename == '<svg onload=alert("x")>.png'
    (plain,) = make(method="POST", content_type=MULTIPART, body=multipart_body(("f", "report.pdf", b"x"))).multipart_parts
    assert plain.filename == "report.pdf" and plain.lenient_filename is None


def test_a_json_document_declared_as_a_form_also_gives_its_strings():
    request = make(method="POST", content_type=FORM, body=b' {"q": "a=b&c", "n": [1, "two"]} ')
    assert request.body_syntax == "json" and request.json_strings == ("q", "a=b&c", "n", "two")
    plain = make(method="POST", content_type=FORM, body=b"q={x}&n=1")
    assert plain.body_syntax == "form" and plain.json_strings == ()
    text = make(method="POST", content_type="text/plain", body=b'{"q": "x"}')
    assert text.body_syntax == "text"  # scored whole as text


@pytest.mark.parametrize(("content_type", "body", "syntax"), [
    ("application/octet-stream", b"id=1&name=x%27", "form"),
    ("text/csv", b'{"id": "1"}', "json"),
    ("", b"<?xml version='1.0'?><a/>", "xml"),
    ("application/json", b"id=1&q=2", "form"),
    ("application/json", b"1' or '1'='1", "text"),
    ("image/png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
])
def test_the_bytes_decide_the_syntax(content_type, body, syntax):
    assert make(method="POST", content_type=content_type, body=body).body_syntax == syntax


@pytest.mark.parametrize(("encoding", "content", "read"), [
    ("base64", b"JyBPUiAxPTEtLQ==", b"' OR 1=1--"),
    ("BASE64", b"JyBPUiAx\r\nPTEtLQ==", b"' OR 1=1--"),
    ("quoted-printable", b"=27 OR 1=3D1--", b"' OR 1=1--"),
    ("8bit", b"plain", b"plain"),
])
def test_a_part_is_read_through_its_transfer_encoding(encoding, content, read):
    body = (b'--b\r\nContent-Disposition: form-data; name="q"\r\nContent-Transfer-Encoding: ' + encoding.encode()
            + b"\r\n\r\n" + content + b"\r\n--b--\r\n")
    (part,) = make(method="POST", content_type="multipart/form-data; boundary=b", body=body).multipart_parts
    assert part.data == read
