"""The bot challenge end to end, with real browsers: a real Envoy, the sidecar, the echo upstream.

A plain Chromium window (under Xvfb, no automation) gets the interstitial, passes it and reaches
the upstream with its clearance; Chromium driven by Selenium gets the interstitial and is
classified automation; curl and an API client never see it; a clearance copied to another
client is refused. Browsers are slow on a shared machine: the waits are long, nothing is timed.
"""
from __future__ import annotations

import http.client
import json
import shutil
import subprocess
from contextlib import ExitStack

import pytest
from extproc.local.envoy import free_port
from tests.support.browsers import plain_chromium, require_plain_browser, require_selenium, selenium_chromium, xvfb
from tests.support.e2e_support import LOOPBACK, Response, get, marker, metric_value, scrape, started_stack, upstream_saw, wait_for

KEY = "e2e-challenge-signing-key-0123456789abcdef"
COOKIE = "__extproc_clearance"
POLICY = f"""
version: 1
defaults:
  layers:
    bot:
      budget_ms: 50
      action: challenge
      challenge: {{key: {KEY}, difficulty: 10, score_at_or_below: 99}}
routes:
  - name: no-challenge
    match: {{path_prefix: /open/}}
    layers:
      bot: {{budget_ms: 50, action: log, challenge: null}}
"""
BROWSER_WAIT_S = 180.0  # a cold Chromium on two shared cores
CHROMIUM_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/135.0.0.0 Safari/537.36"
NAVIGATION = (("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
              ("sec-fetch-mode", "navigate"), ("sec-fetch-dest", "document"), ("sec-fetch-site", "none"),
              ("accept-language", "en-US,en;q=0.9"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("bot-challenge")
    metrics_port = free_port()
    with started_stack("bot challenge stack", POLICY, workdir,
                       sidecar_args=["--drain-seconds", "1", "--audit-log", str(workdir / "audit.jsonl"),
                                     "--metrics-address", f"127.0.0.1:{metrics_port}"]) as s:
        s.audit, s.metrics_port = workdir / "audit.jsonl", metrics_port
        yield s


def audit_records(stack) -> list[dict]:
    if not stack.audit.exists():
        return []
    return [json.loads(line) for line in stack.audit.read_text().splitlines() if line.strip()]


def bot_result(record: dict) -> dict:
    return next(layer for layer in record["layers"] if layer["layer"] == "bot")


def send(port: int, path: str, headers, source: str = LOOPBACK) -> Response:
    """One GET from ``source`` (any loopback address: another client to the sidecar)."""
    return get(port, path, headers=headers, timeout=30, source=source)


def is_interstitial(response: Response) -> bool:
    return (response.header("content-type") or "").startswith("text/html") and b"extproc-challenge" in response.body


def clearance_of(seen: dict) -> str:
    cookies = "; ".join(value for name, value in seen["headers"] if name == "cookie")
    return next(part.strip() for part in cookies.split(";") if part.strip().startswith(COOKIE + "="))


def user_agent_of(seen: dict) -> str:
    return next(value for name, value in seen["headers"] if name == "user-agent")


def test_a_plain_chromium_window_passes_the_challenge_and_reaches_the_upstream(stack):
    require_plain_browser()
    path = f"/shop/page?visit={marker()}"
    with plain_chromium(stack.url + path):
        seen = wait_for(lambda: upstream_saw(stack, path), BROWSER_WAIT_S, interval=0.5,
                        what="the browser's page at the upstream")
    assert clearance_of(seen[0])  # it got there with the clearance the sidecar set
    assert not any(name.startswith("x-extproc-") for name, _ in seen[0]["headers"])
    records = audit_records(stack)
    issued = [r for r in records if r["path"].startswith("/shop/page") and r["method"] == "GET"]
    assert issued and all("bot:challenge=issued" in bot_result(r)["reasons"] for r in issued)
    assert any("bot:challenge=passed" in bot_result(r)["reasons"] for r in records if r["method"] == "POST")
    metrics = scrape(stack.metrics_port)
    assert metric_value(metrics, "extproc_bot_challenges_total", event="passed", mode="enforce") >= 1
    assert metric_value(metrics, "extproc_bot_challenges_total", event="issued", mode="enforce") >= 1


def test_a_clearance_copied_to_another_client_is_refused(stack):
    require_plain_browser()
    path = f"/shop/copied?visit={marker()}"
    with plain_chromium(stack.url + path):
        (seen,) = wait_for(lambda: upstream_saw(stack, path), BROWSER_WAIT_S, interval=0.5,
                           what="the browser's page at the upstream")
    cookie, agent = clearance_of(seen), user_agent_of(seen)
    headers = [*NAVIGATION, ("user-agent", agent), ("cookie", cookie)]
    again = f"/shop/copied?again={marker()}"
    same_client = send(stack.listen_port, again, headers)
    assert same_client.status == 200 and upstream_saw(stack, again), same_client  # the clearance itself is good
    other_address = send(stack.listen_port, f"/shop/copied?other={marker()}", headers, source="127.0.0.2")
    other_agent = send(stack.listen_port, f"/shop/copied?agent={marker()}",
                       [*NAVIGATION, ("user-agent", CHROMIUM_UA.replace("135", "134")), ("cookie", cookie)])
    for refused in (other_address, other_agent):
        assert refused.status == 403 and is_interstitial(refused), refused
    assert not upstream_saw(stack, "other=") and not upstream_saw(stack, "agent=")


@pytest.mark.parametrize("where", ["window", "headless"])
def test_chromium_driven_by_selenium_gets_the_challenge_and_is_classified_automation(stack, where):
    require_selenium()
    if where == "window":
        require_plain_browser()  # Xvfb
    path = f"/shop/driven-{where}?visit={marker()}"
    with ExitStack() as running:
        display = running.enter_context(xvfb()) if where == "window" else None
        driver = running.enter_context(selenium_chromium(display))
        driver.get(stack.url + path)
        wait_for(lambda: "could not be verified" in driver.find_element("id", "status").text, BROWSER_WAIT_S,
                 interval=0.5, what="the challenge page's verdict in the driven browser")
        assert driver.title == "Checking your browser"
        agent = driver.execute_script("return navigator.userAgent")
    if where == "window":
        assert "HeadlessChrome" not in agent  # nothing in its headers gives it away
    assert not upstream_saw(stack, path)
    reports = [r for r in audit_records(stack) if r["method"] == "POST" and r["path"].startswith(f"/shop/driven-{where}")]
    assert reports, "the driven browser's report is not in the audit log"
    bot = bot_result(reports[-1])
    assert bot["labels"] == ["automation"] and "bot:challenge=failed:webdriver" in bot["reasons"]
    assert reports[-1]["status"] == 403


def test_curl_never_sees_an_interstitial(stack):
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl not installed")
    for path in ("/shop/page", "/open/page"):
        out = subprocess.run([curl, "-s", "-i", "--max-time", "30", stack.url + path], capture_output=True,
                             check=True).stdout
        assert b"extproc-challenge" not in out and b"text/html" not in out.split(b"\r\n\r\n")[0]
        assert b"request_id" in out or b" 200 " in out.split(b"\r\n")[0]


def test_an_api_client_never_sees_an_interstitial_even_asking_for_html(stack):
    for headers in ([("accept", "application/json"), ("user-agent", CHROMIUM_UA)],
                    [*NAVIGATION, ("user-agent", CHROMIUM_UA), ("authorization", "Bearer t0ken")],
                    [("accept", "text/html"), ("sec-fetch-mode", "cors"), ("sec-fetch-dest", "empty"),
                     ("user-agent", CHROMIUM_UA)]):
        answer = send(stack.listen_port, "/shop/api/items", headers)
        assert not is_interstitial(answer), answer
        assert answer.status == 200 or set(answer.json()) == {"error", "request_id"}


def test_the_interstitial_carries_the_request_id_and_nothing_of_the_score(stack):
    likely_human = send(stack.listen_port, "/shop/first", [*NAVIGATION, ("user-agent", CHROMIUM_UA)])
    headless = send(stack.listen_port, "/shop/first",
                    [*NAVIGATION, ("user-agent", CHROMIUM_UA.replace("Chrome/", "HeadlessChrome/"))])
    pages = []
    for answer in (likely_human, headless):
        assert answer.status == 403 and is_interstitial(answer) and answer.header("cache-control") == "no-store"
        request_id = answer.header("x-request-id")
        assert request_id and request_id.encode() in answer.body
        assert not any(name.lower().startswith("x-bot") for name, _ in answer.headers)
        nonce = json.loads(answer.body.split(b'type="application/json">')[1].split(b"</script>")[0])["n"]
        pages.append(answer.body.replace(request_id.encode(), b"ID").replace(nonce.encode(), b"NONCE"))
    # Scores 1 and 33 apart, the pages differ only in the request id and the nonce: nothing of
    # the score, the class or the reasons reaches the client.
    assert pages[0] == pages[1]


def test_a_forged_report_is_refused_and_the_page_never_reaches_the_upstream(stack):
    path = f"/shop/forged?visit={marker()}"
    forged = [("accept", "*/*"), ("user-agent", CHROMIUM_UA), ("x-extproc-challenge", "eyJuIjoiMS5hLjEuMS5hLmEiLCJzIjp7fX0=")]
    conn = http.client.HTTPConnection(LOOPBACK, stack.listen_port, timeout=30)
    try:
        conn.request("POST", path, headers=dict(forged))
        answer = conn.getresponse()
        body, cookie = answer.read(), answer.getheader("set-cookie")
    finally:
        conn.close()
    assert answer.status == 403 and cookie is None and set(json.loads(body)) == {"error", "request_id"}
    assert not upstream_saw(stack, path)
