"""Schema learning from traffic: endpoints, form and JSON bodies, value shapes, non-UTF-8 values,
and the diff between traffic and a spec."""
from __future__ import annotations

import json
import random

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extproc import cli
from extproc.api_shield.learn import Learner, propose
from extproc.api_shield.shapes import STRICTNESS, scalar_schema
from extproc.api_shield.templates import template_paths
from extproc.config.compile import parse_policy
from extproc.core.records import request_from_record
from extproc.core.transaction import Transaction
from tests.support import SHOP_SPEC
from tests.support.api_traffic import shop_traffic
from tests.support.form_traffic import record as form_record, shop_traffic as form_shop

BALANCED, STRICT, LOOSE = STRICTNESS["balanced"], STRICTNESS["strict"], STRICTNESS["loose"]


def write(tmp_path, records, name="traffic.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def learned(tmp_path, records, *args) -> tuple[dict, object]:
    out = tmp_path / "learned.yaml"
    assert cli.main(["learn", str(write(tmp_path, records)), "--out", str(out), *args]) == 0
    return yaml.safe_load(out.read_text(encoding="utf-8")), out


def shield(spec_path) -> object:
    return parse_policy(f"version: 1\ndefaults: {{layers: {{api_shield: {{spec: {spec_path}}}}}}}\n", "test")


def decide(policy, record):
    request, body = request_from_record(record)
    transaction = Transaction(policy, request)
    return transaction.on_headers() or transaction.on_body(body)


# -- endpoints -------------------------------------------------------------------------------------


def test_ids_uuids_hashes_and_rare_slugs_become_parameters_and_literals_stay():
    paths = [["users", "me"], ["users", "3fa85f64-5717-4562-b3fc-2c963f66afa6"], ["files", "9f86d081884c7d659a2feaa0c55ad015"],
             *[["products", str(n), "reviews"] for n in range(5)],
             *[["tags", slug] for slug in ("a-b", "c-d", "e-f", "g-h", "i-j", "k-l", "m-n", "o-p", "q-r")]]
    templates = {"/".join(t) for t in template_paths(paths).values()}
    assert templates == {"users/me", "users/{uuid}", "files/{hash}", "products/{id}/reviews", "tags/{slug}"}


def test_frequent_pages_stay_literal_however_many_share_a_directory():
    pages = [f"page{n}.jsp" for n in range(12)]
    paths = [["shop", page] for page in pages for _ in range(40)]
    assert {t[1] for t in template_paths(paths).values()} == set(pages)


def test_rare_pages_that_take_different_parameters_are_not_one_parameter():
    # Seen a few times each, as in a short capture; but each page has its own form.
    paths = [["shop", f"page{n}.jsp"] for n in range(10) for _ in range(3)]
    names = [frozenset({f"field{n}"}) for n in range(10) for _ in range(3)]
    assert {t[1] for t in template_paths(paths, names).values()} == {f"page{n}.jsp" for n in range(10)}
    assert {t[1] for t in template_paths(paths).values()} == {"{slug}"}  # without them they look alike


def test_learned_endpoints_of_an_api_and_a_denied_request_left_out(tmp_path):
    document, out = learned(tmp_path, shop_traffic(), "--base-path", "/api/v1")
    assert {(m, p) for p, item in document["paths"].items() for m in item} >= {
        ("get", "/products"), ("get", "/products/{product_id}"), ("get", "/products/{product_id}/reviews"),
        ("post", "/products/{product_id}/reviews"), ("get", "/categories/{category_slug}"), ("get", "/users/me"),
        ("get", "/users/{user_uuid}"), ("get", "/orders/{order_uuid}"), ("post", "/orders"), ("get", "/search"),
    }
    assert not any("OR" in path for path in document["paths"])  # the denied request was not learned from
    query = {p["name"]: p for p in document["paths"]["/products"]["get"]["parameters"]}
    assert query["limit"]["schema"] == {"type": "integer", "enum": [10, 20, 50]}
    assert query["sort"]["schema"]["enum"] == ["-price", "name", "newest", "price"]
    assert not query["offset"]["required"]
    review = document["paths"]["/products/{product_id}/reviews"]["post"]["requestBody"]["content"]["application/json"]
    assert review["schema"]["required"] == ["rating", "text"]
    assert review["schema"]["properties"]["rating"] == {"type": "integer", "enum": [1, 2, 3, 4, 5]}
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"version: 1\ndefaults: {{layers: {{api_shield: {{spec: {out}, base_path: /api/v1}}}}}}\n")
    assert cli.main(["check-config", str(policy)]) == 0


