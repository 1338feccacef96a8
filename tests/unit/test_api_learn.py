"""Schema learning from traffic, and the diff between traffic and a spec."""
from __future__ import annotations

import json

import yaml

from extproc import cli
from extproc.api_shield.learn import template_paths, value_schema
from tests.support import SHOP_SPEC
from tests.support.api_traffic import shop_traffic

SPEC = SHOP_SPEC


def test_ids_uuids_hashes_and_slugs_become_parameters_and_literals_stay():
    paths = [["users", "me"], ["users", "3fa85f64-5717-4562-b3fc-2c963f66afa6"], ["files", "9f86d081884c7d659a2feaa0c55ad015"],
             *[["products", str(n), "reviews"] for n in range(5)],
             *[["tags", slug] for slug in ("a-b", "c-d", "e-f", "g-h", "i-j", "k-l", "m-n", "o-p", "q-r")]]
    templates = {"/".join(t) for t in template_paths(paths).values()}
    assert templates == {"users/me", "users/{uuid}", "files/{hash}", "products/{id}/reviews", "tags/{slug}"}


def test_parameter_types_and_formats_from_values():
    assert value_schema(["1", "20", "-3"]) == {"type": "integer"}
    assert value_schema(["1.5", "2"]) == {"type": "number"}
    assert value_schema(["2026-01-31T10:00:00Z"]) == {"type": "string", "format": "date-time"}
    assert value_schema(["price", "name"] * 10)["enum"] == ["name", "price"]


def test_learn_recovers_the_templated_endpoints(tmp_path, capsys):
    records = tmp_path / "traffic.jsonl"
    records.write_text("\n".join(json.dumps(r) for r in shop_traffic()) + "\n")
    out = tmp_path / "learned.yaml"
    assert cli.main(["learn", str(records), "--base-path", "/api/v1", "--out", str(out)]) == 0
    learned = yaml.safe_load(out.read_text())
    assert {(m, p) for p, item in learned["paths"].items() for m in item} >= {
        ("get", "/products"), ("get", "/products/{product_id}"), ("get", "/products/{product_id}/reviews"),
        ("post", "/products/{product_id}/reviews"), ("get", "/categories/{category_slug}"), ("get", "/users/me"),
        ("get", "/users/{user_uuid}"), ("get", "/orders/{order_uuid}"), ("post", "/orders"), ("get", "/search"),
    }
    assert not any("OR" in path for path in learned["paths"])  # the denied request was not learned from
    query = {p["name"]: p for p in learned["paths"]["/products"]["get"]["parameters"]}
    assert query["limit"]["schema"] == {"type": "integer"} and query["sort"]["schema"]["enum"] == [
        "-price", "name", "newest", "price"]
    assert not query["offset"]["required"]
    (search_q,) = learned["paths"]["/search"]["get"]["parameters"]
    assert search_q["required"] and search_q["schema"]["type"] == "string"
    review = learned["paths"]["/products/{product_id}/reviews"]["post"]["requestBody"]["content"]["application/json"]
    assert review["schema"]["required"] == ["rating", "text"]
    assert review["schema"]["properties"]["rating"] == {"type": "integer"}
    # The proposed document is itself a valid spec the layer can enforce.
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"version: 1\ndefaults: {{layers: {{api_shield: {{spec: {out}, base_path: /api/v1}}}}}}\n")
    assert cli.main(["check-config", str(policy)]) == 0


def test_diff_finds_shadow_endpoints_undocumented_params_and_unused_spec_endpoints(tmp_path, capsys):
    records = tmp_path / "traffic.jsonl"
    records.write_text("\n".join(json.dumps(r) for r in shop_traffic(800)) + "\n")
    assert cli.main(["learn", str(records), "--base-path", "/api/v1", "--diff", str(SPEC)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(e["method"], e["path"]) for e in report["shadow_endpoints"]] == [("GET", "/internal/debug")]
    assert {"method": "GET", "path": "/products", "query": ["debug"]} in report["undocumented_params"]
    assert "GET /admin/reports/{report}" in report["spec_endpoints_not_seen"]
    assert "GET /products/{product_id}" not in report["spec_endpoints_not_seen"]
