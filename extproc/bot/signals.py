"""Features of one request: what the client claims (user-agent) against how it behaves on the
wire (protocol, header set and order, header values, client hints, TLS fingerprint).

Every value is a float in a fixed order (``FEATURES``), so the model sees the same vector at
training and serving time. Consistency is the point: a browser user-agent over a library's
header order, a Chromium version whose client hints no genuine build sends, an HTTP/2
pseudo-header order of another engine.

Almost every feature follows from a few inputs that a client repeats request after request: its
user-agent and client hints, its header names in order, a few header values. Those features are
computed once per distinct input (``Profiles``); only the path, the cookies, the referer and the
crawler claim are looked at per request.
"""
from __future__ import annotations

import numpy as np

from extproc.bot import clienthints
from extproc.bot.crawlers import SPOOFED, VERIFIED, Claim
from extproc.bot.useragent import ENGINES, KINDS, OSES, Agent
from extproc.core.request import Request

# Headers Envoy or the sidecar add: not part of the client's own set or order.
PROXY_HEADERS = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port",
                           "x-request-id", "x-real-ip", "x-ja3", "x-ja4", "x-envoy-external-address"})
PROXY_PREFIXES = ("x-envoy-", "x-extproc-")
PRESENCE = (
    "user-agent", "accept", "accept-language", "accept-encoding", "cookie", "referer", "origin", "sec-ch-ua",
    "sec-ch-ua-mobile", "sec-ch-ua-platform", "sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest",
    "sec-fetch-user", "upgrade-insecure-requests", "priority", "cache-control", "pragma", "dnt", "sec-gpc",
    "content-type", "if-none-match", "if-modified-since", "x-requested-with", "from", "te", "content-length",
)
POSITIONS = ("user-agent", "accept", "accept-encoding", "accept-language", "cookie", "referer", "sec-ch-ua",
             "sec-fetch-site", "sec-fetch-dest", "upgrade-insecure-requests")
KNOWN = frozenset(PRESENCE) | {"sec-ch-ua-full-version-list", "sec-ch-ua-arch", "sec-ch-ua-model",
                               "sec-ch-ua-bitness", "sec-ch-ua-full-version", "sec-ch-ua-platform-version",
                               "sec-purpose", "purpose", "range", "authorization"}
# HTTP/2 pseudo-header orders of known client stacks; HTTP/1.1 gets Envoy's synthesised order.
PSEUDO_ORDERS = {
    "masp": "chromium", "mpas": "gecko", "mspa": "webkit", "msap": "webkit", "mpsa": "curl", "amps": "go",
    "apms": "http1",
}
EXPECTED_PSEUDO = {"chromium": ("masp",), "gecko": ("mpas",), "webkit": ("mspa", "msap")}
DESTS = ("document", "image", "script", "style", "font", "empty")
SITES = ("none", "same-origin", "same-site", "cross-site")
METHODS = ("GET", "POST", "HEAD")
ANCIENT_CHROMIUM = 100  # released 2022

FEATURES = (
    *(f"ua_{kind}" for kind in KINDS), *(f"engine_{e}" for e in ENGINES), *(f"os_{o}" for o in OSES),
    "ua_mobile", "ua_mozilla", "ua_chromium_ancient",
    "claim_crawler", "claim_ai", "claim_verified", "claim_spoofed",
    *(f"pseudo_{name}" for name in sorted(set(PSEUDO_ORDERS.values()))), "pseudo_other", "pseudo_matches_engine",
    *(f"has_{name}" for name in PRESENCE), *(f"at_{name}" for name in POSITIONS),
    "headers_count", "headers_unknown", "headers_sorted", "cookies_count",
    "accept_any", "accept_html", "accept_json", "accept_image", "encoding_br", "encoding_zstd", "encoding_plain",
    "language_q", "language_count",
    *(f"dest_{d}" for d in DESTS), *(f"site_{s}" for s in SITES),
    "navigate_without_html", "site_none_with_referer", "document_to_api",
    "ch_brands", "ch_grease", "ch_version_matches", "ch_vendor_matches", "ch_platform_matches",
    "ch_mobile_matches", "ch_headless", "ch_without_chromium", "chromium_without_ch",
    "ja3_present", "ja4_present", "ja4_tls13", "ja4_ciphers", "ja4_extensions", "ja4_alpn_h2", "ja4_alpn_h1",
    "ja4_sni",
    *(f"method_{m.lower()}" for m in METHODS), "has_query", "path_api", "authority_is_ip", "plain_http",
)

_PSEUDO_NAMES = tuple(sorted(set(PSEUDO_ORDERS.values())))

# The request's features come in two groups, each computed once per distinct input and kept:
# what follows from the user-agent (with the client hints and pseudo-header order that must fit
# it), a few hundred per worker; and what follows from the header set and a few values, shared
# by every client of one browser build and locale.
AGENT_VALUES = ("user-agent", "sec-ch-ua", "sec-ch-ua-mobile", "sec-ch-ua-platform")
HEADER_VALUES = ("accept", "accept-encoding", "accept-language", "sec-fetch-dest", "sec-fetch-site",
                 "sec-fetch-mode", "x-ja4", "x-forwarded-proto")
