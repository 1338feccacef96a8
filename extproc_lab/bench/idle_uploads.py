"""Idle uploads: requests that announce a body and never send it, the slow-client flood of
issue 18, over HTTP/1.1 (a connection each) and over HTTP/2 (many streams per connection); and a
bare HTTP/2 client for requests http.client cannot send.

Stdlib only. The HTTP/2 side speaks just enough of the protocol for this: the preface, SETTINGS
and PING acknowledgements, HEADERS without END_STREAM (HPACK literals, no table), and it collects
what comes back per stream (DATA bytes, the end of the stream, a reset). It does not decode the
response headers (HPACK with Huffman), so a stream's answer is read from its body.
"""
from __future__ import annotations

import selectors
import socket
import struct
import threading
from dataclasses import dataclass, field

LOOPBACK = "127.0.0.1"
ANNOUNCED_LENGTH = 7  # bytes promised in content-length, never sent


def http1_head(path: str) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {LOOPBACK}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {ANNOUNCED_LENGTH}\r\n\r\n").encode()


class Http1IdleUploads:
    """One connection per idle upload; answers() reads the status line each one got."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sockets: list[socket.socket] = []

    def open(self, path: str, count: int) -> None:
        for _ in range(count):
            sock = socket.create_connection((LOOPBACK, self.port), timeout=10)
            self.sockets.append(sock)
            sock.sendall(http1_head(path))

    def answered(self) -> int:
        """How many have something to read (an answer, or a closed connection)."""
        with selectors.DefaultSelector() as selector:
            for sock in self.sockets:
                selector.register(sock, selectors.EVENT_READ)
            return len(selector.select(timeout=0))

    def answers(self) -> list[str]:
        """The status line of each answer ("" for a connection closed without one); call once
        answered() says all of them have one."""
        lines = []
        for sock in self.sockets:
            data = sock.recv(4096)
            lines.append(data.split(b"\r\n", 1)[0].decode("latin-1"))
        return lines

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.sockets.clear()


# -- HTTP/2 -------------------------------------------------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream_id) + payload


def hpack_literal(name: str, value: str) -> bytes:
    """A header as an HPACK literal without indexing, new name, no Huffman coding."""
    return b"\x00" + _hpack_string(name.encode()) + _hpack_string(value.encode())


def _hpack_string(data: bytes) -> bytes:
    return _hpack_integer(len(data), 7) + data


def _hpack_integer(value: int, prefix_bits: int) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([value])
    out, value = bytearray([limit]), value - limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


@dataclass
class StreamAnswer:
    body: bytearray = field(default_factory=bytearray)
    ended: bool = False   # END_STREAM seen: Envoy answered in full
    reset: bool = False   # RST_STREAM, or the connection went away

    @property
    def done(self) -> bool:
        return self.ended or self.reset


class Http2Connection:
    """One prior-knowledge HTTP/2 connection; a reader thread records each stream's answer."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((LOOPBACK, port), timeout=10)
        self.sock.settimeout(None)  # the reader waits as long as Envoy holds the streams; close() ends it
        self.authority = f"{LOOPBACK}:{port}"
        self.streams: dict[int, StreamAnswer] = {}
        self._next_id = 1
        self._send_lock = threading.Lock()
        self._send(PREFACE + frame(SETTINGS, 0, 0))
        self._reader = threading.Thread(target=self._read_frames, name="h2-reader", daemon=True)
        self._reader.start()

    def idle_upload(self, path: str) -> int:
        """A POST that announces a body and sends none; returns its stream id."""
        return self.send_headers("POST", path, [("content-type", "application/x-www-form-urlencoded"),
                                                ("content-length", str(ANNOUNCED_LENGTH))], end_stream=False)

    def send_headers(self, method: str, path: str, headers: list[tuple[str, str]], *, end_stream: bool) -> int:
        """A request's HEADERS frame (with END_STREAM: a request without a body); returns its stream id."""
        stream_id, self._next_id = self._next_id, self._next_id + 2
        self.streams[stream_id] = StreamAnswer()
        pseudo = [(":method", method), (":scheme", "http"), (":authority", self.authority), (":path", path)]
        block = b"".join(hpack_literal(name, value) for name, value in pseudo + headers)
        self._send(frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), stream_id, block))
        return stream_id

    def _send(self, data: bytes) -> None:
        with self._send_lock:
            self.sock.sendall(data)

    def _read_frames(self) -> None:
        try:
            while True:
                head = self._read_exactly(9)
                length = int.from_bytes(head[:3], "big")
                kind, flags = head[3], head[4]
                stream_id = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
                self._on_frame(kind, flags, stream_id, self._read_exactly(length))
        except (OSError, EOFError):
            pass
        for answer in self.streams.values():  # whatever was still open went with the connection
            if not answer.done:
                answer.reset = True

    def _on_frame(self, kind: int, flags: int, stream_id: int, payload: bytes) -> None:
        answer = self.streams.get(stream_id)
        if kind == SETTINGS and not flags & ACK:
            self._send(frame(SETTINGS, ACK, 0))
        elif kind == PING and not flags & ACK:
            self._send(frame(PING, ACK, 0, payload))
        elif kind == GOAWAY:
            raise EOFError("GOAWAY")
        elif answer is None:
            return
        elif kind == RST_STREAM:
            answer.reset = True
        elif kind == DATA:
            answer.body += payload
        if answer is not None and kind in (HEADERS, DATA) and flags & END_STREAM:
            answer.ended = True

    def _read_exactly(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise EOFError("connection closed")
            data += chunk
        return bytes(data)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._reader.join(5)


class Http2IdleUploads:
    """Idle uploads as HTTP/2 streams, streams_per_connection on each connection."""

    def __init__(self, port: int, streams_per_connection: int) -> None:
        self.port = port
        self.streams_per_connection = streams_per_connection
        self.connections: list[Http2Connection] = []

    def open(self, path: str, count: int) -> None:
        while count > 0:
            connection = Http2Connection(self.port)
            self.connections.append(connection)
            for _ in range(min(count, self.streams_per_connection)):
                connection.idle_upload(path)
            count -= self.streams_per_connection

    def answers(self) -> list[StreamAnswer]:
        return [answer for connection in self.connections for answer in connection.streams.values()]

    def answered(self) -> int:
        return sum(answer.done for answer in self.answers())

    def close(self) -> None:
        for connection in self.connections:
            connection.close()
        self.connections.clear()
