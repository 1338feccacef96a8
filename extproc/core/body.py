"""A request body as the application will read it: content codings removed, syntax recognised.

The upstream decompresses a ``content-encoding: gzip`` body and many frameworks parse JSON
whatever the declared type says, so the layers must read the same: a payload gzipped, or JSON
sent as ``text/csv``, is still a payload. Decoding is bounded (a decompression bomb stops at
the inspection limit, where the oversize action takes over), and a body that cannot be decoded
is noted, never passed as if it were clean: ``inspection.uninspectable`` decides.
"""
from __future__ import annotations

import io
import re
import zlib
from typing import NamedTuple

import brotli
import zstandard

MAX_CODINGS = 4  # gzip, gzip, gzip, ... only multiplies the work: more layers than this are refused
GZIP_MAGIC = b"\x1f\x8b"


class Decoded(NamedTuple):
    body: bytes
    overflow: bool = False  # the decoded body is longer than the limit (cut there)
    problem: str = ""  # body_encoding_unsupported | body_encoding_invalid


class DecodeError(Exception):
    pass


def content_codings(values: tuple[str, ...]) -> list[str]:
    """The codings applied to the body, in the order they were applied (identity left out)."""
    codings = [token.strip().lower() for value in values for token in value.split(",")]
    return [coding for coding in codings if coding and coding != "identity"]


def decode_content(body: bytes, codings: list[str], limit: int, complete: bool = True) -> Decoded:
    """Undo the codings, last applied first; at most ``limit`` bytes come out."""
    if len(codings) > MAX_CODINGS:
        return Decoded(b"", problem="body_encoding_unsupported")
    overflow = False
    for coding in reversed(codings):
        decoder = DECODERS.get(coding)
        if decoder is None:
            return Decoded(b"", problem="body_encoding_unsupported")
        try:
            body, cut = decoder(body, limit, complete)
        except (DecodeError, zlib.error, brotli.error, zstandard.ZstdError):
            return Decoded(b"", problem="body_encoding_invalid")
        overflow = overflow or cut
    return Decoded(body, overflow)


def _gzip(data: bytes, limit: int, complete: bool) -> tuple[bytes, bool]:
    out: list[bytes] = []
    room = limit + 1
    while data:
        if data[:2] != GZIP_MAGIC:  # bytes after the last member: a gzip reader refuses them
            raise DecodeError("trailing bytes after the gzip data")
        stream = zlib.decompressobj(wbits=31)
        chunk = stream.decompress(data, room)
        out.append(chunk)
        room -= len(chunk)
        if room <= 0:
            return b"".join(out)[:limit], True
        if not stream.eof:
            if complete:
                raise DecodeError("gzip data ends early")
            break  # Envoy passed only what fit its buffer: read what there is
        data = stream.unused_data
    return b"".join(out), False


def _deflate(data: bytes, limit: int, complete: bool) -> tuple[bytes, bool]:
    # HTTP's "deflate" is zlib-wrapped, but servers also accept the raw stream senders often send.
    wbits = 15 if len(data) >= 2 and (data[0] * 256 + data[1]) % 31 == 0 and data[0] & 0x0F == 8 else -15
    stream = zlib.decompressobj(wbits=wbits)
    out = stream.decompress(data, limit + 1)
    if len(out) > limit:
        return out[:limit], True
    if complete and (not stream.eof or stream.unused_data):
        raise DecodeError("deflate data ends early or has trailing bytes")
    return out, False


def _brotli(data: bytes, limit: int, complete: bool) -> tuple[bytes, bool]:
    stream = brotli.Decompressor()
    out = stream.process(data, output_buffer_limit=limit + 1)
    if len(out) > limit:
        return out[:limit], True
    if complete and not stream.is_finished():
        raise DecodeError("brotli data ends early")
    return out, False


def _zstd(data: bytes, limit: int, complete: bool) -> tuple[bytes, bool]:
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
    out = reader.read(limit + 1)
    return (out[:limit], True) if len(out) > limit else (out, False)


DECODERS = {"gzip": _gzip, "x-gzip": _gzip, "deflate": _deflate, "br": _brotli, "zstd": _zstd}

# -- syntax --------------------------------------------------------------------------------

BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
        (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
FORM_SHAPE = re.compile(rb"[^\s=&{}\[\]<>\"]+=[^\s&]*(?:&+[^\s=&]+(?:=[^\s&]*)?)*&*\Z")
BINARY_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1f]")
SNIFF_BYTES = 1024


def bom_codec(body: bytes) -> str:
    """The text encoding a byte-order mark at the start of the body names, or ""."""
    for mark, codec in BOMS:
        if body.startswith(mark):
            return codec
    return ""


def opens_like_json(body: bytes) -> bool:
    """The body starts as a JSON document does, whatever follows (Go's decoder reads the first
    value and ignores trailing bytes)."""
    return _head(body)[:1] in (b"{", b"[")


def _head(body: bytes) -> bytes:
    """The start of the body past white space and a UTF-8 byte order mark: where syntax shows."""
    return body[:SNIFF_BYTES].lstrip(b" \t\r\n\xef\xbb\xbf")


def sniff(body: bytes) -> str:
    """What a body is, by its bytes: json, xml, form, text or binary ("" when empty).

    Only the ends are looked at (a body can be megabytes): JSON and XML by their first and last
    characters, a form by its head being name=value pairs, binary by control bytes a text never
    has."""
    head = _head(body)
    if not head:
        return ""
    tail = body[-64:].rstrip()
    if head[:1] in (b"{", b"[") and tail[-1:] in (b"}", b"]"):
        return "json"
    if head[:1] == b"<" and tail[-1:] == b">":
        return "xml"
    if BINARY_BYTES.search(head):
        return "binary"
    if FORM_SHAPE.match(head if len(body) <= SNIFF_BYTES else head.rpartition(b"&")[0] or head):
        return "form"
    return "text"
