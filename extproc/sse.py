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
    """Cuts a chunked body into whole events; an event cut between chunks waits for its end."""

    def __init__(self, max_pending: int) -> None:
        self.max_pending = max_pending  # the longest incomplete event kept in memory
        self.pending = b""
        self.started = False
        self.overflowed = False  # an incomplete event grew past max_pending and was dropped

    def feed(self, chunk: bytes, final: bool) -> list[Event]:
        data, self.pending = self.pending + chunk, b""
        events: list[Event] = []
        if not self.started:
            if not final and len(data) < len(BOM) and BOM.startswith(data):
                self.pending = data  # maybe the start of a BOM: wait to know
                return events
            self.started = True
            if data.startswith(BOM):  # passed on as it is, read as nothing (as clients skip it)
                events.append(Event(BOM, ()))
                data = data[len(BOM):]
        start, lines = 0, []
        for match in LINE.finditer(data):
            text, ending = match.groups()
            if ending == b"\r" and match.end() == len(data) and not final:
                break  # the CR may be the first half of a CRLF in the next chunk
            if text:
                lines.append((text, ending))
                continue
            events.append(Event(data[start:match.end()], tuple(lines)))
            start, lines = match.end(), []
        rest = data[start:]
        if final:
            if rest:  # the body ended inside an event: it is read as far as it goes
                tail = LINE.sub(b"", rest)  # a last line with no ending
                whole = [m.groups() for m in LINE.finditer(rest)] + ([(tail, b"")] if tail else [])
                events.append(Event(rest, tuple((t, e) for t, e in whole if t)))
        elif len(rest) > self.max_pending:
            # Memory stays bounded whatever the upstream sends; the caller decides what a lost
            # event means (the MCP filter withholds the answer, usage counting reads on).
            self.overflowed = True
        else:
            self.pending = rest
        return events
