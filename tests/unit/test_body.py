"""Bodies as the application reads them: content codings undone (bounded), syntax by the bytes."""
import gzip
import zlib

import brotli
import pytest
import zstandard

from extproc.core.body import content_codings, decode_content, sniff

PAYLOAD = b'{"id": "1\' UNION SELECT username,password FROM users--"}'


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-15)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(("codings", "encode"), [
    (["gzip"], gzip.compress),
    (["x-gzip"], gzip.compress),
    (["deflate"], zlib.compress),
    (["deflate"], raw_deflate),  # what many senders mean by deflate
    (["br"], brotli.compress),
    (["zstd"], zstandard.ZstdCompressor().compress),
    (["gzip", "br"], lambda data: brotli.compress(gzip.compress(data))),  # applied in order, undone in reverse
])
def test_every_coding_an_upstream_decodes_is_decoded(codings, encode):
    assert decode_content(encode(PAYLOAD), codings, 1 << 20) == (PAYLOAD, False, "")


def test_gzip_members_are_read_one_after_another():
    assert decode_content(gzip.compress(b"a=1") + gzip.compress(b"&b=2"), ["gzip"], 100).body == b"a=1&b=2"


@pytest.mark.parametrize("codings", [["gzip"], ["deflate"], ["br"], ["zstd"]])
def test_a_bomb_stops_at_the_limit(codings):
    bomb = {"gzip": gzip.compress, "deflate": zlib.compress, "br": brotli.compress,
            "zstd": zstandard.ZstdCompressor().compress}[codings[0]](b"A" * 50_000_000)
    decoded = decode_content(bomb, codings, 65536)
    assert decoded.overflow and len(decoded.body) == 65536 and not decoded.problem


@pytest.mark.parametrize(("body", "codings", "problem"), [
    (b"not gzip", ["gzip"], "body_encoding_invalid"),
    (gzip.compress(PAYLOAD)[:-9], ["gzip"], "body_encoding_invalid"),  # cut short
    (gzip.compress(PAYLOAD) + b"junk", ["gzip"], "body_encoding_invalid"),
    (b"\x00\x01", ["br"], "body_encoding_invalid"),
    (PAYLOAD, ["compress"], "body_encoding_unsupported"),
    (PAYLOAD, ["gzip"] * 5, "body_encoding_unsupported"),
])
def test_what_cannot_be_decoded_says_so(body, codings, problem):
    assert decode_content(body, codings, 1 << 20).problem == problem


def test_a_body_cut_by_envoys_buffer_is_read_as_far_as_it_goes():
    cut = gzip.compress(PAYLOAD * 100)[:200]
    decoded = decode_content(cut, ["gzip"], 1 << 20, complete=False)
    assert decoded.body and PAYLOAD.startswith(decoded.body[:20]) and not decoded.problem


def test_codings_from_every_header_value_in_order():
    assert content_codings(("gzip, identity", " BR ")) == ["gzip", "br"]


@pytest.mark.parametrize(("body", "shape"), [
    (b' {"a": 1}\n', "json"),
    (b'\xef\xbb\xbf[1]', "json"),
    (b'{"a": 1}\n{"b": 2}', "json"),
    (b"<?xml version='1.0'?><a/>", "xml"),
    (b"a=1&b=%27x", "form"),
    (b"a=1&b=" + b"x" * 5000, "form"),
    (b"hello world, it's me", "text"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
    (b"", ""),
])
def test_sniffing(body, shape):
    assert sniff(body) == shape
