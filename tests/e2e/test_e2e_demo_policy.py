"""The demo policy through the demo's real Envoy, with API Shield on its API route (issue 18).

Item 7: a legacy application's ISO-8859-1 traffic (``?nombre=Jam%F3n``, a header with byte
0xF3) made API Shield raise, a 503 for real users. Every layer must give such requests the
answer their content deserves. Item 8b: the service token's secret must not reach the upstream,
whether the decision comes with the headers or after the body.
"""
from __future__ import annotations

import orjson
import pytest
import yaml

from extproc.local.stack import DEMO_POLICY
from tests.support import SHOP_SPEC
from tests.support.e2e_support import marker, raw_exchange, request, started_stack, upstream_saw, wait_for

SPEC = SHOP_SPEC
CURL = ("user-agent", "curl/8.5.0")  # the demo's own client: tagged automation, allowed
CLIENT_ID, SECRET = "demo-client.access", "demo-secret-change-me-before-real-use"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    policy = yaml.safe_load(DEMO_POLICY.read_text())
    (api,) = [route for route in policy["routes"] if route["name"] == "api"]
    api["layers"]["api_shield"] = {"spec": str(SPEC), "base_path": "/api/v1"}
    # The demo's budgets are milliseconds: on a busy machine a phase's deadline runs out and the
    # attack layer is skipped (503). These tests are about content; deadlines have their own.
    policy["defaults"]["deadline_ms"] = 60000
    workdir = tmp_path_factory.mktemp("demo-policy")
    args = ["--drain-seconds", "1", "--audit-log", str(workdir / "audit.jsonl")]
    with started_stack("demo policy stack", yaml.safe_dump(policy), workdir, sidecar_args=args) as s:
        s.audit_path = workdir / "audit.jsonl"
        yield s


def layer_failures(stack) -> list[str]:
    return [line for line in stack.sidecar.log_text().splitlines() if "failed" in line]


def get(stack, target: str, headers=()):
    return request(stack.listen_port, "GET", target, headers=[CURL, *headers])


# -- item 7: bytes that are not UTF-8 --------------------------------------------------------


def test_latin1_query_values_get_the_answer_their_content_deserves(stack):
    ok = get(stack, "/api/v1/search?q=Jam%F3n")  # 'Jamón' to a Latin-1 app: a valid search
    assert ok.status == 200, ok
    assert ok.json()["path"] == "/api/v1/search?q=Jam%F3n"  # passed on as sent
    assert get(stack, "/api/v1/search?q=" + "Jam%F3n" * 40).status == 200  # maxLength 200, one per byte
    for target in ("/api/v1/search?q=" + "Jam%F3n" * 40 + "%F3",  # 201 characters
                   "/api/v1/products?sort=pr%EDce",  # not one of the enum's values
                   "/api/v1/categories/caf%E9"):  # not a slug
        denied = get(stack, target)
        assert (denied.status, set(denied.json())) == (403, {"error", "request_id"}), (target, denied)
        assert not upstream_saw(stack, target.rpartition("/")[2])
    assert layer_failures(stack) == []


def test_a_header_with_byte_0xf3_is_read_not_a_fault(stack):
    body = orjson.dumps({"items": [{"sku": "AB-12", "quantity": 1}],
                         "shipping_address": {"line1": "Calle Mayor 1", "city": "Le\u00f3n", "country": "ES"}})
    headers = [CURL, ("content-type", "application/json"), ("authorization", "Bearer demo"),
               ("idempotency-key", b"pedido-jam\xf3n-0001"), ("x-nota", b"Jam\xf3n"), ("referer", b"/b\xfasqueda")]
    response = request(stack.listen_port, "POST", "/api/v1/orders", headers=headers, body=body)
    assert response.status == 200, response
    seen = dict(response.json()["headers"])  # the echo reads header bytes as Latin-1
    assert seen["idempotency-key"].encode("latin-1") == b"pedido-jam\xf3n-0001"  # the app gets its bytes
    short = [h if h[0] != "idempotency-key" else ("idempotency-key", b"corto-\xf3") for h in headers]
    assert request(stack.listen_port, "POST", "/api/v1/orders", headers=short, body=body).status == 403  # minLength
    assert get(stack, "/hello", [("x-nota", b"Jam\xf3n"), ("cookie", b"nombre=Jam\xf3n")]).status == 200
    assert layer_failures(stack) == []


def test_raw_latin1_bytes_in_the_request_line_are_refused_by_envoy_not_a_503(stack):
    head = b"GET /api/v1/search?q=Jam\xf3n HTTP/1.1\r\nhost: shop.example\r\nuser-agent: curl/8.5.0\r\n\r\n"
    assert raw_exchange(stack.listen_port, head).status == 400  # Envoy's codec: never reaches a layer


def test_the_audit_record_shows_such_bytes_as_latin1(stack):
    attack = "/products?Jam%F3n=1%27%20UNION%20SELECT%20username,password%20FROM%20users--"
    denied = get(stack, attack)
    assert denied.status == 403
    request_id = denied.json()["request_id"].encode()
    (line,) = wait_for(lambda: [line for line in stack.audit_path.read_bytes().splitlines() if request_id in line],
                       timeout=10, what="the audit record of the denied request")
    record = orjson.loads(line)
    assert record["denied_by"] == "attack"
    reasons = [reason for layer in record["layers"] for reason in layer["reasons"]]
    assert "attack:worst=query:Jam\u00f3n" in reasons, reasons  # the argument's name, as rules read it


# -- item 8b: the service token's secret stays with the sidecar -------------------------------


@pytest.mark.parametrize("method, body", [("GET", None), ("POST", b'{"report": "weekly"}')])
def test_the_service_token_secret_never_reaches_the_upstream(stack, method, body):
    """GET: decided on the headers. POST: the layers wait for the body, so the headers change
    travels with the body's reply (BUFFERED_PARTIAL)."""
    credentials = [CURL, ("x-access-client-id", CLIENT_ID), ("x-access-client-secret", SECRET),
                   ("content-type", "application/json")]
    response = request(stack.listen_port, method, "/internal/report", headers=credentials, body=body)
    assert response.status == 200, response
    seen = dict(response.json()["headers"])
    assert seen["x-access-client-id"] == CLIENT_ID and seen["x-extproc-user-methods"] == "service_token"
    assert "x-access-client-secret" not in seen
    public = request(stack.listen_port, method, "/hello", headers=credentials, body=body)
    assert public.status == 200 and "x-access-client-secret" not in dict(public.json()["headers"])
    probe = marker()
    wrong = [*credentials[:2], ("x-access-client-secret", "guess"), credentials[3]]
    assert request(stack.listen_port, method, f"/internal/report?p={probe}", headers=wrong, body=body).status == 401
    assert not upstream_saw(stack, probe)
