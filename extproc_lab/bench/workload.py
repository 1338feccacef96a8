"""The benchmark's request mix and policy, as ext_proc messages (in-process) and as HTTP/1.1 bytes.

A realistic mix rather than one request repeated: values vary from request to request (the attack
layer's memo must not answer everything), clients come back with their own user agent and cookie
(the bot layer's per-client state builds up as in production), and a few requests are attacks.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import yaml

from extproc.wire.messages import request_body, request_headers
from extproc.wire.pb import external_processor_pb2 as pb
from extproc.local.stack import DEMO_POLICY

# Share of each kind in the mix; MCP calls go to the bench policy's extra `mcp` route.
MIX = (("GET page", 0.50), ("POST JSON", 0.20), ("POST form", 0.15), ("MCP call", 0.10), ("attack", 0.05))
SERVICE_TOKEN = (("x-access-client-id", "demo-client.access"), ("x-access-client-secret", "demo-secret-change-me-before-real-use"))
CHROME_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/135.0.0.0 Safari/537.36"
CHROME_CH = '"Google Chrome";v="135", "Not-A.Brand";v="8", "Chromium";v="135"'
FIREFOX_UA = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:135.0) Gecko/20100101 Firefox/135.0"
# Headers in the order each browser sends them, for a page load and for a fetch() of the page's
# script, in-site (the bot layer judges the order and the client hints). None: filled per request.
BROWSERS = {
    "chrome": (
        (("sec-ch-ua", CHROME_CH), ("sec-ch-ua-mobile", "?0"), ("sec-ch-ua-platform", '"Windows"'),
         ("upgrade-insecure-requests", "1"), ("user-agent", CHROME_UA), ("accept", None),
         ("sec-fetch-site", "same-origin"), ("sec-fetch-mode", "navigate"), ("sec-fetch-user", "?1"),
         ("sec-fetch-dest", "document"), ("referer", "https://shop.example/"),
         ("accept-encoding", "gzip, deflate, br, zstd"), ("accept-language", None), ("cookie", None),
         ("priority", "u=0, i")),
        (("sec-ch-ua-platform", '"Windows"'), ("user-agent", CHROME_UA), ("sec-ch-ua", CHROME_CH),
         ("content-type", None), ("sec-ch-ua-mobile", "?0"), ("accept", None), ("origin", "https://shop.example"),
         ("sec-fetch-site", "same-origin"), ("sec-fetch-mode", "cors"), ("sec-fetch-dest", "empty"),
         ("referer", "https://shop.example/"), ("accept-encoding", "gzip, deflate, br, zstd"),
         ("accept-language", None), ("cookie", None), ("priority", "u=1, i")),
    ),
    "firefox": (
        (("user-agent", FIREFOX_UA), ("accept", None), ("accept-language", None),
         ("accept-encoding", "gzip, deflate, br, zstd"), ("referer", "https://shop.example/"), ("cookie", None),
         ("upgrade-insecure-requests", "1"), ("sec-fetch-dest", "document"), ("sec-fetch-mode", "navigate"),
         ("sec-fetch-site", "same-origin"),
         ("sec-fetch-user", "?1"), ("priority", "u=0, i"), ("te", "trailers")),
        (("user-agent", FIREFOX_UA), ("accept", None), ("accept-language", None),
         ("accept-encoding", "gzip, deflate, br, zstd"), ("referer", "https://shop.example/"),
         ("content-type", None), ("origin", "https://shop.example"), ("cookie", None), ("sec-fetch-dest", "empty"),
         ("sec-fetch-mode", "cors"), ("sec-fetch-site", "same-origin"), ("priority", "u=4"), ("te", "trailers")),
    ),
}
WORDS = ("trail", "boot", "tent", "lamp", "rope", "stove", "jacket", "blue", "green", "wool", "gift", "light")
ATTACKS = (
    ("GET", "/search?q=1%27%20OR%20%271%27%3D%271%27--", b""),
    ("GET", "/products?id=1%20UNION%20SELECT%20password%20FROM%20users", b""),
    ("GET", "/view?file=..%2F..%2F..%2Fetc%2Fpasswd", b""),
    ("POST", "/comment", b"text=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E"),
)


@dataclass(frozen=True)
class Sample:
    kind: str
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]  # regular headers, in the order a client sends them
    body: bytes = b""
    client_ip: str = "198.51.100.7"

    @property
    def route(self) -> str:
        """Envoy's route name for this path (deploy/envoy/envoy.yaml)."""
        return "api" if self.path.startswith("/api/") else "default"

    @property
    def size(self) -> int:
        return len(self.path) + len(self.body) + sum(len(k) + len(v) for k, v in self.headers)


