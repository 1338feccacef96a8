"""The bot challenge: clearance cookies and nonces (forged, expired, moved, replayed, rotated
keys), navigation detection, the page's report judged, and the layer's decisions with it."""
from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import replace

import pytest

from extproc.bot import clearance, probe
from extproc.bot.challenge import PROBE_HEADER, Challenge, ChallengeSettings
from extproc.bot.clearance import KeyRing, Signer, UsedNonces, binding, leading_zero_bits, parse_keys, proof_holds
from extproc.bot.navigation import is_navigation
from extproc.config.compile import ConfigError, parse_policy
from extproc.core.durable import DURABLE
from extproc.core.request import Request
from extproc.core.transaction import Transaction
from tests.support.bot_requests import CHROME_CH, CHROME_UA, GOOGLEBOT_IP, GOOGLEBOT_UA, chrome_navigation, crawler, library

KEY = "k" * 40
OLD_KEY = "o" * 40
NOW = 1_800_000_000.0
ME = binding("198.51.100.20\x1f", CHROME_UA)


def signer(*keys: str) -> Signer:
    return Signer(KeyRing(parse_keys(list(keys or (KEY,)), "test")))


@pytest.fixture(autouse=True)
def fresh_state():
    for kind in ("bot_clients", "bot_challenge_nonces"):
        DURABLE.clear(kind)


# -- the clearance cookie ----------------------------------------------------------------------


def test_a_clearance_is_accepted_for_its_own_client_until_it_expires():
    cookie = signer().clearance(ME, 600, NOW)
    assert signer().cleared(cookie, ME, NOW + 599)
    assert not signer().cleared(cookie, ME, NOW + 601)


@pytest.mark.parametrize("other", [binding("203.0.113.7\x1f", CHROME_UA),  # another address
                                   binding("198.51.100.20\x1ft13d1516h2_8daaf6152771", CHROME_UA),  # another JA4
                                   binding("198.51.100.20\x1f", CHROME_UA.replace("135", "136"))],  # another UA
                         ids=["address", "fingerprint", "user-agent"])
def test_a_clearance_moved_to_another_client_is_refused(other):
    assert not signer().cleared(signer().clearance(ME, 600, NOW), other, NOW)


def test_forged_clearances_are_refused():
    cookie = signer().clearance(ME, 600, NOW)
    version, kid, expires, mac = cookie.split(".")
    forged = [
        f"{version}.{kid}.{int(expires) + 86_400}.{mac}",  # a later expiry under the same MAC
        f"{version}.{kid}.{expires}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}",  # one MAC character
        signer("f" * 40).clearance(ME, 600, NOW),  # signed with a key the ring does not hold
        f"2.{kid}.{expires}.{mac}", f"{kid}.{expires}.{mac}", "", "....", f"1.{kid}.-5.{mac}",
    ]
    assert not any(signer().cleared(value, ME, NOW) for value in forged)


def test_after_a_rotation_old_clearances_stay_valid_until_the_old_key_is_dropped():
    issued_before = signer(OLD_KEY).clearance(ME, 600, NOW)
    rotated = signer(KEY, OLD_KEY)
    assert rotated.cleared(issued_before, ME, NOW)
    assert rotated.clearance(ME, 600, NOW).split(".")[1] == clearance.key_id(KEY.encode())  # the new key signs
    assert not signer(KEY).cleared(issued_before, ME, NOW)


def test_a_mounted_key_file_is_rotated_without_a_reload(tmp_path, monkeypatch):
    path = tmp_path / "keys"
    path.write_text(f"# signing key first\n{OLD_KEY}\n")
    ring = KeyRing(path=str(path))
    before = Signer(ring).clearance(ME, 600, NOW)
    path.write_text(f"{KEY}\n{OLD_KEY}\n")
    ring.refresh(time.monotonic() + clearance.KEY_FILE_CHECK_S + 1)
    assert ring.signing[0] == clearance.key_id(KEY.encode())
    assert Signer(ring).cleared(before, ME, NOW)
    path.write_text("too short\n")  # a broken rotation keeps the keys in use
    ring.refresh(time.monotonic() + 2 * clearance.KEY_FILE_CHECK_S + 2)
    assert ring.signing[0] == clearance.key_id(KEY.encode())


