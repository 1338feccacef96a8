"""Which requests can run a challenge page: a browser loading a page in its window.

Everything else (API calls, fetch/XHR, images, scripts, iframes, websockets, anything whose
``Accept`` does not ask for HTML) cannot show an interstitial to anyone, so it is never challenged.
Fetch metadata decides where the browser sends it (secure contexts); over plain HTTP, Chromium
sends none, and ``Accept`` decides alone.
"""
from __future__ import annotations

API_MARKS = ("authorization", "x-requested-with")  # set by programs, never by a page load


def is_navigation(method: str, first: dict[str, str]) -> bool:
    """``first``: the first value of each header, names lower-case."""
    if method != "GET" or "text/html" not in first.get("accept", "").lower():
        return False
    if any(mark in first for mark in API_MARKS) or first.get("upgrade"):
        return False
    mode = first.get("sec-fetch-mode")
    if mode is not None and mode != "navigate":
        return False
    dest = first.get("sec-fetch-dest")
    return dest is None or dest == "document"
