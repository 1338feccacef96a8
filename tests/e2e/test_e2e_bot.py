"""The bot layer end to end: a real Envoy, the sidecar with the committed model, the echo upstream."""
from __future__ import annotations

import pytest
from tests.support.e2e_support import request, started_stack

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
POLICY = """
version: 1
defaults:
  layers:
    bot: {budget_ms: 50}
routes:
  - name: tolerant
    match: {path_prefix: /tolerant/}
    layers:
      bot: {budget_ms: 50, action: log, classes: {spoofed: deny}}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with started_stack("bot stack", POLICY, tmp_path_factory.mktemp("bot"),
                       sidecar_args=["--drain-seconds", "1"]) as s:
        yield s


def test_library_client_is_denied_without_revealing_why(stack):
    response = request(stack.listen_port, "GET", "/api/items", headers=[("user-agent", "python-requests/2.31.0")])
    assert response.status == 403
    assert set(response.json()) == {"error", "request_id"}
    assert "bot" not in response.everything().lower().replace("x-request-id", "")


def test_googlebot_from_outside_its_ranges_is_spoofed_even_where_automation_is_tolerated(stack):
    response = request(stack.listen_port, "GET", "/tolerant/page", headers=[("user-agent", GOOGLEBOT)])
    assert response.status == 403


def test_tolerated_automation_reaches_the_upstream_tagged_and_forged_tags_are_replaced(stack):
    response = request(stack.listen_port, "GET", "/tolerant/page",
                       headers=[("user-agent", "curl/8.5.0"), ("x-bot-class", "human"), ("x-bot-score", "99")])
    assert response.status == 200
    seen = response.json()["headers"]
    assert [value for name, value in seen if name == "x-bot-class"] == ["automation"]
    (score,) = [value for name, value in seen if name == "x-bot-score"]
    assert int(score) <= 30
