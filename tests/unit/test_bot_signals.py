"""Bot signals without a model: user-agents, client hints, crawler verification, client behaviour."""
from __future__ import annotations

import json
import os
import time

import pytest

from extproc.bot import behaviour, clienthints
from extproc.bot.behaviour import ClientTracker, Observation
from extproc.bot.crawlers import (
    SPOOFED,
    UNVERIFIABLE,
    VERIFIED,
    RangesError,
    load_catalogue,
)
from extproc.bot.useragent import parse_agent
from extproc.layers.bot import RefreshingCatalogue
from tests.support.bot_requests import (
    CHROME_CH,
    CHROME_UA,
    GOOGLEBOT_IP,
    GOOGLEBOT_UA,
    GPTBOT_UA,
    OPENAI_IP,
)


@pytest.mark.parametrize("text, kind, engine, os_name", [
    (CHROME_UA, "browser", "chromium", "windows"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "CriOS/135.0.6998.99 Mobile/15E148 Safari/604.1", "browser", "webkit", "ios"),  # Chrome on iOS is WebKit
    ("Mozilla/5.0 (X11; Linux x86_64; rv:138.0) Gecko/20100101 Firefox/138.0", "browser", "gecko", "linux"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/135.0.0.0 "
     "Safari/537.36", "headless", "", "linux"),
    ("python-requests/2.31.0", "tool", "", ""),
    ("curl/8.5.0", "tool", "", ""),
    (GOOGLEBOT_UA, "botlike", "", ""),
    ("", "empty", "", ""),
    ("\udcff\x00garbage", "tool", "", ""),
])
def test_user_agent_kind_and_engine(text, kind, engine, os_name):
    agent = parse_agent(text)
    assert (agent.kind, agent.engine, agent.os) == (kind, engine, os_name)


def test_genuine_chromium_client_hints_pass_and_altered_ones_fail():
    assert clienthints.grease_consistent(clienthints.brands(CHROME_CH)) == 1.0
    # The same brands in another order, or the GREASE brand of another version: no build sends that.
    reordered = '"Chromium";v="135", "Google Chrome";v="135", "Not-A.Brand";v="8"'
    other_grease = '"Google Chrome";v="135", "Not A(Brand";v="99", "Chromium";v="135"'
    assert clienthints.grease_consistent(clienthints.brands(reordered)) == 0.0
    assert clienthints.grease_consistent(clienthints.brands(other_grease)) == 0.0
    assert clienthints.grease_consistent(clienthints.brands('"Chromium";v="135"')) == 0.0
    # Chromium without a vendor brand (Debian's 156, as it sends it): two brands, its own order.
    assert clienthints.grease_consistent(clienthints.brands('"Not:A-Brand";v="8", "Chromium";v="156"')) == 1.0
    assert clienthints.grease_consistent(clienthints.brands('"Chromium";v="156", "Not:A-Brand";v="8"')) == 0.0
    assert clienthints.grease_consistent(clienthints.brands('"Not:A-Brand";v="99", "Chromium";v="156"')) == 0.0
    assert clienthints.grease_consistent(clienthints.brands('"Chromium";v="98", "A";v="1", "B";v="2"')) == 0.5


def test_published_crawler_is_verified_only_from_its_ranges():
    catalogue = load_catalogue()
    assert catalogue.claim(GOOGLEBOT_UA, GOOGLEBOT_IP).status == VERIFIED
    assert catalogue.claim(GOOGLEBOT_UA, f"::ffff:{GOOGLEBOT_IP}").status == VERIFIED  # dual-stack listener
    assert catalogue.claim(GOOGLEBOT_UA, "198.51.100.7").status == SPOOFED
    assert catalogue.claim(GOOGLEBOT_UA, "not an address").status == SPOOFED
    gptbot = catalogue.claim(GPTBOT_UA, OPENAI_IP)
    assert (gptbot.category, gptbot.status) == ("ai", VERIFIED)
    assert catalogue.claim("Mozilla/5.0 (compatible; YandexBot/3.0)", "198.51.100.7").status == UNVERIFIABLE
    assert catalogue.claim(CHROME_UA, GOOGLEBOT_IP) is None
    assert catalogue.claim("Mozilla/5.0 (compatible; NotGooglebotX/1.0)", GOOGLEBOT_IP) is None