# -- a page-based application in ISO-8859-1 --------------------------------------------------------


def test_a_latin1_shop_is_learned_as_written_and_passes_check_config(tmp_path, capsys):
    traffic = form_shop()
    document, out = learned(tmp_path, traffic)
    text = out.read_text(encoding="utf-8")
    assert "\\u" not in text and "Añadir al carrito" in text  # no escaped lone surrogate: the Latin-1 letter
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"version: 1\ndefaults: {{layers: {{api_shield: {{spec: {out}}}}}}}\n")
    assert cli.main(["check-config", str(policy)]) == 0
    assert {"/tienda/publico/anadir.jsp", "/tienda/index.jsp", "/tienda/producto/{producto_slug}"} <= set(document["paths"])
    enforced = shield(out)
    assert all(decide(enforced, r).allowed for r in traffic)  # it accepts every request it was learned from


def test_form_bodies_are_learned_like_query_parameters(tmp_path):
    document, _ = learned(tmp_path, form_shop())
    form = document["paths"]["/tienda/publico/registro.jsp"]["post"]["requestBody"]["content"][
        "application/x-www-form-urlencoded"]["schema"]
    fields = form["properties"]
    assert set(form["required"]) == set(fields) == {"login", "nombre", "apellidos", "email", "dni", "ciudad", "cp", "B1"}
    assert fields["B1"] == {"type": "string", "enum": ["Registrar"]}
    assert fields["cp"] == {"type": "string", "pattern": "^[0-9]{5}$"}  # a code with leading zeros is no number
    assert fields["dni"] == {"type": "string", "pattern": "^[0-9]{8}[A-Za-z]{1}$"}
    assert fields["email"]["format"] == "email"
    assert fields["apellidos"]["pattern"].startswith("^[A-Za-zªµºÀ-ÖØ-öø-ÿ '")
    query = {p["name"]: p["schema"] for p in document["paths"]["/tienda/publico/registro.jsp"]["get"]["parameters"]}
    assert query["cp"] == fields["cp"]  # the same field by GET and by POST, the same shape


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("field, value, allowed", [
    ("cantidad", "12", True),
    ("cantidad", "12 OR 1=1", False),
    ("cantidad", "-4", False),
    ("id", "4", False),  # an enum of the products seen
    ("B1", "Añadir al carrito", True),
    ("B1", "Añadir al carrito'; DROP TABLE usuarios;--", False),
])
def test_a_learned_document_enforces_a_pages_fields(tmp_path, method, field, value, allowed):
    _, out = learned(tmp_path, form_shop())
    fields = {"id": "2", "cantidad": "5", "B1": "Añadir al carrito", field: value}
    decision = decide(shield(out), form_record(0, method, "/tienda/publico/anadir.jsp", list(fields.items())))
    assert decision.allowed is allowed, decision.reasons


def test_a_required_form_field_dropped_or_sent_twice_with_a_payload_is_refused(tmp_path):
    _, out = learned(tmp_path, form_shop())
    policy = shield(out)
    missing = decide(policy, form_record(0, "POST", "/tienda/publico/anadir.jsp", [("id", "2"), ("B1", "Añadir al carrito")]))
    assert not missing.allowed and any("missing_param" in r and "cantidad" in r for r in missing.reasons)
    twice = decide(policy, form_record(0, "POST", "/tienda/publico/anadir.jsp",
                                       [("id", "2"), ("cantidad", "5"), ("cantidad", "5'--"), ("B1", "Añadir al carrito")]))
    assert not twice.allowed  # the second copy of a parameter is judged too (PHP reads the last one)


