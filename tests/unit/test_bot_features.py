"""The bot feature vector: the cached, per-profile assembly gives the vector of the plain definition
(every value read through the Request API), on requests chosen to trip the caches up."""
from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

from extproc.bot import signals
from extproc.bot.behaviour import ClientTracker
from extproc.bot.crawlers import load_catalogue
from extproc.bot.features import BEHAVIOUR_AT, FEATURE_NAMES, Featurizer
from extproc.bot.useragent import CaseInsensitive, parse_agent
from extproc.core.request import Request
from tests.support.bot_requests import (
    CHROME_UA,
    GOOGLEBOT_IP,
    GOOGLEBOT_UA,
    chrome_navigation,
    crawler,
    library,
    safari_navigation,
)


def reference(request: Request, catalogue) -> list[float]:
    """The request's features as defined, each value read through the Request API, nothing kept."""
    header = request.header
    agent = parse_agent(header("user-agent"))
    claim = catalogue.claim(agent.text, request.source_ip) if agent.text else None
    names = signals.client_headers(request.headers)
    present = set(names)
    values = (signals._agent(agent) + signals._protocol(request, agent)
              + [float(n in present) for n in signals.PRESENCE] + signals._positions(names)
              + signals._header_values(header, names, present) + signals._fetch_metadata(header) + signals._client_hints(agent, header)
              + signals._tls(header("x-ja3"), header("x-ja4")) + signals._target(request, header))
    at = signals._AT
    if claim is not None:
        values[at["claim_crawler"]:at["claim_crawler"] + 4] = signals._claim(claim)
    values[at["cookies_count"]] = float(len(request.cookies))
    values[at["site_none_with_referer"]] = float(header("sec-fetch-site") == "none" and bool(header("referer")))
    api_like = request.url_path.startswith("/api") or "json" in header("accept")
    values[at["document_to_api"]] = float(header("sec-fetch-dest") == "document" and api_like)
    values[at["has_query"]] = float(bool(request.query))
    values[at["path_api"]] = float(request.url_path.startswith("/api"))
    return values


def with_headers(request: Request, *extra: tuple[str, str], path: str | None = None, **changes) -> Request:
    return replace(request, headers=request.headers + extra, path=path or request.path, **changes)


def replaced(request: Request, name: str, value: str) -> Request:
    return replace(request, headers=tuple((n, value if n == name else v) for n, v in request.headers))


# For each input a kept profile depends on, a value that changes some feature.
OTHER_VALUES = {
    "user-agent": CHROME_UA.replace("Windows NT 10.0; Win64; x64", "X11; Linux x86_64"),
    "sec-ch-ua": '"Chromium";v="1"',
    "sec-ch-ua-mobile": "?1", "sec-ch-ua-platform": '"Linux"', "accept": "application/json", "accept-encoding": "gzip",
    "accept-language": "de", "sec-fetch-dest": "image", "sec-fetch-site": "cross-site", "sec-fetch-mode": "cors",
    "x-ja3": "", "x-ja4": "t13d4312h1_c7886603b240_b26ce05bbdd6", "x-forwarded-proto": "http",
}


