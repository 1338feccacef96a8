"""Generated traffic against the shop API of tests/data/shop-openapi.yaml, as request records."""
from __future__ import annotations

import json
import random
import uuid

SLUGS = ["hiking-boots", "rain-jackets", "tents", "sleeping-bags", "headlamps", "backpacks", "trail-running",
         "climbing-ropes", "camp-kitchen", "water-filters", "trekking-poles", "gloves", "socks", "maps"]


def _record(n, method, path, query="", body=None, headers=()):
    headers = [[":authority", "api.shop.example"], ["user-agent", "shop-app/5.2"], *map(list, headers)]
    record = {"id": f"api-{n}", "request": {"method": method, "path": path, "query": query, "headers": headers}}
    if body is not None:
        headers.append(["content-type", "application/json"])
        record["request"]["body"] = json.dumps(body)
    return record


def shop_traffic(count: int = 1500, seed: int = 5) -> list[dict]:
    rng = random.Random(seed)
    users = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(40)]
    orders = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(60)]
    bearer = ("authorization", "Bearer eyJ.test")
    makers = [
        lambda n: _record(n, "GET", "/api/v1/products", f"limit={rng.choice([10, 20, 50])}&sort="
                          f"{rng.choice(['price', '-price', 'name', 'newest'])}" + (f"&offset={rng.randrange(0, 500, 20)}"
                                                                                    if rng.random() < 0.5 else "")),
        lambda n: _record(n, "GET", f"/api/v1/products/{rng.randrange(1, 90000)}"),
        lambda n: _record(n, "GET", f"/api/v1/products/{rng.randrange(1, 90000)}/reviews", f"limit={rng.choice([5, 10])}"),
        lambda n: _record(n, "POST", f"/api/v1/products/{rng.randrange(1, 90000)}/reviews",
                          body={"rating": rng.randint(1, 5), "text": "Solid and warm.",
                                **({"title": "Good"} if rng.random() < 0.5 else {})}, headers=[bearer]),
        lambda n: _record(n, "GET", f"/api/v1/categories/{rng.choice(SLUGS)}"),
        lambda n: _record(n, "GET", "/api/v1/users/me", headers=[bearer]),
        lambda n: _record(n, "GET", f"/api/v1/users/{rng.choice(users)}", headers=[bearer]),
        lambda n: _record(n, "GET", f"/api/v1/orders/{rng.choice(orders)}", headers=[bearer]),
        lambda n: _record(n, "POST", "/api/v1/orders", body={
            "items": [{"sku": f"AB-{rng.randrange(10, 999)}", "quantity": rng.randint(1, 3)}],
            "shipping_address": {"line1": "Main St 1", "city": "Lyon", "country": "FR"}}, headers=[bearer]),
        lambda n: _record(n, "GET", "/api/v1/search", f"q={rng.choice(['tent', 'boots', 'stove'])}"),
        lambda n: _record(n, "GET", "/api/v1/internal/debug"),  # a shadow endpoint
        lambda n: _record(n, "GET", "/api/v1/products", "limit=10&debug=1"),  # an undocumented parameter
    ]
    records = [rng.choice(makers)(n) for n in range(count)]
    attack = _record(count, "GET", "/api/v1/products/1%27%20OR%201=1--/admin")
    attack["action"] = "deny"  # what another layer denied: never learned from
    return records + [attack]