def bench_policy(audit: Path) -> dict:
    """The demo policy (access, rules, bot, attack on every route) plus an MCP route behind access,
    auditing to a file as in production; its rate limit is raised, as all calls share one identity."""
    policy = yaml.safe_load(DEMO_POLICY.read_text())
    policy["access"]["apps"][0]["routes"].append("mcp")
    mcp = {"server": "tools", "groups": {"*": {"servers": ["tools"], "tools": {"allow": ["*"]}}},
           "rate_limit": {"requests": 10**6, "per_s": 1}, "audit": {"path": str(audit)}}
    policy["routes"].insert(0, {"name": "mcp", "match": {"path_prefix": "/mcp"}, "layers": {"mcp": mcp}})
    return policy


def write_policy(directory: Path) -> Path:
    """The bench policy as a file in directory, its MCP audit beside it."""
    path = directory / "bench-policy.yaml"
    path.write_text(yaml.safe_dump(bench_policy(directory / "mcp-audit.jsonl"), sort_keys=False))
    return path


def mix(n: int, seed: int = 7, clients: int = 200, max_body: int = 16384) -> list[Sample]:
    """n requests drawn from MIX; clients is how many distinct client addresses send them."""
    rng = random.Random(seed)
    people = [_client(rng, i) for i in range(clients)]
    kinds, weights = zip(*MIX)
    out = []
    for kind in rng.choices(kinds, weights, k=n):
        out.append(_BUILDERS[kind](rng, rng.choice(people), max_body))
    return out


@dataclass(frozen=True)
class Client:
    ip: str
    browser: str
    language: str
    cookie: str

    def headers(self, accept: str, content_type: str = "", fetch: bool = False) -> tuple[tuple[str, str], ...]:
        filled = {"accept": accept, "accept-language": self.language, "cookie": self.cookie,
                  "content-type": content_type}
        template = BROWSERS[self.browser][1 if fetch else 0]
        return tuple((name, filled[name] if value is None else value) for name, value in template)


def _client(rng: random.Random, index: int) -> Client:
    return Client(ip=f"203.0.{index >> 8 & 255}.{index & 255}", browser=rng.choice(tuple(BROWSERS)),
                  language=rng.choice(("en-US,en;q=0.9", "de-DE,de;q=0.9,en;q=0.8", "fr-FR,fr;q=0.9")),
                  cookie=f"sid={rng.getrandbits(64):016x}; consent=1; _ga=GA1.2.{rng.getrandbits(30)}.1700000000")


def _words(rng: random.Random, count: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(count))


