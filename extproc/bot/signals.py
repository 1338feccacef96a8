"""Features of one request: what the client claims (user-agent) against how it behaves on the
wire (protocol, header set and order, header values, client hints, TLS fingerprint).

Every value is a float in a fixed order (``FEATURES``), so the model sees the same vector at
training and serving time. Consistency is the point: a browser user-agent over a library's
header order, a Chromium version whose client hints no genuine build sends, an HTTP/2
pseudo-header order of another engine.
"""
from __future__ import annotations

from extproc.bot import clienthints
from extproc.bot.crawlers import SPOOFED, VERIFIED, Claim
from extproc.bot.useragent import ENGINES, KINDS, OSES, Agent
from extproc.request import Request

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


def client_headers(request: Request) -> list[str]:
    return [name for name, _ in request.headers
            if name not in PROXY_HEADERS and not name.startswith(PROXY_PREFIXES)]


def features(request: Request, agent: Agent, claim: Claim | None) -> list[float]:
    names = client_headers(request)
    present = set(names)
    header = request.header
    values = _agent(agent, claim)
    values += _protocol(request, agent)
    values += [float(name in present) for name in PRESENCE]
    values += _positions(names)
    values += _header_values(request, names, present)
    values += _fetch_metadata(request, header)
    values += _client_hints(agent, header)
    values += _tls(header("x-ja3"), header("x-ja4"))
    values += _target(request)
    return values


_ONE_HOTS: dict[tuple[str, ...], dict[str, list[float]]] = {}


def _one_hot(value: str, options: tuple[str, ...]) -> list[float]:
    table = _ONE_HOTS.get(options)
    if table is None:
        table = _ONE_HOTS[options] = {o: [float(o == other) for other in options] for o in options}
    return table.get(value) or [0.0] * len(options)


def _agent(agent: Agent, claim: Claim | None) -> list[float]:
    return [
        *_one_hot(agent.kind, KINDS), *_one_hot(agent.engine, ENGINES), *_one_hot(agent.os, OSES),
        # Not the version itself: trees would learn which versions the training tools happened to
        # use and misjudge unseen ones. Only "years out of date", which genuine users rarely are.
        float(agent.mobile), float(agent.mozilla), float(0 < agent.chromium_major < ANCIENT_CHROMIUM),
        float(claim is not None), float(claim is not None and claim.category == "ai"),
        float(claim is not None and claim.status == VERIFIED), float(claim is not None and claim.status == SPOOFED),
    ]


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


def _header_values(request: Request, names: list[str], present: set[str]) -> list[float]:
    accept = request.header("accept")
    encoding = request.header("accept-encoding")
    language = request.header("accept-language")
    plain_encoding = encoding.replace(" ", "") in ("gzip,deflate", "gzip", "identity", "gzip,deflate,br")
    return [
        float(len(names)), float(len(present - KNOWN)), float(len(names) >= 4 and names == sorted(names)),
        float(len(request.cookies)),
        float(accept.strip() == "*/*"), float("text/html" in accept), float("json" in accept), float("image/" in accept),
        float("br" in encoding), float("zstd" in encoding), float(plain_encoding),
        float(";q=" in language), float(language.count(",") + 1 if language else 0),
    ]


def _fetch_metadata(request: Request, header) -> list[float]:
    dest, site, mode = header("sec-fetch-dest"), header("sec-fetch-site"), header("sec-fetch-mode")
    accept = header("accept")
    api_like = request.url_path.startswith("/api") or "json" in accept
    return [
        *_one_hot(dest, DESTS), *_one_hot(site, SITES),
        float(mode == "navigate" and "text/html" not in accept),
        float(site == "none" and bool(header("referer"))),
        float(dest == "document" and api_like),
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


def _target(request: Request) -> list[float]:
    host = request.host
    is_ip = bool(host) and (host.replace(".", "").isdigit() or host.startswith("["))
    forwarded_proto = request.header("x-forwarded-proto") or request.scheme
    return [
        *_one_hot(request.method, METHODS), float(bool(request.query)), float(request.url_path.startswith("/api")),
        float(is_ip), float(forwarded_proto == "http"),
    ]
