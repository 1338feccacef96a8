"""User-agent strings to the facts the bot layer reasons about, cached per distinct string.

Parsing is ua-parser (its Rust matcher): families, versions and operating systems follow its
well-kept regex corpus. On top of that we decide what kind of client the string claims to be and
which browser engine it implies, because the engine decides which other headers must be there.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import ua_parser
from ua_parser import Domain

from extproc.core.text import library_text


class CaseInsensitive:
    """re.IGNORECASE search of a lower-case pattern. ASCII text (user-agents, nearly always) is
    lower-cased and searched case-sensitively: the same matches, 4-10 times faster. Other text
    takes re.IGNORECASE, whose Unicode case folding lower() does not reproduce."""

    def __init__(self, pattern: str) -> None:
        self.folded = re.compile(pattern)
        self.ignoring_case = re.compile(pattern, re.IGNORECASE)

    def search(self, text: str) -> re.Match | None:
        """A match in text.lower() for ASCII text: the same positions, its groups lower-case."""
        return self.folded.search(text.lower()) if text.isascii() else self.ignoring_case.search(text)


# Families that are browsers a person drives. Anything else that parses is a tool or a crawler.
BROWSER_FAMILIES = frozenset({
    "Chrome", "Chrome Mobile", "Chrome Mobile iOS", "Chrome Mobile WebView", "Chromium", "Edge", "Edge Mobile",
    "Firefox", "Firefox Mobile", "Firefox iOS", "Safari", "Mobile Safari", "Mobile Safari UI/WKWebView",
    "Google", "Opera", "Opera Mobile", "Opera Touch", "Samsung Internet", "Brave", "Vivaldi", "Yandex Browser",
    "UC Browser", "DuckDuckGo Mobile", "AOL Desktop Gold Browser", "Whale", "Silk", "MiuiBrowser",
})
HEADLESS = CaseInsensitive(r"headless|phantomjs|electron/|puppeteer|playwright")
BOTLIKE = CaseInsensitive(r"bot\b|crawl|spider|scrap|fetch|scan|monitor|https?://|\+http|@")
CHROMIUM_TOKEN = re.compile(r"\bChrom(?:e|ium)/(\d+)")
MAX_PARSED_CHARS = 512
OS_NAMES = {"Windows": "windows", "Mac OS X": "mac", "Linux": "linux", "Ubuntu": "linux", "Fedora": "linux",
            "Android": "android", "iOS": "ios", "Chrome OS": "chromeos"}
KINDS = ("browser", "headless", "tool", "botlike", "empty")
ENGINES = ("chromium", "gecko", "webkit")
OSES = ("windows", "mac", "linux", "android", "ios", "chromeos")


@dataclass(frozen=True, slots=True)
class Agent:
    text: str
    family: str  # ua-parser's family, e.g. "Chrome Mobile", "Python Requests", "Other"
    kind: str  # one of KINDS: what the string claims to be
    engine: str  # one of ENGINES for browsers, else ""
    major: int  # the family's major version, 0 when unknown
    chromium_major: int  # the Chrome/NNN token's version (Edge, Opera, Samsung carry one), else 0
    os: str  # one of OSES, else ""
    mobile: bool
    mozilla: bool  # starts with Mozilla/5.0, as every current browser's does


def parse_agent(text: str) -> Agent:
    # Only the head is read: real user-agents are far shorter, and the cache must not keep
    # megabytes of whatever a client sends.
    return _parse(text[:MAX_PARSED_CHARS])


@lru_cache(maxsize=8192)
def _parse(text: str) -> Agent:
    if not text.strip():
        return Agent(text, "", "empty", "", 0, 0, "", False, False)
    result = ua_parser.parser(library_text(text), Domain.USER_AGENT | Domain.OS)  # devices are not needed
    family = result.user_agent.family if result.user_agent else "Other"
    os_name = OS_NAMES.get(result.os.family, "") if result.os else ""
    chromium = CHROMIUM_TOKEN.search(text)
    return Agent(
        text=text,
        family=family,
        kind=_kind(text, family),
        engine=_engine(family, os_name, bool(chromium)),
        major=_int(result.user_agent.major) if result.user_agent else 0,
        chromium_major=int(chromium.group(1)) if chromium else 0,
        os=os_name,
        mobile="Mobile" in text,  # what sec-ch-ua-mobile reports: tablets say ?0
        mozilla=text.startswith("Mozilla/5.0 ("),
    )


def _kind(text: str, family: str) -> str:
    if HEADLESS.search(text):
        return "headless"
    if family in BROWSER_FAMILIES and text.startswith("Mozilla/"):
        return "browser"
    return "botlike" if BOTLIKE.search(text) else "tool"


def _engine(family: str, os_name: str, has_chromium_token: bool) -> str:
    if family not in BROWSER_FAMILIES:
        return ""
    if os_name == "ios" or family in ("Safari", "Mobile Safari", "Mobile Safari UI/WKWebView"):
        return "webkit"  # every iOS browser runs on WebKit, whatever its name
    if family.startswith("Firefox"):
        return "gecko"
    return "chromium" if has_chromium_token else ""


def _int(text: str | None) -> int:
    try:
        return int(text) if text else 0
    except ValueError:
        return 0