def _page(rng: random.Random, client: Client, _max_body: int) -> Sample:
    path = rng.choice((f"/products/{rng.choice(WORDS)}-{rng.randrange(10**4)}?color={rng.choice(WORDS)}&size={rng.randrange(36, 48)}",
                       f"/search?q={_words(rng, 2).replace(' ', '+')}&page={rng.randrange(1, 9)}",
                       f"/blog/{rng.randrange(2020, 2027)}/{rng.choice(WORDS)}-{rng.choice(WORDS)}", "/"))
    headers = client.headers("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
    return Sample("GET page", "GET", path, headers, client_ip=client.ip)


def _json(rng: random.Random, client: Client, max_body: int) -> Sample:
    size = rng.choice((1024, 2048, 4096, 8192, max_body))
    items, body = [], b""
    while len(body) < size:
        items.append({"sku": f"SKU-{rng.randrange(10**5):05d}", "qty": rng.randrange(1, 9), "note": _words(rng, 3)})
        body = json.dumps({"customer": {"id": rng.randrange(10**6), "email": f"u{rng.randrange(10**6)}@example.com"},
                           "items": items}).encode()
    headers = client.headers("application/json", "application/json", fetch=True)
    return Sample("POST JSON", "POST", f"/api/orders?v={rng.randrange(1, 4)}", headers, body, client.ip)


def _form(rng: random.Random, client: Client, _max_body: int) -> Sample:
    fields = rng.choice(({"username": f"user{rng.randrange(10**5)}", "password": f"{rng.getrandbits(48):x}", "remember": "1"},
                         {"name": _words(rng, 2), "email": f"u{rng.randrange(10**6)}@example.com", "message": _words(rng, 40)},
                         {"q": _words(rng, 3), "sort": "price", "page": str(rng.randrange(1, 9))}))
    body = "&".join(f"{k}={v.replace(' ', '+')}" for k, v in fields.items()).encode()
    headers = client.headers("*/*", "application/x-www-form-urlencoded", fetch=True)
    return Sample("POST form", "POST", rng.choice(("/login", "/contact", "/search")), headers, body, client.ip)


def _mcp(rng: random.Random, client: Client, _max_body: int) -> Sample:
    arguments = {"query": _words(rng, rng.randrange(2, 12)), "limit": rng.randrange(1, 50)}
    message = {"jsonrpc": "2.0", "id": rng.randrange(10**6), "method": "tools/call",
               "params": {"name": rng.choice(("search_issues", "get_issue", "list_commits")), "arguments": arguments}}
    headers = (("user-agent", "agent/1.4 (mcp-client)"), ("accept", "application/json, text/event-stream"),
               ("content-type", "application/json"), ("mcp-protocol-version", "2025-06-18"), *SERVICE_TOKEN)
    return Sample("MCP call", "POST", "/mcp", headers, json.dumps(message).encode(), client.ip)


def _attack(rng: random.Random, client: Client, _max_body: int) -> Sample:
    method, path, body = rng.choice(ATTACKS)
    headers = client.headers("*/*", "application/x-www-form-urlencoded", fetch=True) if body else client.headers("*/*")
    return Sample("attack", method, path, headers, body, client.ip)


_BUILDERS = {"GET page": _page, "POST JSON": _json, "POST form": _form, "MCP call": _mcp, "attack": _attack}


# -- encodings ---------------------------------------------------------------------------------

def messages(sample: Sample) -> list[pb.ProcessingRequest]:
    """What Envoy sends for this request: the headers message, then the body if there is one."""
    pairs = [*sample.headers, ("x-forwarded-proto", "http"), ("x-request-id", f"{random.getrandbits(128):032x}")]
    if sample.body:
        pairs.append(("content-length", str(len(sample.body))))
    attributes = {"source.address": f"{sample.client_ip}:40000", "xds.route_name": sample.route,
                  "request.protocol": "HTTP/1.1"}
    headers = request_headers(sample.method, sample.path, pairs, authority="shop.example",
                              end_of_stream=not sample.body, attributes=attributes)
    return [headers, request_body(sample.body)] if sample.body else [headers]


def http_request(sample: Sample, host: str = "shop.example") -> bytes:
    """The request as an HTTP/1.1 client sends it; X-Forwarded-For carries the simulated client,
    which the bench Envoy trusts (one hop), so the sidecar sees many clients, not loopback."""
    lines = [f"{sample.method} {sample.path} HTTP/1.1", f"host: {host}",
             *(f"{k}: {v}" for k, v in sample.headers), f"x-forwarded-for: {sample.client_ip}"]
    if sample.body:
        lines.append(f"content-length: {len(sample.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + sample.body
