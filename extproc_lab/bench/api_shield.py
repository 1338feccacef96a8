"""API Shield speed against a 200-operation spec, with a no-layer baseline in the same run.

    python -m extproc_lab.bench.api_shield [--n 5000]

The spec is generated: 40 resources, each with list (query parameters), create (JSON body with
nested objects and arrays), get, update and delete (path parameters). Requests are valid ones
drawn across all operations, plus 10% that violate something (the cost of reporting).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

from extproc.config.compile import parse_policy
from extproc.core.request import Request
from extproc_lab.bench import timing

RESOURCES = 40


def spec() -> dict:
    schemas, paths = {}, {}
    for n in range(RESOURCES):
        name = f"Thing{n}"
        schemas[name] = {"type": "object", "required": ["name", "price", "tags"], "additionalProperties": False,
                         "properties": {"name": {"type": "string", "maxLength": 100},
                                        "price": {"type": "object", "required": ["amount", "currency"],
                                                  "properties": {"amount": {"type": "integer", "minimum": 0},
                                                                 "currency": {"enum": ["EUR", "USD"]}}},
                                        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 10},
                                        "note": {"type": ["string", "null"]}}}
        body = {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}
        item = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}]
        paths[f"/v1/things{n}"] = {
            "get": {"parameters": [
                {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 100}},
                {"name": "sort", "in": "query", "schema": {"enum": ["name", "-name", "price"]}},
                {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 100}}]},
            "post": {"requestBody": body},
        }
        paths[f"/v1/things{n}/{{id}}"] = {"parameters": item, "get": {}, "put": {"requestBody": body}, "delete": {}}
    return {"openapi": "3.1.0", "info": {"title": "bench", "version": "1"}, "paths": paths,
            "components": {"schemas": schemas}}


def requests(n: int, seed: int = 3) -> list[tuple[Request, bytes]]:
    rng, out = random.Random(seed), []
    body = json.dumps({"name": "Tent", "price": {"amount": 19900, "currency": "EUR"}, "tags": ["outdoor", "camp"],
                       "note": None}).encode()
    for _ in range(n):
        resource, kind = rng.randrange(RESOURCES), rng.randrange(5)
        bad = rng.random() < 0.1
        if kind == 0:
            target = f"/v1/things{resource}?limit={500 if bad else 20}&sort=name&q=blue+tent"
            out.append((Request("GET", target), b""))
            continue
        path = f"/v1/things{resource}" + ("" if kind == 1 else f"/{rng.randrange(1, 10**6)}")
        method = {1: "POST", 2: "GET", 3: "PUT", 4: "DELETE"}[kind]
        payload = body.replace(b"EUR", b"XXX") if bad else body
        has_body = method in ("POST", "PUT")
        headers = (("content-type", "application/json"),) if has_body else ()
        out.append((Request(method, path, headers=headers, has_body=has_body), payload if has_body else b""))
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.json"
        path.write_text(json.dumps(spec()))
        shield = parse_policy(f"version: 1\ndefaults: {{layers: {{api_shield: {{spec: {path}}}}}}}\n", "bench")
    layer = shield.default.slots[0].layer
    print(f"{layer.spec.operations} operations; {args.n} requests per row, CPU time per request (one core)")
    timing.print_layer_against_baseline(lambda: requests(args.n), shield, "api_shield")
    return 0


if __name__ == "__main__":
    sys.exit(main())
