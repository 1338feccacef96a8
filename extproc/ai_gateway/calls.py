"""LLM API requests: which API a path serves, and what the gateway needs from the body.

OpenAI-compatible (chat completions, legacy completions, responses, embeddings) and
Anthropic-compatible (messages, legacy complete) APIs. The endpoint is the end of the path as a
lenient upstream routes it (any prefix, percent-decoded, any case, trailing slashes, dot segments
resolved), so ``/proxy/V1/chat/completions/`` is a chat completion; Azure OpenAI's
``/openai/deployments/NAME/...`` and the old ``/engines/NAME/...`` name the model in the path, which is
the model those upstreams use. From the body (read by extproc.core.json_body): the model, the texts by
role, tool-call arguments, prompts given as token ids, the stream flag and a token estimate. A body
whose shape the gateway cannot read the way the upstream would raises BadShape.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import orjson

from extproc.core.json_body import MISSING, AmbiguousName, member

# LLM API bodies nest a few levels (messages, content blocks, tool schemas); deeper than this
# they are refused: reading, redacting and re-serialising them recurses (Python stops near 1000
# frames, orjson writes at most 254 levels), and what cannot be read cannot be scanned.
MAX_DEPTH = 128
CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text; corrected from `usage` afterwards
DEFAULT_OUTPUT_TOKENS = 256

# The last segments of the path -> the API; two-segment endpoints are matched first.
ENDPOINTS = {("chat", "completions"): "openai.chat", ("completions",): "openai.completions",
             ("responses",): "openai.responses", ("embeddings",): "openai.embeddings",
             ("messages",): "anthropic.messages", ("complete",): "anthropic.complete"}
MODEL_SEGMENTS = frozenset({"deployments", "engines"})  # .../deployments/NAME/chat/completions
SEPARATORS = re.compile(r"[/\\]")


class BadShape(ValueError):
    """The body does not have the shape of its endpoint's API, so the gateway cannot tell what the
    upstream would read from it."""


@dataclass(frozen=True)
class Endpoint:
    api: str
    path_model: str | None = None  # the model the path names (Azure deployments), which the upstream uses


@dataclass
class LlmCall:
    api: str  # openai.chat | openai.completions | openai.responses | openai.embeddings | anthropic.messages | ...
    model: str  # "" when the body names none (the upstream's default model)
    texts: list[tuple[str, str]] = field(default_factory=list)  # (role, text): system, user, assistant, tool
    tool_arguments: list[str] = field(default_factory=list)
    token_prompts: int = 0  # prompt tokens given as token ids: counted, not readable as text
    stream: bool = False
    max_output_tokens: int = 0
    too_deep: bool = False  # nested beyond MAX_DEPTH: not read, to be refused

    @property
    def prompt_chars(self) -> int:
        """Characters of text, and CHARS_PER_TOKEN for each token given as an id."""
        return sum(len(text) for _, text in self.texts) + self.token_prompts * CHARS_PER_TOKEN

    def estimated_tokens(self) -> int:
        output = 0 if self.api == "openai.embeddings" else (self.max_output_tokens or DEFAULT_OUTPUT_TOKENS)
        return self.prompt_chars // CHARS_PER_TOKEN + 1 + output


def endpoint(path: str) -> Endpoint | None:
    """The LLM API a request path serves, or None when it is none the gateway reads."""
    segments = _segments(path)
    lowered = [segment.lower() for segment in segments]
    for size in (2, 1):
        api = ENDPOINTS.get(tuple(lowered[-size:])) if len(lowered) >= size else None
        if api is not None:
            named = [i for i in range(len(lowered) - size - 1) if lowered[i] in MODEL_SEGMENTS]
            return Endpoint(api, segments[named[-1] + 1] if named else None)
    return None


def _segments(path: str) -> list[str]:
    """The path's segments as the most lenient server routes it: query and fragment cut,
    percent-decoded, backslashes as slashes, ';' parameters dropped, empty and '.' segments
    skipped, '..' resolved."""
    resolved: list[str] = []
    for segment in SEPARATORS.split(unquote(path.partition("?")[0].partition("#")[0])):
        segment = segment.partition(";")[0]
        if segment == "..":
            if resolved:
                resolved.pop()
        elif segment not in ("", "."):
            resolved.append(segment)
    return resolved


def parse_call(where: Endpoint, document: object) -> LlmCall:
    """The call a JSON document makes on an endpoint; raises BadShape when its shape is not the
    API's (a member name in another case included: a case-insensitive upstream reads it)."""
    try:
        return _read(where, document)
    except AmbiguousName as exc:
        raise BadShape(f"member {exc} in another case") from exc


def _read(where: Endpoint, document: object) -> LlmCall:
    if not isinstance(document, dict):
        raise BadShape("not an object")
    model = member(document, "model")
    if model is not None and not isinstance(model, str):
        raise BadShape("model")
    if where.path_model is not None:
        if model is not None and model != where.path_model:
            raise BadShape("the path and the body name different models")
        model = where.path_model
    if _nested_beyond(document, MAX_DEPTH):
        return LlmCall(where.api, model or "", too_deep=True)
    call = LlmCall(where.api, model or "", stream=member(document, "stream") in (True, "true"))
    READERS[where.api](document, call)
    return call