# -- nonces and the proof of work --------------------------------------------------------------


def solve(token: str, bits: int) -> int:
    return next(c for c in range(1 << 24) if leading_zero_bits(hashlib.sha256(f"{token}:{c}".encode()).digest()) >= bits)


def test_a_nonce_opens_only_for_its_client_and_only_until_it_expires():
    nonce = signer().nonce(ME, 8, 60, NOW)
    assert signer().open_nonce(nonce.token, ME, NOW + 59) == nonce
    assert signer().open_nonce(nonce.token, ME, NOW + 61) is None
    assert signer().open_nonce(nonce.token, binding("203.0.113.7\x1f", CHROME_UA), NOW) is None
    easier = nonce.token.replace(".8.", ".0.", 1)  # a lower difficulty breaks the MAC
    assert signer().open_nonce(easier, ME, NOW) is None


def test_a_nonce_is_answered_once():
    used = UsedNonces(cap=100)
    nonce = signer().nonce(ME, 0, 60, NOW)
    assert used.first_use(nonce, NOW) and not used.first_use(nonce, NOW + 1)


def test_the_replay_memory_stays_within_its_cap():
    used = UsedNonces(cap=100)
    for _ in range(250):
        used.first_use(signer().nonce(ME, 0, 60, NOW), NOW)
    assert len(used) <= 100


def test_the_proof_of_work_must_reach_the_difficulty():
    token = signer().nonce(ME, 10, 60, NOW).token
    counter = solve(token, 10)
    assert proof_holds(token, counter, 10)
    assert not any(proof_holds(token, wrong, 10) for wrong in ("1", None, True, -1, 2**60, 1.5))
    misses = [c for c in range(counter) if not proof_holds(token, c, 10)]
    assert len(misses) == counter  # every smaller counter falls short (solve found the first)


# -- which requests can run a page -------------------------------------------------------------

HTML = "text/html,application/xhtml+xml,*/*;q=0.8"


@pytest.mark.parametrize(("method", "headers", "navigation"), [
    ("GET", {"accept": HTML, "sec-fetch-mode": "navigate", "sec-fetch-dest": "document"}, True),
    ("GET", {"accept": HTML}, True),  # plain HTTP: no fetch metadata
    ("GET", {"accept": "*/*"}, False),  # curl, libraries
    ("GET", {}, False),
    ("GET", {"accept": "application/json"}, False),
    ("GET", {"accept": HTML, "sec-fetch-mode": "cors", "sec-fetch-dest": "empty"}, False),  # fetch()
    ("GET", {"accept": HTML, "sec-fetch-mode": "navigate", "sec-fetch-dest": "iframe"}, False),
    ("GET", {"accept": "image/avif,image/webp,*/*", "sec-fetch-mode": "no-cors", "sec-fetch-dest": "image"}, False),
    ("GET", {"accept": HTML, "authorization": "Bearer x"}, False),  # an API client
    ("GET", {"accept": HTML, "x-requested-with": "XMLHttpRequest"}, False),
    ("GET", {"accept": HTML, "upgrade": "websocket"}, False),
    ("POST", {"accept": HTML, "sec-fetch-mode": "navigate", "sec-fetch-dest": "document"}, False),  # a form
    ("HEAD", {"accept": HTML}, False),
])
def test_only_page_loads_count_as_navigations(method, headers, navigation):
    assert is_navigation(method, headers) is navigation


# -- the page's report -------------------------------------------------------------------------

