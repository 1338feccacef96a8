"""Filtering list answers (tools/list, prompts/list, resources/list) down to what a caller may use.

The answer is either one JSON-RPC message (``application/json``) or a server-sent-event stream
(``text/event-stream``) whose events carry messages; both are rewritten in place, other events
and fields untouched. Events are read as clients read them (extproc.core.sse): a message spread over
several ``data:`` lines, or cut between two chunks of the body, is filtered like any other. What
cannot be read (data that is not JSON, an event or answer too long to hold) raises, and the
layer's ``on_error`` decides: the answer is withheld (closed) or passed (open).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import orjson

from extproc.core.sse import Event, EventSplitter, field

LISTS = {"tools/list": ("tools", "tool", "name"), "prompts/list": ("prompts", "prompt", "name"),
         "resources/list": ("resources", "resource", "uri")}

INTERNAL_ERROR = -32603  # JSON-RPC
Keep = Callable[[str, str], bool]  # (kind, name) -> may the caller see it
MAX_PENDING = 8 << 20  # the longest answer (JSON) or event (SSE) held while the rest arrives


class Unfiltered(Exception):
    """Filtering failed; ``unfiltered`` is every byte not yet passed on (this chunk and what was
    held back from earlier ones), which a layer set to fail open lets through."""

    def __init__(self, unfiltered: bytes) -> None:
        super().__init__("list answer could not be filtered")
        self.unfiltered = unfiltered


class AnswerFilter:
    """Filters one answer fed chunk by chunk (BUFFERED sends it whole, STREAMED in pieces): the
    bytes to send in place of each chunk, holding back what cannot be judged yet."""

    def __init__(self, content_type: str, keep: Keep) -> None:
        self.keep = keep
        self.events = EventSplitter(MAX_PENDING) if content_type.startswith("text/event-stream") else None
        self.held = b""  # a JSON answer waits for its end
        self._read: Sequence[Event] = ()  # the events the current chunk completed (for a failure)
        self.listed = self.shown = 0

    def feed(self, chunk: bytes, final: bool) -> bytes:
        # What was not sent, for a filter that fails open. Copied ahead only when the splitter may
        # drop it (an event about to outgrow the cap); otherwise it is rebuilt from the events read.
        events = self.events
        before = self.held if events is None else (
            events.pending if events.pending_size + len(chunk) > MAX_PENDING else None)
        self._read = ()
        try:
            return self._feed(chunk, final)
        except Exception as exc:
            if before is not None:
                unsent = before + chunk
            else:  # before is None only with a splitter
                assert events is not None
                read: Sequence[Event] = self._read  # what _feed read before it failed (not the () set above)
                unsent = b"".join(event.raw for event in read) + events.pending
            raise Unfiltered(unsent) from exc

    def _feed(self, chunk: bytes, final: bool) -> bytes:
        if self.events is None:
            self.held += chunk
            if len(self.held) > MAX_PENDING:
                raise ValueError(f"a list answer longer than {MAX_PENDING} bytes")
            if not final:
                return b""
            body, self.held = self.held, b""
            message = orjson.loads(body)  # not JSON: raises, as the caller cannot be shown it unfiltered
            changed, listed, shown = _filter_message(message, self.keep)
            self.listed, self.shown = self.listed + listed, self.shown + shown
            return _dump(message) if changed else body
        events = self._read = self.events.feed(chunk, final)
        if self.events.overflowed:
            raise ValueError(f"an event longer than {MAX_PENDING} bytes")
        return b"".join(self._event(event) for event in events)

    def _event(self, event: Event) -> bytes:
        data = event.data
        if data is None or not data.strip():
            return event.raw  # comments, ids, retry, an empty priming event: no message to filter
        message = orjson.loads(data)
        changed, listed, shown = _filter_message(message, self.keep)
        self.listed, self.shown = self.listed + listed, self.shown + shown
        if not changed:
            return event.raw
        # The same event with one data line holding the filtered message where its first was.
        ending = event.lines[0][1] or b"\n"
        out, placed = [], False
        for text, line_ending in event.lines:
            if field(text)[0] != b"data":
                out.append(text + (line_ending or ending))
            elif not placed:
                out.append(b"data: " + _dump(message) + (line_ending or ending))
                placed = True
        blank = event.raw[len(b"".join(t + e for t, e in event.lines)):]  # the blank line, if it came
        return b"".join(out) + blank


def filter_answer(body: bytes, content_type: str, keep: Keep) -> tuple[bytes | None, int, int]:
    """A whole answer: (new body or None when unchanged, items listed, items shown)."""
    answer = AnswerFilter(content_type, keep)
    rewritten = answer.feed(body, True)
    return (None if rewritten == body else rewritten), answer.listed, answer.shown


def _dump(message: object) -> bytes:
    """The filtered answer; when an entry the caller may see nests deeper than orjson writes
    (254 levels), an error in its place. Raising here let the unfiltered answer through, hidden
    tools included: a failed filter must not show what it was to hide."""
    try:
        return orjson.dumps(message)
    except orjson.JSONEncodeError:
        items = message if isinstance(message, list) else [message]
        errors = [{"jsonrpc": "2.0", "id": item.get("id") if isinstance(item, dict) else None,
                   "error": {"code": INTERNAL_ERROR, "message": "List answer too deeply nested to filter"}}
                  for item in items]
        return orjson.dumps(errors if isinstance(message, list) else errors[0])


def _filter_message(message: object, keep: Keep) -> tuple[bool, int, int]:
    messages = message if isinstance(message, list) else [message]
    changed, listed, shown = False, 0, 0
    for item in messages:
        result = item.get("result") if isinstance(item, dict) else None
        if not isinstance(result, dict):
            continue
        for key, kind, name_field in LISTS.values():
            entries = result.get(key)
            if isinstance(entries, list):
                kept = [e for e in entries if isinstance(e, dict) and keep(kind, str(e.get(name_field, "")))]
                listed, shown = listed + len(entries), shown + len(kept)
                if len(kept) != len(entries):
                    result[key], changed = kept, True
    return changed, listed, shown
