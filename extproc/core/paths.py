"""The canonical path: the one spelling of a request path that routes and rules decide on.

Envoy normalises dot segments and merged slashes, but an application server reads more
spellings as the same path: Tomcat and Spring drop ``;`` parameters (``/internal;x/report``,
``/..;/``), ASP.NET Core and Express route case-insensitively, IIS reads ``\\`` as ``/``. A
policy that matched the spelling Envoy passed would protect ``/internal/`` and not
``/Internal/``. So the path is read the way the most lenient of those servers reads it:

1. percent-decoded once (undecodable bytes kept as surrogates, like every request field);
2. ``\\`` is a separator;
3. each segment loses its ``;`` parameters;
4. empty and ``.`` segments go, ``..`` removes the segment before it;
5. for case-insensitive matching (``fold``): NFKC, then case folded through upper case, so the
   dotless ``ı`` or the Kelvin sign match what .NET's invariant comparison matches.

A path with no single reading is not canonical (``CanonicalPath.problem`` says why): ``..``
above the root, a NUL or control character, a structural character (``/ \\ ; . %``) still
percent-encoded after the one decoding, which a server that decodes twice reads differently, or a
dot segment at all. Envoy resolves plain ``.`` and ``..`` before the sidecar sees the path, so
one that is left was disguised (``..;``, ``%2e%2e``, ``..\\``): Envoy routed the request on a path
the application will not read (``/api/..;/internal/report`` takes the ``/api/`` route there).
The policy decides what happens to those (``inspection.uncanonical_path``, deny by default).
"""
from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple
from urllib.parse import unquote

TEXT_ERRORS = "surrogateescape"
# After one decoding, an encoded separator, dot, parameter mark or percent is a second layer.
DOUBLE_ENCODED = re.compile(r"%(?:2[fFeE5]|5[cC]|3[bB]|00)")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Anything that could make the path read otherwise; most paths have none and are canonical as sent.
NOT_PLAIN = re.compile(r"[%;\\\x00-\x1f\x7f]|//|/\.")


class CanonicalPath(NamedTuple):
    path: str
    problem: str = ""  # why the path has no single reading; "" when it has one


def canonical(raw_path: str, fold: bool = False) -> CanonicalPath:
    """The canonical form of a path as sent (still percent-encoded, no query string)."""
    if raw_path[:1] == "/" and raw_path.isascii() and not NOT_PLAIN.search(raw_path):
        return CanonicalPath(raw_path.lower() if fold else raw_path)
    decoded = unquote(raw_path, errors=TEXT_ERRORS)
    problem = ""
    if CONTROL.search(decoded):
        problem = "control_character"
    elif DOUBLE_ENCODED.search(decoded):
        problem = "double_encoded"
    if fold:
        decoded = fold_case(decoded)
    segments: list[str] = []
    for segment in decoded.replace("\\", "/").split("/"):
        segment = segment.partition(";")[0]
        if segment == "":
            continue
        if segment in (".", ".."):
            problem = problem or ("above_root" if segment == ".." and not segments else "dot_segment")
            if segment == ".." and segments:
                segments.pop()
            continue
        segments.append(segment)
    path = "/" + "/".join(segments)
    if segments and decoded.endswith(("/", "/.", "/..")) and path != "/":
        path += "/"
    return CanonicalPath(path, problem)


def fold_case(text: str) -> str:
    """Case-insensitive key: compatibility forms unified, then upper and lower case mapped."""
    if text.isascii():
        return text.lower()
    try:
        text = unicodedata.normalize("NFKC", text)
    except UnicodeError:  # pragma: no cover - NFKC takes any str, surrogates included
        pass
    return text.upper().lower()


def prefix_matcher(prefix: str, fold: bool):
    """A test of a canonical path against a configured prefix.

    A prefix ending in ``/`` names a directory: it covers the directory itself too
    (``/internal/`` covers ``/internal``), as the servers behind route it. Without the slash it is
    a plain string prefix, as Envoy reads it (``/api`` covers ``/apis``)."""
    wanted = canonical(prefix, fold).path if prefix.startswith("/") else prefix
    if fold:
        wanted = fold_case(wanted)
    if prefix.endswith("/") and wanted != "/":
        directory = wanted.rstrip("/")
        return lambda path: path == directory or path.startswith(directory + "/")
    return lambda path: path.startswith(wanted)
