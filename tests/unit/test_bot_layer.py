"""The bot layer with the committed model: classes, scores, actions per route, headers, config."""
from __future__ import annotations

import io
import json

import pytest

from extproc.core.durable import DURABLE
from extproc.commands import score
from extproc.bot.model import DEFAULT_MODEL
from extproc.config.compile import ConfigError, parse_policy
from extproc.core.transaction import Transaction
from extproc.core.request import Request
from extproc.core.verdict import Action
from tests.support.bot_requests import (
    CHROME_CH,
    CHROME_UA,
    GOOGLEBOT_IP,
    GOOGLEBOT_UA,
    GPTBOT_UA,
    OPENAI_IP,
    chrome_navigation,
    crawler,
    library,
    safari_navigation,
)

POLICY = "version: 1\ndefaults:\n  layers:\n    bot: {}\n"


@pytest.fixture(autouse=True)
def fresh_clients():
    """Behaviour is kept per worker across policies; each test starts with no clients seen."""
    DURABLE.clear("bot_clients")


def run(request: Request, policy_text: str = POLICY):
    decision = Transaction(parse_policy(policy_text, "test"), request).on_headers()
    (result,) = [r for r in decision.results if r.verdict.layer == "bot"]
    return decision, result.verdict


def bot_class(verdict) -> str:
    return verdict.labels[0]


@pytest.mark.parametrize("request_", [chrome_navigation(), safari_navigation()], ids=["chrome", "safari"])
def test_browser_navigation_is_human_and_tagged_upstream(request_):
    decision, verdict = run(request_)
    assert decision.allowed and bot_class(verdict) == "human"
    headers = dict(decision.set_headers)
    assert int(headers["x-bot-score"]) > 30 and headers["x-bot-class"] == "human"


@pytest.mark.parametrize("user_agent", ["python-requests/2.31.0", "curl/8.5.0", "Go-http-client/1.1", ""])
def test_libraries_are_automation_and_denied_by_default(user_agent):
    decision, verdict = run(library(user_agent))
    assert bot_class(verdict) == "automation" and verdict.scores["bot"] <= 30
    assert not decision.allowed and decision.status == 403


def test_library_stack_under_a_browser_user_agent_is_spoofed():
    decision, verdict = run(library(CHROME_UA))
    assert bot_class(verdict) == "spoofed" and not decision.allowed


@pytest.mark.parametrize("sec_ch_ua, why", [
    ('"Chromium";v="135", "Google Chrome";v="135", "Not-A.Brand";v="8"', "client_hints_not_genuine"),
    ('"Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"', "client_hints_version"),
    ('"HeadlessChrome";v="135", "Not-A.Brand";v="8", "Chromium";v="135"', "headless_client_hints"),
])
def test_client_hints_no_genuine_chrome_sends_are_spoofing(sec_ch_ua, why):
    _, verdict = run(chrome_navigation(sec_ch_ua=sec_ch_ua))
    assert bot_class(verdict) == "spoofed" and verdict.scores["bot"] == 1
    assert f"bot:evidence={why}" in verdict.reasons


def test_chromium_without_a_vendor_brand_is_a_browser_not_a_spoof():
    # Debian's Chromium 156 as it navigates (captured): two brands, no "Google Chrome". It was
    # classed spoofed with score 1 while no Chromium of that version sends that list was believed.
    linux_ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"
    decision, verdict = run(chrome_navigation(sec_ch_ua='"Not:A-Brand";v="8", "Chromium";v="156"',
                                              user_agent=linux_ua, platform='"Linux"'))
    assert bot_class(verdict) == "human" and decision.allowed, verdict.reasons
    _, altered = run(chrome_navigation(sec_ch_ua='"Chromium";v="156", "Not:A-Brand";v="8"',
                                       user_agent=linux_ua, platform='"Linux"', ip="198.51.100.30"))
    assert bot_class(altered) == "spoofed" and "bot:evidence=client_hints_not_genuine" in altered.reasons


def test_headless_chrome_is_automation_with_its_evidence():
    ua = CHROME_UA.replace("Chrome/", "HeadlessChrome/")
    _, verdict = run(chrome_navigation(user_agent=ua, sec_ch_ua=CHROME_CH.replace("Google Chrome", "HeadlessChrome")))
    assert bot_class(verdict) == "automation" and "bot:evidence=headless_user_agent" in verdict.reasons


def test_googlebot_is_verified_from_its_ranges_and_spoofed_elsewhere():
    decision, verdict = run(crawler(GOOGLEBOT_UA, GOOGLEBOT_IP))
    assert bot_class(verdict) == "verified-crawler" and decision.allowed
    assert dict(decision.set_headers)["x-bot-class"] == "verified-crawler"
    decision, verdict = run(crawler(GOOGLEBOT_UA, "198.51.100.66"))
    assert bot_class(verdict) == "spoofed" and not decision.allowed
    assert "bot:crawler=googlebot:spoofed" in verdict.reasons


def test_a_route_can_block_ai_crawlers_and_keep_search_engines():
    policy = POLICY.replace("bot: {}", "bot: {action: log, classes: {ai-crawler: deny, verified-crawler: allow}}")
    decision, verdict = run(crawler(GPTBOT_UA, OPENAI_IP), policy)
    assert bot_class(verdict) == "ai-crawler" and not decision.allowed
    assert run(crawler(GOOGLEBOT_UA, GOOGLEBOT_IP), policy)[0].allowed
    decision, verdict = run(library("curl/8.5.0"), policy)
    assert decision.allowed and verdict.action is Action.LOG  # automation only logged on this route