FIRST = {"user-agent": CHROME_UA, "sec-ch-ua": CHROME_CH, "sec-ch-ua-mobile": "?0", "sec-ch-ua-platform": '"Windows"'}
CLEAN = {"wd": False, "art": [], "cdp": False, "ua": CHROME_UA, "pf": "Win32", "hl": [],
         "uad": {"b": ["Google Chrome", "Not-A.Brand", "Chromium"], "m": False, "p": "Windows"}}


@pytest.mark.parametrize(("change", "reason"), [
    ({"wd": True}, "webdriver"),
    ({"wd": None}, "webdriver"),
    ({"art": ["cdc_adoQpoasnfa76pfcZLmcfl_Array"]}, "automation-artefact"),
    ({"cdp": True}, "devtools-protocol"),
    ({"ua": CHROME_UA.replace("Chrome/", "HeadlessChrome/")}, "user-agent-mismatch"),
    ({"pf": "Linux x86_64"}, "platform-mismatch"),
    ({"uad": {"b": ["Chromium"], "m": False, "p": "Windows"}}, "client-hints-mismatch"),
    ({"uad": {"b": ["Google Chrome", "Not-A.Brand", "Chromium"], "m": False, "p": "Linux"}}, "client-hints-mismatch"),
    ({"uad": None}, "client-hints-mismatch"),  # hints sent, yet JavaScript has none
    ({"hl": ["no-window"]}, "headless"),
    ({"hl": "nothing"}, "headless"),
])
def test_a_report_showing_automation_fails_with_the_reason(change, reason):
    assert reason in probe.failures({**CLEAN, **change}, FIRST)


def test_a_plain_browsers_report_passes():
    assert probe.failures(CLEAN, FIRST) == ()
    firefox = {"wd": False, "art": [], "cdp": False, "ua": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 "
               "Firefox/128.0", "pf": "Linux x86_64", "uad": None, "hl": []}
    assert probe.failures(firefox, {"user-agent": firefox["ua"]}) == ()


@pytest.mark.parametrize("value", ["", "not base64!", base64.b64encode(b"[1]").decode(),
                                   base64.b64encode(b'{"n": 1, "s": {}}').decode(), "A" * 9000])
def test_malformed_reports_are_not_reports(value):
    assert probe.read_report(value) is None


# -- the layer ---------------------------------------------------------------------------------

CHALLENGE = f"challenge: {{key: {KEY}, difficulty: 4, score_at_or_below: 99}}"
POLICY = f"""
version: 1
defaults:
  layers:
    bot: {{action: challenge, {CHALLENGE}}}
routes:
  - name: watching
    match: {{path_prefix: /watch/}}
    mode: observe
  - name: plain
    match: {{path_prefix: /plain/}}
    layers:
      bot: {{action: deny, challenge: null}}  # the off switch
"""


def run(request: Request, policy_text: str = POLICY):
    decision = Transaction(parse_policy(policy_text, "test"), request).on_headers()
    (result,) = [r for r in decision.results if r.verdict.layer == "bot"]
    return decision, result


def challenge_page(decision) -> tuple[str, dict]:
    page = decision.reply.body.decode()
    conf = page.split('type="application/json">', 1)[1].split("</script>", 1)[0]
    return page, json.loads(conf)


def report(conf: dict, signals: dict) -> str:
    text = json.dumps({"n": conf["n"], "c": solve(conf["n"], conf["d"]), "s": signals})
    return base64.b64encode(text.encode()).decode()


def probe_request(conf: dict, signals: dict = CLEAN, ip: str = "198.51.100.20", user_agent: str = CHROME_UA):
    nav = chrome_navigation(ip=ip, user_agent=user_agent)
    headers = tuple((n, v) for n, v in nav.headers if n != "accept") + (
        ("accept", "*/*"), ("sec-fetch-mode", "cors"), (PROBE_HEADER, report(conf, {**signals, "ua": user_agent})))
    return replace(nav, method="POST", headers=headers)


def with_cookie(request: Request, set_cookie: str) -> Request:
    return replace(request, headers=request.headers + (("cookie", "theme=dark; " + set_cookie.split(";")[0]),))