def test_ranges_file_errors_name_the_file(tmp_path):
    broken = tmp_path / "ranges.json"
    broken.write_text('{"crawlers": {"x": {"cidrs": ["10.0.0.300/8"]}}}')
    with pytest.raises(RangesError, match="ranges.json"):
        load_catalogue(broken)
    with pytest.raises(RangesError, match="missing.json"):
        load_catalogue(tmp_path / "missing.json")


def test_changed_ranges_file_is_picked_up_and_a_broken_one_ignored(tmp_path):
    path = tmp_path / "ranges.json"
    path.write_text(json.dumps({"crawlers": {"googlebot": {"user_agent_tokens": ["Googlebot"],
                                                            "cidrs": ["192.0.2.0/24"]}}}))
    refreshing = RefreshingCatalogue(str(path), interval_s=0.0001)

    def refreshed():
        if refreshing.refresher is not None:
            refreshing.refresher.join(10)  # a check that may have run before the file changed
        time.sleep(0.001)
        before = refreshing.refresher
        refreshing.get()  # starts a check in its own thread; the request does not wait for it
        assert refreshing.refresher is not before
        refreshing.refresher.join(10)
        return refreshing.current

    assert refreshing.get().claim(GOOGLEBOT_UA, "192.0.2.5").status == VERIFIED
    path.write_text(json.dumps({"crawlers": {"googlebot": {"user_agent_tokens": ["Googlebot"],
                                                            "cidrs": ["198.51.100.0/24"]}}}))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert refreshed().claim(GOOGLEBOT_UA, "192.0.2.5").status == SPOOFED
    path.write_text("{broken")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
    assert refreshed().claim(GOOGLEBOT_UA, "198.51.100.5").status == VERIFIED  # last good ranges stay


def _seen(path="/", page=True, cookie="", ua="UA", referer=False) -> Observation:
    return Observation(path, page, cookie, ua, referer)


def test_tracker_memory_is_capped_under_a_flood_of_new_clients():
    tracker = ClientTracker(max_clients=100, ttl_s=60)
    for n in range(10_000):
        tracker.observe(f"198.51.100.{n}", float(n) / 1000, _seen())
    assert len(tracker) == 100
    assert tracker.evicted == 9_900


def test_tracker_forgets_a_client_after_its_ttl():
    tracker = ClientTracker(max_clients=10, ttl_s=60)
    tracker.observe("a", 0.0, _seen())
    assert tracker.observe("a", 30.0, _seen()).count == 2
    assert tracker.observe("a", 200.0, _seen()).count == 1  # idle longer than the TTL: a new visit


def test_behaviour_tells_a_fixed_rate_loop_from_a_reading_person():
    tracker = ClientTracker()
    for n in range(30):
        loop = tracker.observe("loop", n * 0.5, _seen(path=f"/p/{n}"))
    reading_times = [0, 0.05, 0.1, 14, 14.05, 40, 41, 95, 95.1, 160]
    for n, t in enumerate(reading_times):
        person = tracker.observe("person", t, _seen(path=f"/page/{n // 2}", page=n % 2 == 0, referer=n > 0))
    names = dict(zip(("requests", "age", "rate", "gap_mean", "gap_cv"), range(5)))
    assert loop.features()[names["gap_cv"]] < 0.01 < person.features()[names["gap_cv"]]
    assert loop.features()[names["rate"]] > person.features()[names["rate"]]


def test_think_times_tell_a_driven_browser_from_a_reading_person():
    """Both load pages with their requisites; the script waits a few seconds, alike, between pages,
    the person anything from seconds to minutes."""
    tracker = ClientTracker()
    at = {name: i for i, name in enumerate(behaviour.FEATURES)}

    def visit(client: str, page_gaps: list[float]):
        t = 0.0
        for n, gap in enumerate(page_gaps):
            t += gap
            state = tracker.observe(client, t, _seen(path=f"/p/{n}"))
            for k in range(3):  # requisites, within a second
                state = tracker.observe(client, t + 0.2 * (k + 1), _seen(path=f"/static/{n}-{k}.js", page=False))
        return state.features()

    script = visit("driven", [0, 4.0, 5.5, 4.5, 5.0, 4.2, 5.8])
    person = visit("person", [0, 3.0, 42.0, 11.0, 95.0, 7.5, 30.0])
    for name in ("client_page_gap_log_mean", "client_page_gap_log_sd", "client_idle_gap_log_mean",
                 "client_idle_gap_log_sd"):
        assert script[at[name]] < person[at[name]], name
    assert script[at["client_idle_gaps_log"]] == person[at["client_idle_gaps_log"]]  # as many waits
