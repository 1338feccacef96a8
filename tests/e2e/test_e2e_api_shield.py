"""API Shield end to end: a real Envoy buffers the body for the sidecar, which checks it against
the OpenAPI document."""
from __future__ import annotations

import json

import pytest
from tests.support.e2e_support import request, started_stack
from tests.support import SHOP_SPEC

SPEC = SHOP_SPEC
BEARER = ("authorization", "Bearer eyJ.e2e")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    policy = f"""
version: 1
routes:
  - name: shop-api
    match: {{path_prefix: /api/v1/}}
    layers:
      api_shield: {{spec: {SPEC}, base_path: /api/v1, budget_ms: 50}}
"""
    with started_stack("api shield stack", policy, tmp_path_factory.mktemp("shield"),
                       sidecar_args=["--drain-seconds", "1"]) as s:
        yield s


def post(stack, path, body, headers=()):
    data = json.dumps(body).encode()
    return request(stack.listen_port, "POST", path, body=data,
                   headers=[("content-type", "application/json"), BEARER, *headers])


def test_valid_body_reaches_the_upstream_and_invalid_one_does_not(stack):
    assert post(stack, "/api/v1/cart/items", {"sku": "AB-12", "quantity": 2}).status == 200
    denied = post(stack, "/api/v1/cart/items", {"sku": "AB-12", "quantity": 2, "is_admin": True})
    assert denied.status == 403
    assert set(denied.json()) == {"error", "request_id"} and "schema" not in denied.everything()


def test_endpoints_and_parameters_outside_the_spec_are_denied(stack):
    assert request(stack.listen_port, "GET", "/api/v1/products?limit=20&sort=price").status == 200
    assert request(stack.listen_port, "GET", "/api/v1/products?limit=5000").status == 403
    assert request(stack.listen_port, "GET", "/api/v1/debug/vars").status == 403
    assert request(stack.listen_port, "DELETE", "/api/v1/categories", headers=[BEARER]).status == 403