def test_multipart_fields_and_files_are_learned(tmp_path):
    boundary = "b0undary"

    def upload(n, caption):
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\n{caption}\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"p{n}.jpg\"\r\n"
                f"Content-Type: image/jpeg\r\n\r\nJPEGDATA{n}\r\n--{boundary}--\r\n")
        return {"id": f"u{n}", "request": {"method": "POST", "path": "/fotos/subir", "query": "", "body": body,
                                           "headers": [["content-type", f"multipart/form-data; boundary={boundary}"]]}}

    captions = ["Playa de Somo", "Picos de Europa", "Ría de Vigo", "Sierra Nevada", "Cabo de Gata"]
    traffic = [upload(n, captions[n % 5]) for n in range(60)]
    document, out = learned(tmp_path, traffic)
    content = document["paths"]["/fotos/subir"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert content["schema"]["properties"]["photo"] == {"type": "string", "format": "binary"}
    assert content["encoding"] == {"photo": {"contentType": "image/jpeg"}}
    assert content["schema"]["properties"]["caption"]["enum"] == sorted(captions)
    assert decide(shield(out), upload(99, "Playa de Somo")).allowed
    assert not decide(shield(out), upload(99, "<script>alert(1)</script>")).allowed


def test_json_strings_get_shapes_too(tmp_path):
    traffic = [{"id": str(n), "request": {"method": "POST", "path": "/api/pedidos", "query": "",
                                          "headers": [["content-type", "application/json"]],
                                          "body": json.dumps({"sku": f"AB-{100 + n}", "unidades": 1 + n % 4})}}
               for n in range(80)]
    document, _ = learned(tmp_path, traffic)
    schema = document["paths"]["/api/pedidos"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["sku"] == {"type": "string", "pattern": "^[A-Za-z]{2}[\\-]{1}[0-9]{3}$"}
    assert schema["properties"]["unidades"] == {"type": "integer", "enum": [1, 2, 3, 4]}


# -- value shapes ----------------------------------------------------------------------------------


def test_types_and_formats_from_values():
    assert scalar_schema(["1", "20", "-3"]) == {"type": "integer"}  # too few for a range
    assert scalar_schema(["1.5", "2"]) == {"type": "number"}
    assert scalar_schema(["2026-01-31T10:00:00Z"]) == {"type": "string", "format": "date-time"}
    assert scalar_schema(["price", "name"] * 20)["enum"] == ["name", "price"]
    assert scalar_schema([str(n) for n in range(1, 60)], BALANCED) == {"type": "integer", "minimum": 0, "maximum": 999}
    assert scalar_schema([str(n) for n in range(1, 60)], STRICT)["maximum"] == 99


def test_a_value_seen_once_or_twice_keeps_a_list_from_being_an_enum():
    common = ["rojo", "verde", "azul"] * 20
    assert "enum" in scalar_schema(common, BALANCED)
    assert "enum" not in scalar_schema(common + ["morado"], BALANCED)  # the list goes on
    assert "enum" in scalar_schema(common + ["morado", "morado"], STRICT)


def words(count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(4, 6))) for _ in range(count)]


def test_below_the_minimum_support_only_the_type_and_a_generous_length_are_kept():
    assert scalar_schema(words(29), BALANCED) == {"type": "string", "maxLength": 64}
    assert scalar_schema(words(30), BALANCED) == {"type": "string", "pattern": "^[A-Za-z]{1,13}$"}


def test_classes_widen_with_the_strictness():
    names = words(100)
    strict, balanced, loose = (scalar_schema(names, s)["pattern"] for s in (STRICT, BALANCED, LOOSE))
    assert strict == "^[a-z]{4,9}$"
    assert balanced == "^[A-Za-z]{1,13}$"
    assert loose == "^[\\p{L}]{1,20}$"


def test_non_utf8_values_are_learned_as_the_latin1_text_they_are_checked_as(tmp_path):
    traffic = [form_record(n, "GET", "/buscar", [("q", ["Jamón", "Piña", "Añejo"][n % 3])]) for n in range(60)]
    assert "%F3" in traffic[0]["request"]["query"]  # a single byte, not UTF-8
    document, out = learned(tmp_path, traffic)
    (param,) = document["paths"]["/buscar"]["get"]["parameters"]
    assert param["schema"]["enum"] == ["Añejo", "Jamón", "Piña"]
    assert decide(shield(out), form_record(0, "GET", "/buscar", [("q", "Piña")])).allowed


# -- --update and --diff -----------------------------------------------------------------------------


