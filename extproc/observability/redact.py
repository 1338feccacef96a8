"""Credentials out of records: the values of a URL's sensitive parameters become ``REDACTED``.

Spans, audit records and log lines carry paths and URIs (an MCP resource, a path with
``;jsessionid=``); a credential in one of them would live on wherever those records go. Every record
that carries a URL passes it through ``redact_url`` first.

A parameter is sensitive when its name, lower-cased with ``-`` read as ``_`` and percent-decoded,
contains one of the fragments below (``reset_token``, ``X-Amz-Signature``, ``client_secret``...):
redacting a harmless ``promo_code`` too costs less than keeping one token. More fragments come from
``EXTPROC_REDACT_PARAMS`` (comma-separated), read at start.
"""
from __future__ import annotations

import os
import re
from urllib.parse import unquote_plus

REDACTED = "REDACTED"
DEFAULT_FRAGMENTS = (
    "token", "secret", "password", "passwd", "pwd", "key", "signature", "sig", "auth", "credential",
    "session", "sid", "code", "reset", "otp", "jwt", "ticket", "nonce", "saml", "assertion",
)
# name=value after '?', '&', ';' (path parameters: ;jsessionid=) or '#' (#access_token= of OAuth).
_PARAM = re.compile(r"(?P<lead>[?&;#])(?P<name>[^=&;?#]*)=(?P<value>[^&;#]*)")
# The password of a URI's user information: scheme://user:password@host.
_USERINFO = re.compile(r"(?P<head>//[^/?#@:]*):(?P<password>[^/?#@]*)@")


def fragments_from_env(environ=os.environ) -> tuple[str, ...]:
    extra = (part.strip().lower().replace("-", "_") for part in environ.get("EXTPROC_REDACT_PARAMS", "").split(","))
    return DEFAULT_FRAGMENTS + tuple(part for part in extra if part)


_fragments = fragments_from_env()


def is_sensitive(name: str, fragments: tuple[str, ...] | None = None) -> bool:
    normal = unquote_plus(name, errors="replace").lower().replace("-", "_")
    return any(fragment in normal for fragment in (fragments or _fragments))


def redact_url(text: str, fragments: tuple[str, ...] | None = None) -> str:
    """``text`` with each sensitive parameter's value and any URI password replaced by REDACTED."""
    if "@" in text:
        text = _USERINFO.sub(lambda match: f"{match['head']}:{REDACTED}@", text)
    if "=" not in text:  # the common case: a plain path, nothing to look at
        return text

    def replace(match: re.Match) -> str:
        value, rest = match["value"], ""
        if match["lead"] == ";":  # a path parameter ends at the next segment or the query
            cut = next((i for i, char in enumerate(value) if char in "/?"), len(value))
            value, rest = value[:cut], redact_url(value[cut:], fragments)
        if is_sensitive(match["name"], fragments):
            value = REDACTED
        return f"{match['lead']}{match['name']}={value}{rest}"

    return _PARAM.sub(replace, text)
