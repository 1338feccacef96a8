"""Put attack payloads where real requests carry values: query, form, nested JSON, cookie,
header, multipart, path segment or a whole XML body, around otherwise ordinary traffic.

Used to check that extraction finds a payload wherever it is placed, and to give the model
attacks in the shape of benign requests.
"""
from __future__ import annotations

import json
import random
from typing import Iterable, Iterator
from urllib.parse import quote, urlencode

PLACEMENTS = ("query", "form", "json", "cookie", "header", "multipart", "path")
BROWSER_HEADERS = [
    ("user-agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 Safari/537.36"),
    ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("accept-language", "en-GB,en;q=0.9"),
]
PATHS = ("/search", "/api/v2/items", "/account/settings", "/products/view", "/cart/update", "/blog/comments")
NAMES = ("q", "id", "name", "comment", "filter", "next", "file", "lang", "sort", "email", "data", "ref")
HEADER_NAMES = ("user-agent", "referer", "x-forwarded-for", "x-client-note")


def attack_records(payloads: Iterable[tuple[str, str]], seed: int, source: str = "placed") -> Iterator[dict]:
    rng = random.Random(seed)
    for index, (value, family) in enumerate(payloads):
        is_xml = value.lstrip().startswith("<?xml") or value.lstrip().startswith("<!DOCTYPE")
        placement = "xml" if is_xml and rng.random() < 0.7 else rng.choice(PLACEMENTS)
        yield {
            "id": f"{source}-{index}", "source": source, "set": f"{source}:{placement}", "family": family,
            "label": "attack", "request": _place(value, placement, rng),
            "expect": {"value": value, "placement": placement},
        }


def benign_value_records(values: Iterable[str], seed: int, source: str = "lookalikes") -> Iterator[dict]:
    """Benign values placed the same way: the surroundings must not tell the two apart."""
    rng = random.Random(seed)
    for index, value in enumerate(values):
        placement = rng.choice(PLACEMENTS)
        yield {
            "id": f"{source}-{index}", "source": source, "set": f"{source}:{placement}", "family": "benign",
            "label": "benign", "request": _place(value, placement, rng),
        }


def _place(value: str, placement: str, rng: random.Random) -> dict:
    name = rng.choice(NAMES)
    headers = [("host", "shop.example"), *BROWSER_HEADERS]
    path, query, body = rng.choice(PATHS), urlencode({"page": rng.randint(1, 9)}), ""
    if placement == "query":
        query = urlencode({name: value, "page": rng.randint(1, 9)})
    elif placement == "form":
        body = urlencode({"csrf": "a8f3c1", name: value})
        headers.append(("content-type", "application/x-www-form-urlencoded"))
    elif placement == "json":
        body = json.dumps(_nest({name: value, "count": rng.randint(1, 50)}, rng.randint(0, 2)))
        headers.append(("content-type", "application/json"))
    elif placement == "cookie":
        headers.append(("cookie", f"sid=9f2c7d1e; {name}={quote(value, safe='')}; consent=1"))
    elif placement == "header":
        headers = [(h, v) for h, v in headers if h != rng.choice(HEADER_NAMES)]
        headers.append((rng.choice(HEADER_NAMES), value.replace("\r", " ").replace("\n", " ")))
    elif placement == "multipart":
        boundary = f"----form{rng.randint(10**8, 10**9)}"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                f"--{boundary}--\r\n")
        headers.append(("content-type", f"multipart/form-data; boundary={boundary}"))
    elif placement == "path":
        path = f"{path}/{quote(value, safe='')}"
    elif placement == "xml":
        body = value
        headers.append(("content-type", "application/xml"))
    method = "POST" if body else "GET"
    return {"method": method, "path": path, "query": query, "headers": [list(h) for h in headers], "body": body}


def _nest(inner: dict, depth: int) -> dict:
    for key in ("data", "attributes", "item")[:depth]:
        inner = {key: inner, "type": "record"}
    return inner
