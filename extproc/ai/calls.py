"""LLM API request bodies: OpenAI-compatible (chat completions, responses, embeddings) and
Anthropic-compatible (messages). What the gateway needs from each: the model, the texts by role,
tool-call arguments, the stream flag, and a token estimate. Unknown shapes are not an error:
they are left to the generic layers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import orjson

# LLM API bodies nest a few levels (messages, content blocks, tool schemas); deeper than this
# they are refused: reading, redacting and re-serialising them recurses (Python stops near 1000
# frames, orjson writes at most 254 levels), and what cannot be read cannot be scanned.
MAX_DEPTH = 128
CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text; corrected from `usage` afterwards
DEFAULT_OUTPUT_TOKENS = 256


@dataclass
class LlmCall:
    api: str  # openai.chat | openai.responses | openai.embeddings | anthropic.messages
    model: str
    texts: list[tuple[str, str]] = field(default_factory=list)  # (role, text): system, user, assistant, tool
    tool_arguments: list[str] = field(default_factory=list)
    stream: bool = False
    max_output_tokens: int = 0
    too_deep: bool = False  # nested beyond MAX_DEPTH: not read, to be refused

    @property
    def prompt_chars(self) -> int:
        return sum(len(text) for _, text in self.texts)

    def estimated_tokens(self) -> int:
        output = 0 if self.api == "openai.embeddings" else (self.max_output_tokens or DEFAULT_OUTPUT_TOKENS)
        return self.prompt_chars // CHARS_PER_TOKEN + 1 + output


def parse_call(path: str, body: bytes) -> LlmCall | None:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("model"), str):
        return None
    path = path.partition("?")[0].rstrip("/")
    for suffix, reader in READERS.items():
        if path.endswith(suffix):
            if _nested_beyond(document, MAX_DEPTH):
                return LlmCall(API_OF[reader], document["model"], too_deep=True)
            return reader(document)
    return None


def _nested_beyond(document: object, limit: int) -> bool:
    """True when objects and arrays nest more than limit levels; iterative, containers only."""
    stack = [(document, 1)]
    while stack:
        node, level = stack.pop()
        if level > limit:
            return True
        for child in node.values() if type(node) is dict else node:
            if type(child) is dict or type(child) is list:
                stack.append((child, level + 1))
    return False


def _text_of(content: object) -> str:
    """Message content as text: a string, or the text parts of a list of content blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_text_of(part.get("text", part.get("content", ""))) if isinstance(part, dict) else str(part)
                         for part in content)
    return ""


def _openai_chat(document: dict) -> LlmCall:
    call = LlmCall("openai.chat", document["model"], stream=bool(document.get("stream")),
                   max_output_tokens=_int(document.get("max_completion_tokens") or document.get("max_tokens")))
    for message in document.get("messages") or ():
        if isinstance(message, dict):
            call.texts.append((str(message.get("role", "user")), _text_of(message.get("content"))))
            for tool_call in message.get("tool_calls") or ():
                arguments = (tool_call.get("function") or {}).get("arguments") if isinstance(tool_call, dict) else None
                if isinstance(arguments, str):
                    call.tool_arguments.append(arguments)
    return call


def _openai_responses(document: dict) -> LlmCall:
    call = LlmCall("openai.responses", document["model"], stream=bool(document.get("stream")),
                   max_output_tokens=_int(document.get("max_output_tokens")))
    if isinstance(document.get("instructions"), str):
        call.texts.append(("system", document["instructions"]))
    items = document.get("input")
    if isinstance(items, str):
        call.texts.append(("user", items))
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict):
            continue
        if item.get("type") == "function_call" and isinstance(item.get("arguments"), str):
            call.tool_arguments.append(item["arguments"])
        elif item.get("type") == "function_call_output":
            call.texts.append(("tool", _text_of(item.get("output"))))
        else:
            call.texts.append((str(item.get("role", "user")), _text_of(item.get("content"))))
    return call


def _openai_embeddings(document: dict) -> LlmCall:
    inputs = document.get("input")
    texts = [inputs] if isinstance(inputs, str) else [t for t in inputs or () if isinstance(t, str)]
    return LlmCall("openai.embeddings", document["model"], texts=[("user", t) for t in texts])


def _anthropic_messages(document: dict) -> LlmCall:
    call = LlmCall("anthropic.messages", document["model"], stream=bool(document.get("stream")),
                   max_output_tokens=_int(document.get("max_tokens")))
    if document.get("system"):
        call.texts.append(("system", _text_of(document["system"])))
    for message in document.get("messages") or ():
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        for block in content if isinstance(content, list) else ():
            if isinstance(block, dict) and block.get("type") == "tool_use":
                call.tool_arguments.append(orjson.dumps(block.get("input")).decode())
            elif isinstance(block, dict) and block.get("type") == "tool_result":
                call.texts.append(("tool", _text_of(block.get("content"))))
        call.texts.append((str(message.get("role", "user")), _text_of(
            [b for b in content if isinstance(b, dict) and b.get("type") == "text"] if isinstance(content, list) else content)))
    return call


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


READERS = {"/chat/completions": _openai_chat, "/responses": _openai_responses, "/embeddings": _openai_embeddings,
           "/messages": _anthropic_messages}
API_OF = {_openai_chat: "openai.chat", _openai_responses: "openai.responses", _openai_embeddings: "openai.embeddings",
          _anthropic_messages: "anthropic.messages"}
