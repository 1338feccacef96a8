"""JSON bodies read only where every server would read them the same (extproc.core.json_body)."""
from __future__ import annotations

import pytest

from extproc.core.json_body import AmbiguousName, Unreadable, member, read


@pytest.mark.parametrize("body, document", [
    (b'{"a": 1}', {"a": 1}),
    (b'\xef\xbb\xbf{"a": 1}', {"a": 1}),  # one BOM: skipped, as lenient servers skip it
    (b' [1, {"a": 2}, {"a": 3}] \n', [1, {"a": 2}, {"a": 3}]),  # the same name in two objects
    (b'{"a": "say \\":\\" twice \\":", "b": {"c": "\\":"}}', {"a": 'say ":" twice ":', "b": {"c": '":'}}),
    (b'{"a": "\\\\", "b": 1}', {"a": "\\", "b": 1}),
    (b'{"": 1, "A": {"": 2}}', {"": 1, "A": {"": 2}}),
    (b'"text"', "text"), (b"null", None),
])
def test_bodies_every_parser_reads_alike_are_read(body, document):
    assert read(body) == document


@pytest.mark.parametrize("body, reason", [
    (b'\xef\xbb\xbf\xef\xbb\xbf{"a": 1}', "syntax"),
    (b'{"a": 1} {"a": 2}', "syntax"), (b'{"a": 1}x', "syntax"), (b'{"a": 1}\x00', "syntax"),
    (b'{"a": NaN}', "syntax"), (b'{"a": "\\ud800"}', "syntax"), (b'{"a": "\xff"}', "syntax"), (b"", "syntax"),
    ('{"a": 1}'.encode("utf-16"), "syntax"),
    (b'{"a": 1, "a": 1}', "duplicate_name"),
    (b'{"a": 1, "\\u0061": 2}', "duplicate_name"),
    (b'{"x": [{"b": {"a": 1, "a ": 2, "a": 3}}]}', "duplicate_name"),
    (b'{"a": "\\":", "a": 1}', "duplicate_name"),  # an escaped quote-colon does not hide the duplicate
    (b'{"model": 1, "MODEL": 2}', "duplicate_name"),
    ('{"stream": 1, "\u017ftream": 2}'.encode(), "duplicate_name"),  # Go folds the long s with s
    ('{"max_tokens": 1, "max_to\u212aens": 2}'.encode(), "duplicate_name"),  # and the Kelvin sign with k
    # Counted by the standard library's parser, or past the depth it recurses to, by the token regex.
    (b'{"a": "\\":", "b": [' + b'{"c": "\\":"}, ' * 2000 + b'{"d": 1, "d": 2}]}', "duplicate_name"),
    (b'{"a":' * 1000 + b'{"b": "\\":", "b": 2}' + b'}' * 1000, "duplicate_name"),
])
def test_bodies_servers_read_differently_are_unreadable(body, reason):
    assert read(body) == Unreadable(reason)


@pytest.mark.parametrize("content_types, readable", [
    ((), True), (("application/json",), True), (("application/json; charset=UTF-8",), True),
    (('application/json; charset="utf8"',), True), (("application/json;charset=us-ascii",), True),
    (("application/json; charset=utf-16",), False), (("application/json; charset=latin-1",), False),
    (("application/json; charset=no-such-charset",), False),
    (("application/json", "application/json; charset=utf-32"), False),  # a server may read the second
])
def test_a_declared_charset_must_be_utf_8(content_types, readable):
    assert (read(b'{"a": 1}', content_types) == {"a": 1}) is readable


def test_member_reads_exact_names_and_refuses_names_only_equal_once_folded():
    obj = {"model": "m", "Messages": [], "ſtream": True}
    assert member(obj, "model") == "m" and member(obj, "absent", 7) == 7
    for name in ("messages", "stream"):
        with pytest.raises(AmbiguousName):
            member(obj, name)