PROFILES_KEPT = 4096  # of each group, per worker; first in, first out
# Keys with more parts (headers) or longer values are computed every time: the client chooses
# them, and the cache must not keep megabytes of whatever it sends.
PROFILE_MAX_PARTS = 64
PROFILE_MAX_CHARS = 2048

_AT = {name: index for index, name in enumerate(FEATURES)}
HEADERS_FROM, HINTS_FROM, TLS_FROM = _AT["has_user-agent"], _AT["ch_brands"], _AT["ja3_present"]
CLAIM_AT = _AT["claim_crawler"]  # and the three claim features after it
COOKIES_AT = _AT["cookies_count"]
SITE_NONE_REFERER_AT = _AT["site_none_with_referer"]
DOCUMENT_API_AT = _AT["document_to_api"]
QUERY_AT = _AT["has_query"]
PATH_API_AT = _AT["path_api"]


class Profiles:
    """The request's features: the agent's and the header set's, kept, plus the per-request few."""

    def __init__(self, width: int) -> None:
        self.width = width  # the model's whole input: these features, then the client's behaviour
        self._agents: dict[tuple, np.ndarray] = {}
        self._header_sets: dict[tuple, tuple] = {}

    def vector(self, request: Request, first: dict[str, str], path: str, agent: Agent,
               claim: Claim | None) -> np.ndarray:
        """float32 [1, width]: the request's features, zeros where the behaviour features go.

        first: the first value of each header (what Request.header returns); path: without query.
        """
        key = (request.pseudo_order, *[first.get(name, "") for name in AGENT_VALUES])
        by_agent = self._agents.get(key)
        if by_agent is None:
            by_agent = _keep(self._agents, key, self._agent_template(request, first, agent))
        headers = request.headers
        headers_key = (request.method, request.authority, request.scheme, bool(first.get("x-ja3")),
                       *[first.get(name, "") for name in HEADER_VALUES], *[header[0] for header in headers])
        by_headers = self._header_sets.get(headers_key)
        if by_headers is None:
            by_headers = _keep(self._header_sets, headers_key, self._header_template(request, first))
        headers_template, site_none, document, json_accept = by_headers
        vector = by_agent + headers_template  # a new array; each is zero where the other has features
        row = vector[0]
        if claim is not None:
            row[CLAIM_AT:CLAIM_AT + 4] = _claim(claim)
        if "cookie" in first:
            row[COOKIES_AT] = cookie_count(headers)
        if site_none and first.get("referer"):
            row[SITE_NONE_REFERER_AT] = 1.0
        api_path = path.startswith("/api")
        if document and (api_path or json_accept):
            row[DOCUMENT_API_AT] = 1.0
        if len(path) + 1 < len(request.path):  # a '?' with something after it
            row[QUERY_AT] = 1.0
        if api_path:
            row[PATH_API_AT] = 1.0
        return vector

    def _agent_template(self, request: Request, first: dict[str, str], agent: Agent) -> np.ndarray:
        template = np.zeros((1, self.width), dtype=np.float32)
        template[0, :HEADERS_FROM] = _agent(agent) + _protocol(request, agent)
        template[0, HINTS_FROM:TLS_FROM] = _client_hints(agent, lambda name: first.get(name, ""))
        return template

    def _header_template(self, request: Request, first: dict[str, str]) -> tuple:
        template = np.zeros((1, self.width), dtype=np.float32)
        names = client_headers(request.headers)
        present = set(names)

        def header(name: str) -> str:
            return first.get(name, "")

        template[0, HEADERS_FROM:HINTS_FROM] = ([float(name in present) for name in PRESENCE] + _positions(names)
                                                 + _header_values(header, names, present) + _fetch_metadata(header))
        template[0, TLS_FROM:len(FEATURES)] = _tls(header("x-ja3"), header("x-ja4")) + _target(request, header)
        # What the per-request features need to know of the profile.
        site_none, document = header("sec-fetch-site") == "none", header("sec-fetch-dest") == "document"
        return template, site_none, document, "json" in header("accept")


def _keep(kept: dict, key: tuple, value):
    """Remember value under key unless the key is large; the oldest goes when full."""
    size = sum(len(part) for part in key if isinstance(part, str))
    if len(key) <= PROFILE_MAX_PARTS and size <= PROFILE_MAX_CHARS:
        if len(kept) >= PROFILES_KEPT:
            del kept[next(iter(kept))]
        kept[key] = value
    return value


def cookie_count(headers) -> int:
    """Cookies in all cookie headers, counted as Request.cookies parses them (no header map built)."""
    count = 0
    for name, value in headers:
        if name == "cookie":
            for item in value.split(";"):
                count += item.strip() not in ("", "=")
    return count