def test_update_widens_only_where_new_traffic_needs_it_and_says_what_changed(tmp_path, capsys):
    _, spec = learned(tmp_path, form_shop())
    before = yaml.safe_load(spec.read_text(encoding="utf-8"))
    new = [form_record(n, "GET", "/tienda/publico/anadir.jsp", [("id", "4"), ("cantidad", "3"), ("B1", "Añadir al carrito")])
           for n in range(5)]
    new += [form_record(10 + n, "GET", "/tienda/ofertas.jsp") for n in range(5)]
    new += [form_record(20, "POST", "/tienda/publico/autenticar.jsp",
                        [("login", "ana7"), ("pwd", "x.y*z12"), ("remember", "on"), ("B1", "Entrar")])]  # passes as it is
    out = tmp_path / "updated.yaml"
    capsys.readouterr()
    assert cli.main(["learn", str(write(tmp_path, new, "new.jsonl")), "--update", str(spec), "--out", str(out)]) == 0
    report = capsys.readouterr().err
    assert "GET /tienda/publico/anadir.jsp: query id: widened" in report
    assert "GET /tienda/ofertas.jsp: operation: added" in report
    after = yaml.safe_load(out.read_text(encoding="utf-8"))
    ids = {p["name"]: p["schema"] for p in after["paths"]["/tienda/publico/anadir.jsp"]["get"]["parameters"]}
    assert ids["id"] == {"type": "integer", "enum": [1, 2, 3, 4]}
    assert after["paths"]["/tienda/publico/autenticar.jsp"] == before["paths"]["/tienda/publico/autenticar.jsp"]
    assert after["paths"]["/tienda/publico/anadir.jsp"]["post"] == before["paths"]["/tienda/publico/anadir.jsp"]["post"]
    assert all(decide(shield(out), r).allowed for r in new)


def test_update_grows_a_learned_pattern_by_the_new_characters():
    from extproc.api_shield.widen import widen_scalar

    schema = {"type": "string", "pattern": "^[A-Za-z ]{1,20}$"}
    widened = widen_scalar(schema, ["Ibáñez", "O'Neill"], BALANCED)
    assert widened == {"type": "string", "pattern": "^[A-Za-zªµºÀ-ÖØ-öø-ÿ ']{1,20}$"}
    assert widen_scalar(schema, ["Ruiz"], BALANCED) is schema  # nothing to do
    hand_written = {"type": "string", "pattern": "^(foo|bar)$"}
    assert widen_scalar(hand_written, ["baz"], BALANCED)["anyOf"][0] == hand_written  # kept, not rewritten


@pytest.mark.parametrize("schema, values, widened", [
    ({"type": "integer", "enum": [1, 2, 3]}, ["4"], {"type": "integer", "enum": [1, 2, 3, 4]}),
    ({"type": "integer", "minimum": 0, "maximum": 999}, ["1500"], {"type": "integer", "minimum": 0, "maximum": 99999}),
    ({"type": "integer", "minimum": 0, "maximum": 999}, ["12a"], {"type": "string", "pattern": "^[0-9A-Za-z]{1,9}$"}),
    ({"type": "string", "enum": [f"v{n}" for n in range(64)]}, ["w1"],
     {"type": "string", "pattern": "^[A-Za-z]{1}[0-9]{1,7}$"}),  # past the enum's limit: the shape of all
    ({"type": "string", "pattern": "^[0-9]{8}[A-Za-z]{1}$"}, ["123456789L"],
     {"type": "string", "pattern": "^[0-9]{8,9}[A-Za-z]{1}$"}),
    ({"type": "string", "format": "email", "pattern": "^[a-z.@]{1,30}$"}, ["peña@x.es"],
     {"type": "string", "format": "idn-email", "pattern": "^[A-Za-zªµºÀ-ÖØ-öø-ÿ.@]{1,30}$"}),
])
def test_widening_keeps_what_the_schema_says_and_admits_the_new_values(schema, values, widened):
    from extproc.api_shield.widen import widen_scalar

    assert widen_scalar(schema, values, BALANCED) == widened


