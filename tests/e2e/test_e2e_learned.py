"""From traffic to a positive model, through a real Envoy: the sidecar captures a page-based shop's
requests (redacted), `extproc learn` writes an OpenAPI document from the capture, the policy is
reloaded with it, and the document enforces each page's form fields, by GET and by POST."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from extproc import cli
from tests.support.e2e_support import request, started_stack, wait_for, write_policy
from tests.support.form_traffic import latin1, shop_traffic

# The attack layer observes (it reads bodies, so they are captured; its false positives on generated
# passwords are not this test's subject): its would-be denies are captured, and not learned from.
CAPTURING = """
version: 1
routes:
  - name: shop
    match: {path_prefix: /tienda/}
    layers:
      attack: {mode: observe}
"""
ENFORCING = """
version: 1
routes:
  - name: shop
    match: {path_prefix: /tienda/}
    layers:
      api_shield: {spec: learned.yaml}
      attack: {mode: observe}
"""
PAGE = "/tienda/publico/anadir.jsp"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("learned")
    capture = workdir / "capture.jsonl"
    with started_stack("learned stack", CAPTURING, workdir, sidecar_args=[
            "--capture", str(capture), "--capture-sample", "1", "--reload-interval", "0.2",
            "--drain-seconds", "1"]) as s:
        s.capture = capture
        yield s


def send(stack, record: dict):
    spec = record["request"]
    target = spec["path"] + (f"?{spec['query']}" if spec["query"] else "")
    headers = [(k, v) for k, v in spec["headers"] if k.lower() not in ("host", "content-length")]
    return request(stack.listen_port, spec["method"], target, headers=headers,
                   body=spec["body"].encode() if spec["body"] else None)


def form(method: str, **fields: str) -> dict:
    encoded = "&".join(f"{name}={latin1(value)}" for name, value in fields.items())
    headers = [["Content-Type", "application/x-www-form-urlencoded"]] if method == "POST" else []
    return {"request": {"method": method, "path": PAGE, "query": encoded if method == "GET" else "",
                        "headers": headers, "body": encoded if method == "POST" else ""}}


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def learned(stack):
    traffic = shop_traffic(260, seed=9)
    for record in traffic:
        assert send(stack, record).status == 200
    wait_for(lambda: len(lines(stack.capture)) == len(traffic), 10, what="every request captured")
    spec = stack.policy.parent / "learned.yaml"
    assert cli.main(["learn", str(stack.capture), "--out", str(spec)]) == 0
    write_policy(stack.policy, ENFORCING)
    wait_for(lambda: send(stack, form("GET", id="2", cantidad="abc", B1="Añadir al carrito")).status == 403, 10,
             what="the learned document to be enforced")
    return traffic


def test_the_capture_is_redacted_and_carries_the_decision(stack, learned):
    captured = lines(stack.capture)[:len(learned)]
    logins = [r for r in captured if r["request"]["path"].endswith("autenticar.jsp")]
    assert logins and all("pwd=REDACTED" in (r["request"]["query"] or r["request"]["body"]) for r in logins)
    assert all(r["action"] == "allow" and r["layers"][0]["layer"] == "attack" for r in captured)
    assert all(r["label"] == ("attack" if r["would_deny"] else "benign") for r in captured)
    sent_passwords = {r["request"]["query"] or r["request"]["body"] for r in learned if "pwd=" in (
        r["request"]["query"] or r["request"]["body"])}
    assert sent_passwords and not any(p in stack.capture.read_text() for p in sent_passwords)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_the_learned_document_enforces_the_pages_form_fields(stack, learned, method):
    allowed = send(stack, form(method, id="2", cantidad="7", B1="Añadir al carrito"))
    assert allowed.status == 200
    refused = [
        form(method, id="2", cantidad="abc", B1="Añadir al carrito"),  # letters in a number
        form(method, id="9", cantidad="7", B1="Añadir al carrito"),  # a product that does not exist
        form(method, id="2", B1="Añadir al carrito"),  # a required field dropped
        form(method, id="2", cantidad="7", B1="Añadir al carrito'"),  # one quote past the button's label
    ]
    for record in refused:
        denied = send(stack, record)
        assert denied.status == 403, record
        assert set(denied.json()) == {"error", "request_id"} and "cantidad" not in denied.everything()


def test_every_request_learned_from_still_passes(stack, learned):
    captured = lines(stack.capture)[:len(learned)]  # in the order they were sent, one at a time
    kept = [sent for sent, seen in zip(learned, captured) if not seen["would_deny"]]
    assert len(kept) > len(learned) * 0.9
    for record in kept[::4]:
        assert send(stack, record).status == 200, record["request"]