def client_headers(headers) -> list[str]:
    return [name for name, _ in headers if name not in PROXY_HEADERS and not name.startswith(PROXY_PREFIXES)]


_ONE_HOTS: dict[tuple[str, ...], dict[str, list[float]]] = {}


def _one_hot(value: str, options: tuple[str, ...]) -> list[float]:
    table = _ONE_HOTS.get(options)
    if table is None:
        table = _ONE_HOTS[options] = {o: [float(o == other) for other in options] for o in options}
    return table.get(value) or [0.0] * len(options)


def _agent(agent: Agent) -> list[float]:
    return [
        *_one_hot(agent.kind, KINDS), *_one_hot(agent.engine, ENGINES), *_one_hot(agent.os, OSES),
        # Not the version itself: trees would learn which versions the training tools happened to
        # use and misjudge unseen ones. Only "years out of date", which genuine users rarely are.
        float(agent.mobile), float(agent.mozilla), float(0 < agent.chromium_major < ANCIENT_CHROMIUM),
        0.0, 0.0, 0.0, 0.0,  # the crawler claim: per request, as it depends on the address
    ]


def _claim(claim: Claim) -> tuple[float, float, float, float]:
    return 1.0, float(claim.category == "ai"), float(claim.status == VERIFIED), float(claim.status == SPOOFED)


def _protocol(request: Request, agent: Agent) -> list[float]:
    order = "".join(name[1] for name in request.pseudo_order if len(name) > 1)
    stack = PSEUDO_ORDERS.get(order, "")
    expected = EXPECTED_PSEUDO.get(agent.engine)
    matches = 0.5 if expected is None or stack == "http1" else float(order in expected)
    return [*_one_hot(stack, _PSEUDO_NAMES), float(not stack), matches]


def _positions(names: list[str]) -> list[float]:
    count = len(names)
    index = {name: i for i, name in reversed(list(enumerate(names)))}
    return [index[name] / count if name in index else -1.0 for name in POSITIONS]


def _header_values(header, names: list[str], present: set[str]) -> list[float]:
    accept = header("accept")
    encoding = header("accept-encoding")
    language = header("accept-language")
    plain_encoding = encoding.replace(" ", "") in ("gzip,deflate", "gzip", "identity", "gzip,deflate,br")
    return [
        float(len(names)), float(len(present - KNOWN)), float(len(names) >= 4 and names == sorted(names)),
        0.0,  # cookies: per request
        float(accept.strip() == "*/*"), float("text/html" in accept), float("json" in accept), float("image/" in accept),
        float("br" in encoding), float("zstd" in encoding), float(plain_encoding),
        float(";q=" in language), float(language.count(",") + 1 if language else 0),
    ]


def _fetch_metadata(header) -> list[float]:
    dest, site, mode = header("sec-fetch-dest"), header("sec-fetch-site"), header("sec-fetch-mode")
    return [
        *_one_hot(dest, DESTS), *_one_hot(site, SITES),
        float(mode == "navigate" and "text/html" not in header("accept")),
        0.0, 0.0,  # a referer with site none, a document from an API: per request
    ]


def _client_hints(agent: Agent, header) -> list[float]:
    raw = header("sec-ch-ua")
    chromium_ua = agent.engine == "chromium"
    if not raw:
        return [0.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.0, 0.0, float(chromium_ua)]
    listed = clienthints.brands(raw)
    mobile = header("sec-ch-ua-mobile")
    platform = header("sec-ch-ua-platform")
    return [
        float(len(listed)),
        clienthints.grease_consistent(listed),
        float(clienthints.chromium_version(listed) == agent.chromium_major),
        clienthints.vendor_consistent(listed, agent.family),
        float(clienthints.platform_name(platform) == agent.os) if platform else 0.5,
        float((mobile == "?1") == agent.mobile) if mobile else 0.5,
        float("Headless" in raw),
        float(not chromium_ua),
        0.0,
    ]


def _tls(ja3: str, ja4: str) -> list[float]:
    # JA4 "t13d1516h2_...": protocol, TLS version, SNI (d) or not (i), cipher and extension
    # counts, first ALPN. Counts and ALPN say which TLS stack built the ClientHello.
    head = ja4.partition("_")[0]
    if len(head) != 10 or not head[4:8].isdigit():
        return [float(bool(ja3)), 0.0, 0.0, -1.0, -1.0, 0.0, 0.0, 0.0]
    return [float(bool(ja3)), 1.0, float(head[1:3] == "13"), float(head[4:6]), float(head[6:8]),
            float(head[8:10] == "h2"), float(head[8:10] == "h1"), float(head[3] == "d")]


def _target(request: Request, header) -> list[float]:
    host = request.host
    is_ip = bool(host) and (host.replace(".", "").isdigit() or host.startswith("["))
    forwarded_proto = header("x-forwarded-proto") or request.scheme
    return [
        *_one_hot(request.method, METHODS), 0.0, 0.0,  # query, API path: per request
        float(is_ip), float(forwarded_proto == "http"),
    ]