def test_a_json_body_widens_property_by_property():
    from extproc.api_shield.widen import widen_json

    schema = {"type": "object", "required": ["a", "b"], "properties": {
        "a": {"type": "integer", "enum": [1, 2]}, "b": {"type": "string", "pattern": "^[a-z]{1,5}$"}}}
    widened = widen_json(schema, [{"a": 3, "c": True}, {"a": 1, "b": "ABCDEFG"}], BALANCED)
    assert widened == {"type": "object", "required": ["a"], "properties": {
        "a": {"type": "integer", "enum": [1, 2, 3]}, "b": {"type": "string", "pattern": "^[A-Za-z]{1,7}$"},
        "c": {"type": "boolean"}}}


def test_a_new_operation_takes_the_parameter_name_the_document_gives_that_position():
    from extproc.api_shield.update import align

    known = ["/users/{user_id}", "/users/me", "/orders"]
    assert align("/users/{user_slug}/photos", known) == "/users/{user_id}/photos"
    assert align("/teams/{team_id}", known) == "/teams/{team_id}"


def test_diff_finds_shadow_endpoints_undocumented_params_and_unused_spec_endpoints(tmp_path, capsys):
    anonymous = {"id": "anon", "request": {"method": "GET", "path": "/api/v1/orders", "query": "", "headers": []}}
    records = write(tmp_path, shop_traffic(800) + [anonymous])
    assert cli.main(["learn", str(records), "--base-path", "/api/v1", "--diff", str(SHOP_SPEC)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(e["method"], e["path"]) for e in report["shadow_endpoints"]] == [("GET", "/internal/debug")]
    assert {"method": "GET", "path": "/products", "query": ["debug"]} in report["undocumented_params"]
    assert "GET /admin/reports/{report}" in report["spec_endpoints_not_seen"]
    assert "GET /products/{product_id}" not in report["spec_endpoints_not_seen"]
    assert {"operation": "GET /products", "where": "query debug", "change": "added",
            "after": {"type": "integer", "enum": [1]}} in report["changes"]
    # A request without the credential the spec asks for is reported, never learned away.
    assert {"operation": "GET /orders", "where": "security",
            "change": "requests without the credential: not learned"} in report["changes"]


# -- hostile input against a learned document -----------------------------------------------------

AWKWARD = [b"\xf1", b"\xff", b"\x00", b"\xc3", b"\xc0\xaf", b"%", b"%zz", b"&", b"=", b"+", b"\xed\xa0\x80", b"9" * 5000]
FIELD_BYTES = st.lists(st.sampled_from(AWKWARD) | st.binary(max_size=40), max_size=6).map(b"".join)


@pytest.fixture(scope="module")
def learned_shop(tmp_path_factory):
    folder = tmp_path_factory.mktemp("learned-shop")
    traffic = folder / "shop.jsonl"
    traffic.write_text("".join(json.dumps(r) + "\n" for r in form_shop()))
    out = folder / "learned.yaml"
    assert cli.main(["learn", str(traffic), "--out", str(out), "--strictness", "strict"]) == 0
    return shield(out)


@settings(max_examples=80, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from([b"cantidad", b"id", b"B1", b"nombre", b"cp", b"otro\xf1"]), value=FIELD_BYTES,
       method=st.sampled_from(["GET", "POST"]), page=st.sampled_from(["anadir.jsp", "registro.jsp"]))
def test_arbitrary_bytes_in_learned_form_fields_get_a_decision_never_a_fault(learned_shop, name, value, method, page):
    from urllib.parse import quote_from_bytes

    from extproc.core.request import Request
    from extproc.core.verdict import Outcome

    pair = quote_from_bytes(name) + "=" + quote_from_bytes(value)
    target = f"/tienda/publico/{page}"
    if method == "GET":
        request, body = Request("GET", f"{target}?{pair}"), b""
    else:
        request = Request("POST", target, headers=(("content-type", "application/x-www-form-urlencoded"),), has_body=True)
        body = pair.encode() + b"&raw=" + value  # the raw bytes too, not percent-encoded
    transaction = Transaction(learned_shop, request)
    decision = transaction.on_headers() or transaction.on_body(body)
    # No layer failed or was skipped (a layer over its CPU budget is a timing figure, not a fault: a
    # busy machine must not fail this test).
    assert not any(result.outcome in (Outcome.ERROR, Outcome.SKIPPED) for result in decision.results), decision.reasons
    assert not decision.allowed  # a required field is always missing or wrong
