"""Filtering list answers (tools/list, prompts/list, resources/list) down to what a caller may use.

The answer is either one JSON-RPC message (``application/json``) or a server-sent-event stream
(``text/event-stream``) whose ``data:`` lines carry messages; both are rewritten in place, other
events and fields untouched.
"""
from __future__ import annotations

from typing import Callable

import orjson

LISTS = {"tools/list": ("tools", "tool", "name"), "prompts/list": ("prompts", "prompt", "name"),
         "resources/list": ("resources", "resource", "uri")}

INTERNAL_ERROR = -32603  # JSON-RPC
Keep = Callable[[str, str], bool]  # (kind, name) -> may the caller see it


def filter_answer(body: bytes, content_type: str, keep: Keep) -> tuple[bytes | None, int, int]:
    """(new body or None when unchanged, items listed, items shown)."""
    if content_type.startswith("text/event-stream"):
        return _filter_events(body, keep)
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, 0, 0
    changed, listed, shown = _filter_message(message, keep)
    return (_dump(message) if changed else None), listed, shown


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


def _filter_events(body: bytes, keep: Keep) -> tuple[bytes | None, int, int]:
    lines, changed, listed, shown = body.split(b"\n"), False, 0, 0
    for index, line in enumerate(lines):
        if not line.startswith(b"data:"):
            continue
        try:
            message = orjson.loads(line[5:])
        except orjson.JSONDecodeError:
            continue
        did, seen, kept = _filter_message(message, keep)
        listed, shown = listed + seen, shown + kept
        if did:
            lines[index], changed = b"data: " + _dump(message), True
    return (b"\n".join(lines) if changed else None), listed, shown
