"""API Shield: the positive security model over a realistic multi-endpoint spec."""
from __future__ import annotations

import json

import pytest

from extproc.config.compile import ConfigError, parse_policy
from extproc.core.transaction import Transaction
from extproc.core.request import Request
from tests.support import SHOP_SPEC

SPEC = SHOP_SPEC
BEARER = ("authorization", "Bearer eyJ.test.token")
ORDER = {"items": [{"sku": "AB-12", "quantity": 2}],
         "shipping_address": {"line1": "Hauptstr. 1", "city": "Köln", "country": "DE"}, "coupon": None}


def policy(extra: str = "") -> object:
    return parse_policy(f"""
version: 1
defaults:
  layers:
    api_shield: {{spec: {SPEC}, base_path: /api/v1{extra}}}
""", "test")


def run(method, target, headers=(), body=None, content_type="application/json", shield=None):
    headers = list(headers)
    if body is not None:
        headers.append(("content-type", content_type))
        body = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = Request(method, target, headers=tuple(headers), has_body=body is not None)
    transaction = Transaction(shield or policy(), request)
    decision = transaction.on_headers()
    if decision is None:
        decision = transaction.on_body(body)
    return decision


def kinds(decision) -> list[str]:
    return [r.split(":")[1] for r in decision.reasons if r.startswith("api_shield:")]


@pytest.mark.parametrize("method, target, headers, body", [
    ("GET", "/api/v1/health", (), None),
    ("GET", "/api/v1/products?limit=10&offset=20&sort=-price&tags=outdoor,winter&in_stock=true&min_price=9.5", (), None),
    ("GET", "/api/v1/products/42/reviews?limit=5", (), None),
    ("GET", "/api/v1/categories/hiking-boots", (), None),
    ("GET", "/api/v1/users/me", [BEARER], None),  # the literal segment wins over /users/{user_id}
    ("GET", "/api/v1/users/3fa85f64-5717-4562-b3fc-2c963f66afa6", [BEARER], None),
    ("POST", "/api/v1/orders", [BEARER, ("idempotency-key", "a" * 24)], ORDER),
    ("POST", "/api/v1/products/7/reviews", [BEARER], {"rating": 5, "text": "Great", "title": None}),
    ("PUT", "/api/v1/cart/items/AB-1234", [BEARER], {"quantity": 3}),
    ("GET", "/api/v1/partner/stock?sku=AB-12&sku=CD-34", [("x-partner-key", "k-123")], None),
    ("GET", "/api/v1/admin/reports/sales?from=2026-01-31", [BEARER], None),
])
def test_requests_the_spec_describes_pass(method, target, headers, body):
    decision = run(method, target, headers, body)
    assert decision.allowed, decision.reasons


@pytest.mark.parametrize("method, target, headers, body, kind", [
    ("GET", "/api/v1/internal/debug", (), None, "unknown_path"),
    ("GET", "/api/v2/products", (), None, "unknown_path"),  # outside the base path
    ("DELETE", "/api/v1/categories", [BEARER], None, "method_not_allowed"),
    ("GET", "/api/v1/search", (), None, "missing_param"),
    ("POST", "/api/v1/orders", [BEARER], ORDER, "missing_param"),  # idempotency-key header
    ("GET", "/api/v1/products?limit=500", (), None, "invalid_param"),
    ("GET", "/api/v1/products?sort=cheapest", (), None, "invalid_param"),
    ("GET", "/api/v1/products/0", (), None, "invalid_param"),
    ("GET", "/api/v1/products/abc", (), None, "invalid_param"),
    ("GET", "/api/v1/users/1%27%20OR%201=1", [BEARER], None, "invalid_param"),
    ("POST", "/api/v1/orders", [BEARER, ("idempotency-key", "a" * 24)], b"<xml/>", "content_type"),
    ("POST", "/api/v1/cart/items", [BEARER], {"sku": "AB-12", "quantity": 0}, "body_schema"),
    ("POST", "/api/v1/cart/items", [BEARER], {"sku": "AB-12", "quantity": 1, "price": 0}, "body_schema"),
    ("POST", "/api/v1/orders", [BEARER, ("idempotency-key", "a" * 24)], {**ORDER, "items": []}, "body_schema"),
    ("POST", "/api/v1/cart/items", [BEARER], b'{"sku": "AB-12", "quantity": ', "body_schema"),
    ("POST", "/api/v1/cart/items", [BEARER], None, "missing_body"),
    ("GET", "/api/v1/orders", (), None, "security"),
    ("GET", "/api/v1/partner/stock?sku=AB-12", [BEARER], None, "security"),
])
def test_each_violation_kind_is_denied_with_its_kind(method, target, headers, body, kind):
    if body is not None and not isinstance(body, bytes):
        decision = run(method, target, headers, body)
    elif isinstance(body, bytes):
        decision = run(method, target, headers, body, "application/xml" if body.startswith(b"<") else "application/json")
    else:
        decision = run(method, target, headers)
    assert not decision.allowed and decision.status == 403
    assert kind in kinds(decision), decision.reasons