def _nested_beyond(document: object, limit: int) -> bool:
    """True when objects and arrays nest more than limit levels; iterative, containers only."""
    # Any: JSON containers, dispatched on type() (exact types, as the parser makes them)
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, level = stack.pop()
        if level > limit:
            return True
        for child in node.values() if type(node) is dict else node:
            if type(child) is dict or type(child) is list:
                stack.append((child, level + 1))
    return False


def _text_of(content: object) -> str:
    """Message content as text: a string, the text parts of a list of content blocks, or of one
    block on its own (which lenient upstreams take for a list of one)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return _text_of(_part_text(content))
    if isinstance(content, list):
        return "\n".join(_text_of(_part_text(part)) if isinstance(part, dict) else str(part) for part in content)
    return ""


def _part_text(part: dict) -> object:
    text = member(part, "text", MISSING)
    return member(part, "content", "") if text is MISSING else text


def _list(obj: dict, name: str) -> list:
    """A member that must be an array when present."""
    value = member(obj, name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadShape(name)
    return value


def _optional_text(obj: dict, name: str, role: str, call: LlmCall) -> None:
    """A member that must be a string when present, read as the given role's text."""
    value = member(obj, name)
    if value is not None and not isinstance(value, str):
        raise BadShape(name)
    if value:
        call.texts.append((role, value))


def _objects(obj: dict, name: str) -> list[dict]:
    """A member that must be an array of objects when present (messages, input items)."""
    items = _list(obj, name)
    if not all(isinstance(item, dict) for item in items):
        raise BadShape(name)
    return items


def _role(message: dict) -> str:
    role = member(message, "role", "user")
    if not isinstance(role, str):
        raise BadShape("role")
    return role.casefold()  # "User" is compared as "user": a lenient template may read it so


def _arguments(value: object) -> str | None:
    """Tool-call arguments as JSON text: a string as sent, an object or array written out (a
    lenient upstream serialises it rather than refusing it)."""
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _openai_chat(document: dict, call: LlmCall) -> None:
    call.max_output_tokens = _int(member(document, "max_completion_tokens")) or _int(member(document, "max_tokens"))
    for message in _objects(document, "messages"):
        call.texts.append((_role(message), _text_of(member(message, "content"))))
        for tool_call in _list(message, "tool_calls"):
            function = member(tool_call, "function") if isinstance(tool_call, dict) else None
            arguments = _arguments(member(function, "arguments")) if isinstance(function, dict) else None
            if arguments is not None:
                call.tool_arguments.append(arguments)


def _openai_responses(document: dict, call: LlmCall) -> None:
    call.max_output_tokens = _int(member(document, "max_output_tokens"))
    _optional_text(document, "instructions", "system", call)
    items = member(document, "input")
    if isinstance(items, str):
        call.texts.append(("user", items))
        return
    for item in _objects(document, "input"):
        kind = member(item, "type")
        if kind == "function_call":
            arguments = _arguments(member(item, "arguments"))
            if arguments is not None:
                call.tool_arguments.append(arguments)
        elif kind == "function_call_output":
            call.texts.append(("tool", _text_of(member(item, "output"))))
        else:
            call.texts.append((_role(item), _text_of(member(item, "content"))))


def _openai_completions(document: dict, call: LlmCall) -> None:
    call.max_output_tokens = _int(member(document, "max_tokens"))
    _prompt(member(document, "prompt"), call)
    _optional_text(document, "suffix", "user", call)


def _openai_embeddings(document: dict, call: LlmCall) -> None:
    _prompt(member(document, "input"), call)


def _prompt(value: object, call: LlmCall) -> None:
    """A prompt or embedding input: a string, strings, token ids, or lists of token ids."""
    if value is None:
        return
    if isinstance(value, str):
        call.texts.append(("user", value))
    elif not isinstance(value, list):
        raise BadShape("prompt")
    elif all(isinstance(item, str) for item in value):
        call.texts.extend(("user", item) for item in value)
    elif all(_is_token(item) for item in value):
        call.token_prompts += len(value)
    elif all(isinstance(item, list) and all(_is_token(token) for token in item) for item in value):
        call.token_prompts += sum(len(item) for item in value)
    else:
        raise BadShape("prompt")


def _is_token(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _anthropic_messages(document: dict, call: LlmCall) -> None:
    call.max_output_tokens = _int(member(document, "max_tokens"))
    system = member(document, "system")
    if system:
        call.texts.append(("system", _text_of(system)))
    for message in _objects(document, "messages"):
        content = member(message, "content")
        blocks = content if isinstance(content, list) else ()
        for block in blocks:
            kind = member(block, "type") if isinstance(block, dict) else None
            if kind == "tool_use":
                call.tool_arguments.append(orjson.dumps(member(block, "input")).decode())
            elif kind == "tool_result":
                call.texts.append(("tool", _text_of(member(block, "content"))))
        text = [block for block in blocks if isinstance(block, dict) and member(block, "type") == "text"] \
            if isinstance(content, list) else content
        call.texts.append((_role(message), _text_of(text)))


def _anthropic_complete(document: dict, call: LlmCall) -> None:
    call.max_output_tokens = _int(member(document, "max_tokens_to_sample"))
    _optional_text(document, "prompt", "user", call)


def _int(value: object) -> int:
    """A positive count as lenient upstreams (pydantic's lax mode) read it: 100, 100.0 or "100"."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


READERS = {"openai.chat": _openai_chat, "openai.completions": _openai_completions,
           "openai.responses": _openai_responses, "openai.embeddings": _openai_embeddings,
           "anthropic.messages": _anthropic_messages, "anthropic.complete": _anthropic_complete}
