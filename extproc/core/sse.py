"""Server-sent events framed as clients read them (WHATWG HTML, "event stream interpretation"),
over a body that arrives in chunks.

Lines end with CRLF, CR or LF; a blank line ends an event; an event's ``data:`` lines are joined
with "\\n"; lines starting with ":" are comments; a UTF-8 BOM at the very start is skipped. Reading
``data:`` lines one by one missed events whose JSON spans several of them, which clients join
and read whole. Each event keeps its raw bytes, so what is not rewritten passes byte for byte.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

LINE = re.compile(rb"([^\r\n]*)(\r\n|\r|\n)")
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Event:
    raw: bytes  # as received, the blank line that ended it included (absent at the end of the body)
    lines: tuple[tuple[bytes, bytes], ...]  # (text, line ending) of each line before the blank one

    @property
    def data(self) -> bytes | None:
        """The data lines joined as a client joins them; None when the event has no data line."""
        values = [value for name, value in map(field, (text for text, _ in self.lines)) if name == b"data"]
        return b"\n".join(values) if values else None


def field(line: bytes) -> tuple[bytes | None, bytes]:
    """(name, value) of one line; the name is None for a comment."""
    if line.startswith(b":"):
        return None, line
    name, colon, value = line.partition(b":")
    return name, (value[1:] if colon and value.startswith(b" ") else value)


class EventSplitter:
    """Cuts a chunked body into whole events; an event cut between chunks waits for its end.

    Work is linear in the body however it is cut: lines already read are not read again."""

    def __init__(self, max_pending: int) -> None:
        self.max_pending = max_pending  # the longest incomplete event kept in memory
        self.started = False
        self.overflowed = False  # an incomplete event grew past max_pending and was dropped
        self._buffer = bytearray()  # the incomplete event
        self._lines: list[tuple[bytes, bytes]] = []  # its lines read so far
        self._scanned = 0  # where in the buffer reading resumes

    @property
    def pending(self) -> bytes:
        """The bytes of the event not yet complete."""
        return bytes(self._buffer)

    @property
    def pending_size(self) -> int:
        return len(self._buffer)

    def feed(self, chunk: bytes, final: bool) -> list[Event]:
        buffer = self._buffer
        events: list[Event] = []
        buffer += chunk
        if not self.started:
            if not final and len(buffer) < len(BOM) and BOM.startswith(buffer):
                return events  # maybe the start of a BOM: wait to know
            self.started = True
            if buffer.startswith(BOM):  # passed on as it is, read as nothing (as clients skip it)
                events.append(Event(BOM, ()))
                del buffer[:len(BOM)]
        # Lines are matched only up to the last line ending: on an unterminated tail the pattern
        # would be retried from every position of it, quadratic in a long partial line.
        start, read = 0, self._scanned
        end = max(buffer.rfind(b"\n", read), buffer.rfind(b"\r", read), read - 1) + 1
        for match in LINE.finditer(buffer, read, end):
            text, ending = match.groups()
            if ending == b"\r" and match.end() == len(buffer) and not final:
                break  # the CR may be the first half of a CRLF in the next chunk
            read = match.end()
            if text:
                self._lines.append((bytes(text), bytes(ending)))
                continue
            events.append(Event(bytes(buffer[start:read]), tuple(self._lines)))
            start, self._lines = read, []
        if final:
            if start < len(buffer):  # the body ended inside an event: it is read as far as it goes
                tail = bytes(buffer[read:])
                events.append(Event(bytes(buffer[start:]), tuple(self._lines) + (((tail, b""),) if tail else ())))
            buffer.clear()
            self._lines, self._scanned = [], 0
        elif len(buffer) - start > self.max_pending:
            # Memory stays bounded whatever the upstream sends; the caller decides what a lost
            # event means (the MCP filter withholds the answer, usage counting reads on).
            self.overflowed = True
            buffer.clear()
            self._lines, self._scanned = [], 0
        else:
            del buffer[:start]
            self._scanned = read - start
        return events
