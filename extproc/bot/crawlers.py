"""Published crawlers: who a user-agent claims to be, and whether its address proves it.

A crawler is *verified* only when its address lies in the ranges its operator publishes; the
same user-agent from anywhere else is spoofed. Operators that publish no machine-readable
ranges (verification by reverse DNS only) cannot be verified here. AI crawlers are a class of
their own so a route can turn them away while search engines keep indexing.

The ranges file has the format of deploy/bot/crawler-ranges.json:
``{"crawlers": {"<operator>": {"user_agent_tokens": [...], "cidrs": [...]}}}``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from extproc.bot.useragent import CaseInsensitive
from extproc.rules.ipset import IPSet

DEFAULT_RANGES = Path(__file__).resolve().parent.parent.parent / "deploy" / "bot" / "crawler-ranges.json"

# User-agent token -> (operator, category). Facts from the operators' documentation.
SEARCH, AI = "search", "ai"
KNOWN_CRAWLERS: dict[str, tuple[str, str]] = {
    "Googlebot": ("googlebot", SEARCH), "Googlebot-Image": ("googlebot", SEARCH),
    "Googlebot-Video": ("googlebot", SEARCH), "Googlebot-News": ("googlebot", SEARCH),
    # Google's special-case crawlers come from other ranges than Googlebot's.
    "Storebot-Google": ("google-special", SEARCH), "AdsBot-Google": ("google-special", SEARCH),
    "bingbot": ("bingbot", SEARCH), "BingPreview": ("bingbot", SEARCH), "adidxbot": ("bingbot", SEARCH),
    "DuckDuckBot": ("duckduckbot", SEARCH), "Applebot": ("applebot", SEARCH),
    "YandexBot": ("yandex", SEARCH), "YandexImages": ("yandex", SEARCH),
    "Baiduspider": ("baidu", SEARCH), "Baiduspider-render": ("baidu", SEARCH), "SeznamBot": ("seznam", SEARCH),
    "Slurp": ("yahoo", SEARCH), "PetalBot": ("huawei", SEARCH), "Qwantbot": ("qwant", SEARCH),
    "GPTBot": ("openai", AI), "OAI-SearchBot": ("openai", AI), "ChatGPT-User": ("openai", AI),
    "ClaudeBot": ("anthropic", AI), "Claude-Web": ("anthropic", AI), "Claude-User": ("anthropic", AI),
    "Claude-SearchBot": ("anthropic", AI), "anthropic-ai": ("anthropic", AI),
    "CCBot": ("ccbot", AI), "Bytespider": ("bytedance", AI), "Amazonbot": ("amazon", AI),
    "cohere-ai": ("cohere", AI), "cohere-training-data-crawler": ("cohere", AI), "Diffbot": ("diffbot", AI),
    "omgili": ("webz", AI), "omgilibot": ("webz", AI), "Google-CloudVertexBot": ("google-special", AI),
    "GoogleOther": ("googlebot", AI), "GoogleOther-Image": ("googlebot", AI), "FacebookBot": ("meta", AI),
    "meta-externalagent": ("meta", AI), "meta-externalfetcher": ("meta", AI),
    "PerplexityBot": ("perplexity", AI), "Perplexity-User": ("perplexity", AI), "DuckAssistBot": ("duckduckbot", AI),
    "YouBot": ("you", AI), "AI2Bot": ("ai2", AI), "Timpibot": ("timpi", AI), "ImagesiftBot": ("imagesift", AI),
    "Applebot-Extended": ("applebot", AI), "MistralAI-User": ("mistral", AI), "PanguBot": ("huawei", AI),
}

VERIFIED, SPOOFED, UNVERIFIABLE = "verified", "spoofed", "unverifiable"


class RangesError(ValueError):
    """The ranges file is missing or malformed; names the file."""


@dataclass(frozen=True, slots=True)
class Claim:
    token: str
    operator: str
    category: str  # SEARCH or AI
    status: str  # VERIFIED, SPOOFED or UNVERIFIABLE


class Catalogue:
    """Compiled once per ranges file; immutable, so a refresh swaps the whole object."""

    def __init__(self, ranges: dict[str, list[str]], tokens: dict[str, tuple[str, str]]) -> None:
        self.networks = {operator: IPSet(cidrs) for operator, cidrs in ranges.items()}
        self.tokens = {token.lower(): entry for token, entry in tokens.items()}
        # Longest first, so "Googlebot-Image" wins over "Googlebot" at the same position.
        alternatives = "|".join(re.escape(t) for t in sorted(self.tokens, key=len, reverse=True))
        self._pattern = CaseInsensitive(rf"(?<![a-z0-9])({alternatives})(?![a-z0-9])")
        self.token_in = lru_cache(maxsize=8192)(self._token_in)  # user-agents repeat; addresses less so

    def _token_in(self, user_agent: str) -> str | None:
        """The (lower-case) token the user-agent names, if any."""
        match = self._pattern.search(user_agent)
        if match is None:
            return None
        named = match.group(1)
        if named in self.tokens:
            return named
        # Unicode case folding matched a spelling lower() does not map to the token (a long s
        # for an s): the token is the one that matches it as the pattern did.
        return next(t for t in self.tokens if re.fullmatch(re.escape(t), named, re.IGNORECASE))

    def claim(self, user_agent: str, source_ip: str) -> Claim | None:
        token = self.token_in(user_agent)
        if token is None:
            return None
        operator, category = self.tokens[token]
        return Claim(token, operator, category, self._status(operator, source_ip))

    def _status(self, operator: str, source_ip: str) -> str:
        networks = self.networks.get(operator)
        if not networks:
            return UNVERIFIABLE
        return VERIFIED if source_ip in networks else SPOOFED  # IPv4-mapped IPv6 counts as IPv4


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    path = Path(path) if path else DEFAULT_RANGES
    try:
        document = json.loads(Path(path).read_text())
        crawlers = document["crawlers"]
        ranges = {op: list(entry.get("cidrs", ())) for op, entry in crawlers.items()}
        tokens = dict(KNOWN_CRAWLERS)
        for operator, entry in crawlers.items():  # tokens the file adds are search crawlers unless known
            for token in entry.get("user_agent_tokens", ()):
                tokens.setdefault(token, (operator, SEARCH))
        return Catalogue(ranges, tokens)
    except OSError as exc:
        raise RangesError(f"{path}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RangesError(f"{path}: not a crawler ranges document: {exc}") from None
