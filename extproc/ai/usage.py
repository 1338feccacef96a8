"""Token counts from an LLM response: a JSON body, or a server-sent-event stream whose events
carry usage (OpenAI's final chunk with ``stream_options.include_usage``; Anthropic's
``message_start`` and ``message_delta``)."""
from __future__ import annotations

import orjson


def tokens_used(body: bytes, content_type: str) -> int | None:
    """Total tokens the call consumed, None when the response does not say."""
    if content_type.startswith("text/event-stream"):
        return _from_events(body)
    try:
        return _total(orjson.loads(body))
    except orjson.JSONDecodeError:
        return None


def _from_events(body: bytes) -> int | None:
    total, seen = 0, False
    for line in body.split(b"\n"):
        if not line.startswith(b"data:") or line.strip() == b"data: [DONE]":
            continue
        try:
            event = orjson.loads(line[5:])
        except orjson.JSONDecodeError:
            continue
        found = _total(event.get("message", event) if isinstance(event, dict) else event)
        if found is not None:
            total, seen = (total + found, True) if _is_anthropic(event) else (found, True)
    return total if seen else None


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
