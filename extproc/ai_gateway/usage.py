"""Token counts from an LLM response: a JSON body, or a server-sent-event stream whose events
carry usage (OpenAI's final chunk with ``stream_options.include_usage``; Anthropic's
``message_start`` and ``message_delta``)."""
from __future__ import annotations

import orjson

from extproc.core.sse import EventSplitter


MAX_EVENT = 1 << 20  # the longest event held while its end arrives; usage events are small


def tokens_used(body: bytes, content_type: str) -> int | None:
    """Total tokens the call consumed, None when the response does not say."""
    if content_type.startswith("text/event-stream"):
        usage = StreamUsage()
        usage.feed(body, True)
        return usage.total
    try:
        return _total(orjson.loads(body))
    except orjson.JSONDecodeError:
        return None


class StreamUsage:
    """Usage read from an event stream as it goes by, however long the stream: only an event not
    yet complete is held. Keeping the stream's first 8 MB instead never saw the final usage event
    of a longer answer, so making the model talk a lot kept its tokens off the budget."""

    def __init__(self) -> None:
        self.events = EventSplitter(MAX_EVENT)
        self._total, self._seen = 0, False

    @property
    def total(self) -> int | None:
        return self._total if self._seen else None

    def feed(self, chunk: bytes, final: bool) -> None:
        if not final and self._content_only(chunk):
            return  # whole events, none about usage: nothing to read or to keep
        for event in self.events.feed(chunk, final):
            self._read(event.data)
        self.events.overflowed = False  # an event too long to hold is content, not usage: read on

    def _content_only(self, chunk: bytes) -> bool:
        """Most chunks of a stream are content events, each whole: with no event pending before
        it and a blank line ending it, a chunk that never says "usage" needs no reading."""
        return (self.events.started and not self.events.pending_size and b"usage" not in chunk
                and chunk.endswith((b"\n\n", b"\r\n\r\n")))

    def _read(self, data: bytes | None) -> None:
        if not data or b"usage" not in data:  # most events are content deltas: not parsed
            return
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        found = _total(event.get("message", event) if isinstance(event, dict) else event)
        if found is not None:
            # Anthropic reports input (message_start) and output (message_delta) apart; OpenAI's
            # last usage chunk carries the total.
            self._total = self._total + found if _is_anthropic(event) else found
            self._seen = True


def _is_anthropic(event: object) -> bool:
    return isinstance(event, dict) and event.get("type") in ("message_start", "message_delta")


def _total(document: object) -> int | None:
    usage = document.get("usage") if isinstance(document, dict) else None
    if not isinstance(usage, dict):
        return None
    if isinstance(usage.get("total_tokens"), int):
        return usage["total_tokens"]
    counts = [usage.get(k) for k in ("input_tokens", "output_tokens", "prompt_tokens", "completion_tokens")]
    numbers = [c for c in counts if isinstance(c, int)]
    return sum(numbers) if numbers else None
