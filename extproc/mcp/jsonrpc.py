"""JSON-RPC 2.0 as MCP's Streamable HTTP carries it: one message or a batch per POST body.

Parsing never raises: a body that is not valid JSON-RPC comes back as a ``Malformed`` with the
JSON-RPC error code to answer with.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
FORBIDDEN, RATE_LIMITED, UNAUTHORIZED = -32001, -32029, -32002  # server-defined range
MAX_BATCH = 64


@dataclass(frozen=True)
class Message:
    id: object  # None for notifications (and the client's responses carry the server's id)
    method: str  # "" for a response the client sends back (to sampling, elicitation, ...)
    params: dict

    @property
    def is_notification(self) -> bool:
        return self.method != "" and self.id is None

    @property
    def target(self) -> str:
        """The tool, resource or prompt a message names ('' when none)."""
        return str(self.params.get("name") or self.params.get("uri") or "")

    def arguments(self) -> tuple[bytes | None, object]:
        """(canonical JSON, value) of the arguments a call carries, for limits, scanning and audit.

        The JSON is None when the value nests deeper than orjson writes (254 levels; it reads
        1024): such arguments cannot be measured or scanned, and are refused as too deep."""
        value = self.params.get("arguments")
        if value is None:
            return b"", None
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS), value
        except orjson.JSONEncodeError:
            return None, value


@dataclass(frozen=True)
class Malformed:
    code: int
    message: str


def parse(body: bytes) -> tuple[list[Message], bool] | Malformed:
    """(messages, was_batch), or why the body is not JSON-RPC."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return Malformed(PARSE_ERROR, "Parse error")
    batch = isinstance(document, list)
    items = document if batch else [document]
    if not items or len(items) > MAX_BATCH:
        return Malformed(INVALID_REQUEST, "Invalid Request: empty or oversized batch")
    messages = []
    for item in items:
        message = _message(item)
        if isinstance(message, Malformed):
            return message
        messages.append(message)
    return messages, batch


def _message(item: object) -> Message | Malformed:
    if not isinstance(item, dict) or item.get("jsonrpc") != "2.0":
        return Malformed(INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 object")
    method, params = item.get("method", ""), item.get("params", {})
    message_id = item.get("id")
    if not isinstance(method, str) or (method == "" and "result" not in item and "error" not in item):
        return Malformed(INVALID_REQUEST, "Invalid Request: no method")
    if message_id is not None and not isinstance(message_id, (str, int)) or isinstance(message_id, bool):
        return Malformed(INVALID_REQUEST, "Invalid Request: bad id")
    if not isinstance(params, dict):
        return Malformed(INVALID_PARAMS, "Invalid params: an object is expected")
    if isinstance(params.get("name"), (dict, list)) or isinstance(params.get("uri"), (dict, list)):
        # The target a permission is checked against is a name; a nested one is no MCP request
        # (and its text form would be an arbitrary, possibly 1000-level deep, repr).
        return Malformed(INVALID_PARAMS, "Invalid params: name and uri must be strings")
    return Message(message_id, method, params)


def error(message_id: object, code: int, text: str, request_id: str) -> dict:
    return {"jsonrpc": "2.0", "id": message_id, "error": {"code": code, "message": text,
                                                         "data": {"request_id": request_id}}}


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def depth(value: object, limit: int) -> int:
    """Nesting depth of a JSON value, counted iteratively and only up to limit + 1."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, level)
            if deepest > limit:
                return deepest
            stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest
