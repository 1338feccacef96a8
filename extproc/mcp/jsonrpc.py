"""JSON-RPC 2.0 as MCP's Streamable HTTP carries it: one message or a batch per POST body.

Parsing never raises: a body that is not valid JSON-RPC comes back as a ``Malformed`` with the
JSON-RPC error code to answer with. The body is read as every server would read it
(extproc.core.json_body), and a call's target is the member the MCP schema names for its method, the
one servers act on: ``params.name`` for tools/call and prompts/get, ``params.uri`` for
resources/read, subscribe and unsubscribe. A call that carries the other member with another
value, or a resource URI a server could resolve elsewhere than its text says, is refused.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import unquote

import orjson

from extproc.core.json_body import MISSING, AmbiguousName, Unreadable, member, read

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
FORBIDDEN, RATE_LIMITED, UNAUTHORIZED = -32001, -32029, -32002  # server-defined range
MAX_BATCH = 64
# method -> (kind of target a permission names, the params member the server reads it from)
TARGETS = {"tools/call": ("tool", "name"), "prompts/get": ("prompt", "name"), "resources/read": ("resource", "uri"),
           "resources/subscribe": ("resource", "uri"), "resources/unsubscribe": ("resource", "uri")}
URI_SEPARATORS = re.compile(r"[/\\?#]")


@dataclass(frozen=True)
class Message:
    id: object  # None for notifications (and the client's responses carry the server's id)
    method: str  # "" for a response the client sends back (to sampling, elicitation, ...)
    params: dict
    target: str = ""  # the tool, resource or prompt the message names ('' when none)
    argument_value: object = None  # params.arguments

    @property
    def is_notification(self) -> bool:
        return self.method != "" and self.id is None

    def arguments(self) -> tuple[bytes | None, object]:
        """(canonical JSON, value) of the arguments a call carries, for limits, scanning and audit.

        The JSON is None when the value nests deeper than orjson writes (254 levels; it reads
        1024): such arguments cannot be measured or scanned, and are refused as too deep."""
        value = self.argument_value
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


def parse(body: bytes, content_types: tuple[str, ...] = ()) -> tuple[list[Message], bool] | Malformed:
    """(messages, was_batch), or why the body is not JSON-RPC (content_types: the request's
    Content-Type values, whose charset must be UTF-8)."""
    document = read(body, content_types)
    if isinstance(document, Unreadable):
        return Malformed(PARSE_ERROR, "Parse error")
    batch = isinstance(document, list)
    items = document if isinstance(document, list) else [document]
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
    if not isinstance(item, dict):
        return Malformed(INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 object")
    try:
        return _read_message(item)
    except AmbiguousName:  # "Method", "URI": what a case-insensitive server reads, another ignores
        return Malformed(INVALID_REQUEST, "Invalid Request: a member name in another case")


def _read_message(item: dict) -> Message | Malformed:
    if member(item, "jsonrpc") != "2.0":
        return Malformed(INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 object")
    method, params, message_id = member(item, "method", ""), member(item, "params", {}), member(item, "id")
    answers = member(item, "result", MISSING) is not MISSING or member(item, "error", MISSING) is not MISSING
    if not isinstance(method, str) or (method == "" and not answers):
        return Malformed(INVALID_REQUEST, "Invalid Request: no method")
    if message_id is not None and not isinstance(message_id, (str, int)) or isinstance(message_id, bool):
        return Malformed(INVALID_REQUEST, "Invalid Request: bad id")
    if not isinstance(params, dict):
        return Malformed(INVALID_PARAMS, "Invalid params: an object is expected")
    target = _target(method, params)
    if isinstance(target, Malformed):
        return target
    return Message(message_id, method, params, target, member(params, "arguments"))


def _target(method: str, params: dict) -> str | Malformed:
    name, uri = member(params, "name"), member(params, "uri")
    if isinstance(name, (dict, list)) or isinstance(uri, (dict, list)):
        # The target a permission is checked against is a name; a nested one is no MCP request
        # (and its text form would be an arbitrary, possibly 1000-level deep, repr).
        return Malformed(INVALID_PARAMS, "Invalid params: name and uri must be strings")
    governed = TARGETS.get(method)
    if governed is None:  # not checked against a permission: named for the audit only
        return str(name or uri or "")
    kind, field = governed
    target, other = (name, uri) if field == "name" else (uri, name)
    if not isinstance(target, str) or not target:
        return Malformed(INVALID_PARAMS, f"Invalid params: {field} must be a non-empty string")
    if other is not None and other != target:
        # The server reads one member, a proxy or a lenient server may read the other.
        return Malformed(INVALID_PARAMS, "Invalid params: name and uri disagree")
    if kind == "resource" and _resolves_elsewhere(target):
        return Malformed(INVALID_PARAMS, "Invalid params: uri with dot segments")
    return target


def _resolves_elsewhere(uri: str) -> bool:
    """A URI with dot segments, as written or percent-encoded once or twice (backslashes count
    as separators): a server that resolves its path, or maps it onto files, may read another
    resource than the permission patterns matched (``repo://public/..%2Fprivate/key``)."""
    for text in dict.fromkeys((uri, unquote(uri), unquote(unquote(uri)))):
        if any(segment.partition(";")[0] in (".", "..") for segment in URI_SEPARATORS.split(text)):
            return True
    return False


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
