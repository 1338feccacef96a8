"""The challenge page's report, judged: what the page's script saw of the browser it ran in,
against what the request that carried the report says about it.

The report is base64 JSON in one request header (the probe needs no body, so the route never
buffers bodies for it): ``{"n": nonce, "c": proof-of-work counter, "s": signals}``. Signals:
``wd`` navigator.webdriver; ``art`` automation artefacts found on window/document (chromedriver's
``cdc_`` properties, Selenium, Playwright, Puppeteer, PhantomJS globals); ``cdp`` whether a console
call read an Error's ``stack`` (only a DevTools-protocol client with Runtime enabled does: the
console message is serialised for it); ``ua`` navigator.userAgent; ``pf`` navigator.platform;
``uad`` navigator.userAgentData (brands, mobile, platform) where the browser has it; ``hl`` headless
traits (no window size, no languages, a Chrome without ``window.chrome``).
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import orjson

from extproc.bot import clienthints

MAX_REPORT_CHARS = 8192
# navigator.platform for the OS a user agent names (what every current browser reports).
PLATFORMS = (("Windows", ("Win",)), ("Android", ("Linux", "Android")), ("iPhone", ("iPhone",)),
             ("iPad", ("iPad", "MacIntel")), ("Macintosh", ("Mac",)), ("CrOS", ("Linux",)), ("Linux", ("Linux",)))
HEADLESS_TRAITS = frozenset({"headless-ua", "no-window", "no-languages", "no-chrome-object"})


@dataclass(frozen=True, slots=True)
class Report:
    nonce: str
    counter: object
    signals: dict


def read_report(value: str) -> Report | None:
    """The report in the probe header, or None when it is not one."""
    if len(value) > MAX_REPORT_CHARS:
        return None
    try:
        data = orjson.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("n"), str) or not isinstance(data.get("s"), dict):
        return None
    return Report(data["n"], data.get("c"), data["s"])


def failures(signals: dict, first: dict[str, str]) -> tuple[str, ...]:
    """Why this browser is automated, from its signals; () when nothing says so."""
    found = []
    if signals.get("wd") is not False:  # missing counts: every current browser defines it
        found.append("webdriver")
    if signals.get("art"):
        found.append("automation-artefact")
    if signals.get("cdp"):
        found.append("devtools-protocol")
    user_agent = first.get("user-agent", "")
    if signals.get("ua") != user_agent:
        found.append("user-agent-mismatch")
    elif not _platform_matches(user_agent, signals.get("pf")):
        found.append("platform-mismatch")
    if not _hints_match(signals.get("uad"), first):
        found.append("client-hints-mismatch")
    traits = signals.get("hl")
    if not isinstance(traits, list) or HEADLESS_TRAITS.intersection(t for t in traits if isinstance(t, str)):
        found.append("headless")
    return tuple(found)


def _platform_matches(user_agent: str, platform: object) -> bool:
    if not isinstance(platform, str):
        return False
    for token, platforms in PLATFORMS:
        if token in user_agent:
            return platform.startswith(platforms)
    return True  # an OS the table does not know: nothing to compare


def _hints_match(data: object, first: dict[str, str]) -> bool:
    """navigator.userAgentData against the sec-ch-ua headers the same browser sent."""
    if data is None:
        # Firefox and Safari have none; Chromium has none outside secure contexts, where it
        # sends no client hints either.
        return "sec-ch-ua" not in first
    if not isinstance(data, dict):
        return False
    listed = first.get("sec-ch-ua")
    if listed is not None and sorted(b for b, _ in clienthints.brands(listed)) != sorted(map(str, data.get("b") or ())):
        return False
    mobile = first.get("sec-ch-ua-mobile")
    if mobile is not None and (mobile == "?1") != bool(data.get("m")):
        return False
    platform = first.get("sec-ch-ua-platform")
    return platform is None or platform.strip().strip('"') == data.get("p")