def test_a_navigation_without_clearance_gets_the_page_with_its_request_id_and_nothing_of_the_score():
    request = replace(chrome_navigation(), request_id="req-<b>7</b>")
    decision, result = run(request)
    assert not decision.allowed and decision.status == 403 and decision.reply.content_type.startswith("text/html")
    page, conf = challenge_page(decision)
    assert "req-&lt;b&gt;7&lt;/b&gt;" in page and "<b>7" not in page  # escaped: the id is client input
    assert conf["d"] == 4 and conf["h"] == PROBE_HEADER
    assert "bot:challenge=issued" in result.verdict.reasons
    assert "score" not in page.lower() and "human" not in page.lower()


def test_a_passed_report_earns_a_clearance_that_lets_the_navigation_through_with_a_raised_score():
    decision, _ = run(chrome_navigation())
    _, conf = challenge_page(decision)
    answer, result = run(probe_request(conf))
    assert not answer.allowed and answer.status == 200  # answered by the sidecar, not the upstream
    assert "bot:challenge=passed" in result.verdict.reasons
    (cookie,) = [v for n, v in answer.reply.headers if n == "set-cookie"]
    assert cookie.startswith("__extproc_clearance=") and "HttpOnly" in cookie and "Secure" in cookie
    decision, result = run(with_cookie(chrome_navigation(), cookie))
    assert decision.allowed and result.verdict.scores["bot"] >= 90
    assert dict(decision.set_headers)["x-bot-class"] == "human"


def test_a_report_from_a_driven_browser_fails_as_automation_and_earns_nothing():
    decision, _ = run(chrome_navigation())
    _, conf = challenge_page(decision)
    answer, result = run(probe_request(conf, {**CLEAN, "wd": True, "cdp": True}))
    assert answer.status == 403 and set(json.loads(answer.reply.body)) == {"error", "request_id"}
    assert result.verdict.labels == ("automation",)
    assert {"bot:challenge=failed:webdriver", "bot:challenge=failed:devtools-protocol"} <= set(result.verdict.reasons)
    assert not any(n == "set-cookie" for n, _ in answer.reply.headers)


def test_a_solved_challenge_cannot_be_replayed_or_used_by_another_client():
    decision, _ = run(chrome_navigation())
    _, conf = challenge_page(decision)
    elsewhere, result = run(probe_request(conf, ip="203.0.113.50"))
    assert elsewhere.status == 403 and "bot:challenge=failed:stale" in result.verdict.reasons
    first = probe_request(conf)
    assert run(first)[0].status == 200
    again, result = run(first)
    assert again.status == 403 and "bot:challenge=failed:replayed" in result.verdict.reasons


def test_a_clearance_copied_to_another_client_gets_the_challenge_again():
    decision, _ = run(chrome_navigation())
    _, conf = challenge_page(decision)
    answer, _ = run(probe_request(conf))
    (cookie,) = [v for n, v in answer.reply.headers if n == "set-cookie"]
    moved, result = run(with_cookie(chrome_navigation(ip="203.0.113.50"), cookie))
    assert not moved.allowed and "bot:challenge=issued" in result.verdict.reasons


@pytest.mark.parametrize("request_", [
    library("curl/8.5.0"),  # Accept */*: the challenged class falls back to deny
    replace(chrome_navigation(), headers=chrome_navigation().headers + (("authorization", "Bearer t"),)),
], ids=["curl", "api-client"])
def test_what_cannot_run_a_page_never_gets_the_interstitial(request_):
    decision, result = run(request_)
    assert decision.reply is None
    assert not any("challenge" in reason for reason in result.verdict.reasons)


def test_verified_crawlers_are_never_challenged():
    decision, result = run(crawler(GOOGLEBOT_UA, GOOGLEBOT_IP, "/"))
    assert decision.allowed and result.verdict.labels == ("verified-crawler",)