def test_unverifiable_crawlers_are_automation_unless_trusted():
    yandex = "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)"
    assert bot_class(run(crawler(yandex, "198.51.100.3"))[1]) == "automation"
    trusting = POLICY.replace("bot: {}", "bot: {trust_unverifiable_crawlers: true}")
    assert bot_class(run(crawler(yandex, "198.51.100.3"), trusting)[1]) == "verified-crawler"


def test_observe_mode_records_but_never_blocks():
    decision, verdict = run(library("sqlmap/1.7"), POLICY.replace("bot: {}", "bot: {mode: observe}"))
    assert decision.allowed and decision.would_deny == ("bot",)


def test_client_copies_of_bot_headers_never_reach_the_upstream():
    forged = chrome_navigation()
    forged.headers += (("x-bot-score", "99"), ("x-bot-class", "human"))
    decision, _ = run(forged, POLICY.replace("bot: {}", "bot: {forward_scores: false}"))
    assert {"x-bot-score", "x-bot-class"} <= set(decision.remove_headers)
    assert not any(name.startswith("x-bot-") for name, _ in decision.set_headers)


def test_deny_reasons_stay_in_the_log_not_in_headers():
    decision, verdict = run(library("python-requests/2.31.0"))
    assert not decision.allowed and decision.set_headers == ()
    assert any(reason.startswith("bot:score=") for reason in verdict.reasons)


def test_behaviour_accumulates_per_client_key():
    policy = POLICY.replace("bot: {}", "bot: {client_key: [ip, user-agent], action: log}")
    layer = parse_policy(policy, "test").default.slots[0].layer
    for n in range(5):
        facts = layer.featurizer.facts(library("curl/8.5.0", ip="192.0.2.77", t=100.0 + n))
    assert facts.client_requests == 5
    other = layer.featurizer.facts(library("Wget/1.21", ip="192.0.2.77", t=106.0))
    assert other.client_requests == 1  # same address, other user-agent: another client under this key


@pytest.mark.parametrize("section, error", [
    ("{client_key: [ip, tls]}", "unknown client key part"),
    ("{threshold: 0}", "threshold"),
    ("{classes: {robots: deny}}", "classes"),
    ("{action: block}", "action"),
    ("{crawler_ranges: /nonexistent/ranges.json}", "ranges.json"),
    ("{model: /nonexistent/bot.onnx}", "bot.onnx"),
])
def test_config_errors_name_the_yaml_path(section, error):
    with pytest.raises(ConfigError) as caught:
        parse_policy(POLICY.replace("{}", section), "bad.yaml")
    assert "defaults.layers.bot" in str(caught.value) and error in str(caught.value)


def test_model_metadata_must_match_the_features_this_build_computes(tmp_path):
    metadata = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
    metadata["features"] = metadata["features"][:-1]
    (tmp_path / "bot.onnx").write_bytes(DEFAULT_MODEL.read_bytes())
    (tmp_path / "bot.json").write_text(json.dumps(metadata))
    with pytest.raises(ConfigError, match="retrain"):
        parse_policy(POLICY.replace("{}", f"{{model: {tmp_path / 'bot.onnx'}}}"), "bad.yaml")


def test_score_cli_reports_bot_score_and_class(tmp_path):
    records = tmp_path / "records.jsonl"
    lines = [
        {"id": "person", "request": {"method": "GET", "path": "/", "headers": [
            [":method", "GET"], [":authority", "www.shop.example"], [":scheme", "https"], [":path", "/"],
            *[list(h) for h in chrome_navigation().headers]]}, "client": {"ip": "198.51.100.20", "t": 1.0}},
        {"id": "script", "request": {"method": "GET", "path": "/api", "headers": [["user-agent", "curl/8.5.0"]]},
         "client": {"ip": "203.0.113.5", "t": 2.0}},
    ]
    records.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    out = io.BytesIO()
    assert score.score_records(records, score.default_policy(), out) == 0
    person, script = [json.loads(line) for line in out.getvalue().splitlines()]
    assert person["layers"]["bot"]["class"] == "human" and person["bot_score"] > 30
    assert script["layers"]["bot"]["class"] == "automation" and script["layers"]["bot"]["action"] == "log"
    assert script["bot_score"] <= 30 and "attack_score" in script  # every layer scored every record


def test_model_inference_time_is_exported():
    from prometheus_client import CollectorRegistry

    from extproc.observability.metrics import Metrics
    from extproc.config.store import PolicyStore

    policy = parse_policy(POLICY, "test")
    metrics = Metrics(CollectorRegistry())
    metrics.watch_state(PolicyStore(policy))
    before = metrics.registry.get_sample_value("extproc_model_inference_seconds_count", {"model": "bot"}) or 0
    Transaction(policy, chrome_navigation()).on_headers()
    after = metrics.registry.get_sample_value("extproc_model_inference_seconds_count", {"model": "bot"})
    assert after == before + 1
    assert metrics.registry.get_sample_value("extproc_model_inference_seconds_sum", {"model": "bot"}) > 0