def tricky_requests() -> list[Request]:
    chrome = chrome_navigation("/p/1")
    long_value = "x" * (signals.PROFILE_MAX_CHARS + 1)
    fingerprinted = with_headers(chrome, ("x-ja3", "769,47-53,0-10,29-23,0"),
                                 ("x-ja4", "t13d1516h2_8daaf6152771_02713d6af862"))
    assert set(OTHER_VALUES) == {*signals.AGENT_VALUES, *signals.HEADER_VALUES, "x-ja3"}
    return [
        fingerprinted,
        *(replaced(fingerprinted, name, value) for name, value in OTHER_VALUES.items()),  # same header names
        replace(fingerprinted, method="POST"),
        replaced(fingerprinted, "x-forwarded-proto", ""),
        replace(replaced(fingerprinted, "x-forwarded-proto", ""), scheme="http"),  # only the scheme differs
        replace(fingerprinted, pseudo_order=(":method", ":path", ":authority", ":scheme")),
        chrome,
        chrome_navigation("/p/2?"),  # a '?' without a query
        chrome_navigation("/p/3?variant=9"),
        chrome_navigation("/api/v1/cart"),  # a document from an API path
        with_headers(chrome, ("cookie", "sid=1; _ga=2"), ("cookie", " ; = ;==; c")),  # two cookie headers
        with_headers(chrome, ("cookie", "")),
        with_headers(chrome, ("referer", "")),  # present, empty: no referer
        with_headers(chrome, ("referer", "https://www.shop.example/")),  # with sec-fetch-site none
        with_headers(chrome, ("accept", "application/json")),  # a second accept: the first counts
        replace(chrome, headers=(("accept", "application/json"),) + chrome.headers),  # ... now this one
        with_headers(chrome, ("x-ja3", "")),
        with_headers(chrome, ("x-ja3", "769,47-53,0-10,29-23,0"), ("x-ja4", "t13d1516h2_8daaf6152771_02713d6af862")),
        with_headers(chrome, ("x-ja4", "t13dXX16h2_garbage")),
        replace(chrome, headers=chrome.headers[:3] + (("x-envoy-internal", "true"),) + chrome.headers[3:]),
        with_headers(chrome, ("x-long", long_value)),  # too long to keep
        with_headers(chrome, *((f"x-h{n}", "1") for n in range(signals.PROFILE_MAX_PARTS))),  # too many to keep
        with_headers(chrome, ("x-forwarded-proto", "http")),
        replace(chrome, authority="[2001:db8::1]:443"),
        replace(chrome, authority="192.0.2.10", method="HEAD"),
        safari_navigation("/c/shoes?sort=price"),
        library("python-requests/2.31.0", "/api/v1/products?page=2"),
        library(CHROME_UA, "/"),  # a browser user-agent over a library's headers
        library("Mozilla/5.0 (compatible; M\u00fcllerBot/1.0; +https://example.org)"),  # not ASCII
        library("BAIDU\u017fPIDER/2.0"),  # long s: re.IGNORECASE finds Baiduspider, lower() would not
        library("HeadlessChrome/120.0 Safari/537.36"),
        crawler(GOOGLEBOT_UA, GOOGLEBOT_IP),
        crawler(GOOGLEBOT_UA.replace("Googlebot", "GOOGLEBOT"), GOOGLEBOT_IP),
        crawler(GOOGLEBOT_UA, "198.51.100.66"),  # the same profile, another address: spoofed
        library(""),
    ]


def test_kept_profiles_give_the_vectors_of_the_plain_definition():
    catalogue = load_catalogue()
    featurizer = Featurizer(catalogue, ClientTracker())
    requests = tricky_requests()
    for t, request in enumerate(requests + requests[::-1]):  # again, from the kept profiles
        vector = featurizer.facts(replace(request, received_at=float(t))).vector
        assert vector.dtype == np.float32 and vector.shape == (1, len(FEATURE_NAMES))
        expected = np.asarray(reference(request, catalogue), dtype=np.float32)
        mismatched = [signals.FEATURES[i] for i in np.flatnonzero(vector[0, :BEHAVIOUR_AT] != expected)]
        assert not mismatched, (request.path, request.headers[-1], mismatched)


def test_the_vector_is_the_requests_own_not_a_kept_one():
    """A kept template is copied: writing the per-request features must not change it."""
    featurizer = Featurizer(load_catalogue(), ClientTracker())
    with_query = featurizer.facts(chrome_navigation("/api/p?x=1", t=1.0)).vector
    plain = featurizer.facts(chrome_navigation("/p", t=2.0)).vector
    at = signals._AT
    assert with_query[0, at["has_query"]] == 1.0 and with_query[0, at["document_to_api"]] == 1.0
    assert plain[0, at["has_query"]] == 0.0 and plain[0, at["document_to_api"]] == 0.0


@pytest.mark.parametrize("pattern", [r"headless|electron/", r"(?<![a-z0-9])(googlebot|baiduspider)(?![a-z0-9])",
                                     r"bot\b|https?://|@"])
@pytest.mark.parametrize("text", ["Mozilla/5.0 HeadlessChrome/1", "ELECTRON/3", "xGooglebot/2", "GoogleBot/2.1",
                                  "Baidu\u017fpider", "robot_ok", "a bot.", "HTTP://x", "mail@x", "\u212aelvin bot",
                                  "", "nothing here"])
def test_case_insensitive_search_matches_as_ignorecase_does(pattern, text):
    ours, theirs = CaseInsensitive(pattern).search(text), re.compile(pattern, re.IGNORECASE).search(text)
    assert (ours and ours.span()) == (theirs and theirs.span())