def test_observe_mode_records_the_would_be_challenge_and_lets_the_page_through():
    decision, result = run(chrome_navigation("/watch/page"))
    assert decision.allowed and decision.would_deny == ("bot",)
    assert "bot:challenge=issued" in result.verdict.reasons


def test_a_route_can_turn_the_challenge_off():
    decision, result = run(chrome_navigation("/plain/page"))
    assert decision.allowed and result.verdict.reasons == ()


def test_without_a_challenge_section_the_layer_decides_as_before():
    plain = "version: 1\ndefaults:\n  layers:\n    bot: {}\n"
    decision, result = run(chrome_navigation(), plain)
    assert decision.allowed and result.verdict.reply is None


@pytest.mark.parametrize(("section", "message"), [
    ("{action: challenge}", "needs a `challenge` section"),
    (f"{{classes: {{verified-crawler: challenge}}, {CHALLENGE}}}", "verified crawlers"),
    ("{action: challenge, challenge: {key: short}}", "shorter than 32"),
    ("{action: challenge, challenge: {}}", "exactly one of key"),
    (f"{{action: challenge, challenge: {{key: {KEY}, key_file: /nowhere}}}}", "exactly one of key"),
    ("{action: challenge, challenge: {key_file: /nowhere/keys}}", "key file"),
])
def test_bad_challenge_settings_are_refused_with_a_reason(section, message):
    with pytest.raises(ConfigError, match=message):
        parse_policy(f"version: 1\ndefaults:\n  layers:\n    bot: {section}\n", "test")


def test_the_key_never_shows_in_the_settings():
    settings = ChallengeSettings(key=KEY)
    assert KEY not in repr(settings) and KEY not in str(settings.model_dump())
    assert isinstance(Challenge(settings).signer, Signer)


def test_a_failed_report_uses_up_its_nonce_so_the_work_cannot_be_retried_with_other_signals():
    decision, _ = run(chrome_navigation())
    _, conf = challenge_page(decision)
    assert run(probe_request(conf, {**CLEAN, "wd": True}))[0].status == 403
    retried, result = run(probe_request(conf))
    assert retried.status == 403 and "bot:challenge=failed:replayed" in result.verdict.reasons


def test_a_clearance_in_a_second_cookie_header_counts():
    decision, _ = run(chrome_navigation())
    _, conf = challenge_page(decision)
    answer, _ = run(probe_request(conf))
    (cookie,) = [v for n, v in answer.reply.headers if n == "set-cookie"]
    split = replace(chrome_navigation(), headers=chrome_navigation().headers + (
        ("cookie", "theme=dark"), ("cookie", cookie.split(";")[0])))  # HTTP/2 cookie crumbs
    assert run(split)[0].allowed


def test_metrics_and_traces_carry_issued_passed_failed_and_would_be_challenges():
    from extproc.observability.metrics import Metrics
    from extproc.observability.tracing import _span_attributes

    metrics = Metrics()
    page, _ = run(chrome_navigation())
    _, conf = challenge_page(page)
    observed, _ = run(chrome_navigation("/watch/page"))
    passed, _ = run(probe_request(conf))
    failed, _ = run(probe_request(conf))  # the same nonce again
    for decision in (page, observed, passed, failed):
        metrics.record(decision)
    count = metrics.registry.get_sample_value
    assert count("extproc_bot_challenges_total", {"route": "default", "event": "issued", "mode": "enforce"}) == 1
    assert count("extproc_bot_challenges_total", {"route": "watching", "event": "issued", "mode": "observe"}) == 1
    assert count("extproc_bot_challenges_total", {"route": "default", "event": "passed", "mode": "enforce"}) == 1
    assert count("extproc_bot_challenges_total", {"route": "default", "event": "failed", "mode": "enforce"}) == 1
    spans = [_span_attributes(d, chrome_navigation(), "digest") for d in (page, passed, failed)]
    assert [span["extproc.bot.challenge"] for span in spans] == ["issued", "passed", "failed"]