def test_a_traversal_in_a_path_parameter_is_refused_before_the_spec_is_consulted():
    # Decoded once, '..%2F..%2Fetc' is two dot segments: the path has no single reading (400).
    decision = run("GET", "/api/v1/categories/..%2F..%2Fetc")
    assert (decision.allowed, decision.status, decision.denied_by) == (False, 400, "inspection")


def test_violations_name_the_spec_location_in_the_audit_only():
    decision = run("POST", "/api/v1/cart/items", [BEARER], {"sku": "AB-12", "quantity": 500})
    (reason,) = [r for r in decision.reasons if "body_schema" in r]
    assert "#/paths/~1cart~1items/post/requestBody" in reason and "/quantity" in reason
    assert decision.set_headers == ()


def test_unknown_query_params_are_logged_by_default_and_deniable():
    decision = run("GET", "/api/v1/products?debug=1")
    assert decision.allowed and kinds(decision) == ["unknown_param"]
    strict = policy(", actions: {unknown_param: deny}")
    assert not run("GET", "/api/v1/products?debug=1", shield=strict).allowed


def test_unknown_endpoints_can_be_logged_or_left_to_the_attack_score():
    logged = policy(", unknown_endpoint: log")
    assert run("GET", "/api/v1/brand-new-endpoint", shield=logged).allowed
    hybrid = policy(", unknown_endpoint: attack")
    assert run("GET", "/api/v1/brand-new-endpoint?page=2", shield=hybrid).allowed
    attack = run("GET", "/api/v1/brand-new-endpoint?q=1%27%20UNION%20SELECT%20password%20FROM%20users--", shield=hybrid)
    assert not attack.allowed and any("attack_score" in r for r in attack.reasons)


def test_observe_mode_reports_without_blocking():
    decision = run("GET", "/api/v1/internal/debug", shield=policy(", mode: observe"))
    assert decision.allowed and decision.would_deny == ("api_shield",)


def test_openapi_31_documents_are_accepted(tmp_path):
    spec = tmp_path / "v31.json"
    spec.write_text(json.dumps({
        "openapi": "3.1.0", "info": {"title": "t", "version": "1"},
        "paths": {"/items/{id}": {"get": {"parameters": [
            {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "exclusiveMinimum": 0}}]}}},
    }))
    shield = parse_policy(f"version: 1\ndefaults: {{layers: {{api_shield: {{spec: {spec}}}}}}}\n", "t")
    assert run("GET", "/items/3", shield=shield).allowed
    assert "invalid_param" in kinds(run("GET", "/items/0", shield=shield))


@pytest.mark.parametrize("document, error", [
    ("openapi: 2.0\npaths: {/a: {}}", "openapi: 2.0"),
    ("openapi: 3.0.0\npaths: {}", "paths: a non-empty mapping"),
    ("openapi: 3.0.0\npaths: {/a: {get: {parameters: [{$ref: '#/components/parameters/nope'}]}}}", "resolves to nothing"),
    ("openapi: 3.0.0\npaths: {/a: {get: {parameters: [{$ref: 'https://evil.example/p.json'}]}}}", "points outside"),
    ("openapi: 3.0.0\npaths: {/a: {get: {parameters: [{in: query}]}}}", "needs 'name' and 'in'"),
    ("openapi: 3.0.0\npaths: {/a: {get: {parameters: [{name: x, in: query, schema: {type: 7}}]}}}", "invalid schema"),
    ("openapi: [3.0.0\n", "not JSON/YAML"),
])
def test_malformed_specs_are_config_errors_with_their_location(tmp_path, document, error):
    spec = tmp_path / "spec.yaml"
    spec.write_text(document)
    with pytest.raises(ConfigError) as caught:
        parse_policy(f"version: 1\nroutes: [{{name: api, match: {{}}, layers: {{api_shield: {{spec: {spec}}}}}}}]\n", "p")
    assert "routes[0].layers.api_shield" in str(caught.value) and error in str(caught.value)


def test_spec_paths_are_relative_to_the_policy_file(tmp_path):
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "shop.yaml").write_text(SPEC.read_text())
    (tmp_path / "policy.yaml").write_text("version: 1\ndefaults: {layers: {api_shield: {spec: specs/shop.yaml}}}\n")
    from extproc.config.compile import load_policy

    assert load_policy(tmp_path / "policy.yaml").default.slots[0].layer.spec.operations == 27
