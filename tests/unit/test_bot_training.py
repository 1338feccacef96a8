"""Bot training: one command from records, reproducible, and a model the layer loads and uses.
With ../shared present, the committed model is also checked against the labelled data."""
from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from extproc.core.durable import DURABLE
from extproc.config.compile import parse_policy
from extproc.core.transaction import Transaction
from extproc.core.records import read_records, request_from_record
from tests.support import SHARED_DATA
from tests.support.bot_requests import (
    CHROME_UA,
    SAFARI_UA,
    chrome_navigation,
    library,
    safari_navigation,
)

pytest.importorskip("lightgbm")
pytest.importorskip("onnxmltools")

SHARED_BOT_DATA = SHARED_DATA / "bot" / "train.jsonl"
TOOLS = ["python-requests/2.31.0", "curl/8.5.0", "Go-http-client/1.1", "okhttp/4.11.0", "axios/1.6.2",
         "Wget/1.21.4", "Java/17.0.2", "aiohttp/3.9.1", "node", "libwww-perl/6.72"]


def _record(request, label: str, klass: str, index: int) -> dict:
    pseudo = {":method": request.method, ":authority": request.authority, ":scheme": "https", ":path": request.path}
    headers = [[name, pseudo[name]] for name in request.pseudo_order] + [list(h) for h in request.headers]
    return {"id": f"r{index}", "label": label, "class": klass,
            "request": {"method": request.method, "path": request.path, "headers": headers},
            "client": {"ip": request.source_ip, "t": request.received_at or float(index)}}


def synthetic_records(count: int = 600, seed: int = 3) -> list[dict]:
    """Browsers (their own header sets) and libraries (theirs), some libraries under a browser UA."""
    rng = random.Random(seed)
    records = []
    for n in range(count):
        ip = f"198.51.100.{rng.randrange(1, 250)}"
        kind = rng.random()
        if kind < 0.5:
            request = chrome_navigation(f"/p/{n}", ip) if rng.random() < 0.6 else safari_navigation(f"/p/{n}", ip)
            records.append(_record(request, "human", "human-browser", n))
        else:
            ua = rng.choice([CHROME_UA, SAFARI_UA]) if kind > 0.85 else rng.choice(TOOLS)
            klass = "spoofed-browser" if kind > 0.85 else "automation-tool"
            records.append(_record(library(ua, f"/api/{n}", ip.replace("198.51.100", "203.0.113")), "bot", klass, n))
    return records


def test_training_is_reproducible_and_the_layer_uses_the_model(tmp_path):
    from extproc_lab.bot import train

    data = tmp_path / "records.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in synthetic_records()) + "\n")
    outputs = []
    for run in ("a", "b"):
        out = tmp_path / run / "bot.onnx"
        assert train.main([str(data), "--out", str(out), "--skip-evaluation", "--iterations", "60"]) == 0
        outputs.append(out)
    assert outputs[0].read_bytes() == outputs[1].read_bytes()
    metadata = json.loads(outputs[0].with_suffix(".json").read_text())
    assert metadata["training"]["data"]["sha256"] and metadata["calibration"]["default_threshold_score"] == 30
    assert "# Bot score model" in outputs[0].with_suffix(".md").read_text()

    DURABLE.clear("bot_clients")
    policy = parse_policy(f"version: 1\ndefaults:\n  layers:\n    bot: {{model: {outputs[0]}}}\n", "test")
    classes = Counter()
    for record in synthetic_records(200, seed=11):  # another draw than the training one
        request, _ = request_from_record(record)
        verdict = Transaction(policy, request).on_headers().results[0].verdict
        classes[(record["label"], verdict.labels[0] == "human")] += 1
    assert classes[("human", True)] >= 0.95 * (classes[("human", True)] + classes[("human", False)])
    assert classes[("bot", False)] >= 0.95 * (classes[("bot", True)] + classes[("bot", False)])


@pytest.mark.skipif(not SHARED_BOT_DATA.exists(), reason="labelled bot data (../shared) not present")
def test_committed_model_on_the_labelled_sessions():
    """The shipped model through the layer, replaying every session in time order (per-client state
    included): the figures of the model card's training data, so a broken feature shows up here."""
    DURABLE.clear("bot_clients")
    policy = parse_policy("version: 1\ndefaults:\n  layers:\n    bot: {}\n", "test")
    outcome: Counter = Counter()
    for record in read_records(SHARED_BOT_DATA):
        request, _ = request_from_record(record)
        verdict = Transaction(policy, request).on_headers().results[0].verdict
        outcome[(record["class"], verdict.labels[0])] += 1
    def share(klass, predicate):
        total = sum(n for (c, _), n in outcome.items() if c == klass)
        return sum(n for (c, k), n in outcome.items() if c == klass and predicate(k)) / total
    assert share("human-browser", lambda k: k != "human") <= 0.005
    assert share("spoofed-browser", lambda k: k != "human") >= 0.98
    assert share("automation-tool", lambda k: k != "human") >= 0.9
    assert share("verified-crawler", lambda k: k in ("verified-crawler", "automation")) == 1.0
    assert share("ai-crawler", lambda k: k in ("ai-crawler", "spoofed")) == 1.0


def test_session_figures_count_when_each_client_was_first_caught():
    import numpy as np

    from extproc_lab.bot.train import Dataset, session_outcomes, session_rates

    # Two automated sessions (one caught at its third request, one never) and two human ones.
    sessions = ["a", "a", "a", "b", "b", "h1", "h2", "h2"]
    classes = ["automation-tool"] * 5 + ["human-browser"] * 3
    detail = ["selenium"] * 3 + ["curl"] * 2 + ["chrome"] * 3
    flagged = np.array([False, False, True, False, False, False, False, True])
    data = Dataset(np.zeros((8, 1)), np.array([1] * 5 + [0] * 3), classes, ["g"] * 8, detail, sessions)
    outcomes = session_outcomes(data, flagged)
    assert outcomes == {"automation-tool/selenium": [2], "automation-tool/curl": [None], "human-browser": [None, 1]}
    assert session_rates(outcomes) == {"automated_sessions_caught_rate": 0.5,
                                       "automated_sessions_first_flag_median": 2,
                                       "human_sessions_flagged_rate": 0.5}


def test_misses_before_a_clients_second_page_are_counted_apart():
    import numpy as np

    from extproc_lab.bot.train import Dataset, summarize

    # A driven browser missed on its first page and once later; a human never flagged.
    classes = ["automation-tool"] * 4 + ["human-browser"] * 2
    detail = ["selenium"] * 4 + ["chrome"] * 2
    first_page = [True, True, False, False, True, True]
    flagged = np.array([False, False, True, False, False, False])
    data = Dataset(np.zeros((6, 1)), np.array([1] * 4 + [0] * 2), classes, ["g"] * 6, detail, ["s"] * 4 + ["h"] * 2,
                   first_page)
    report = summarize(data, flagged.astype(float), flagged, 1.0)
    assert report["automated_missed"] == 3
    assert report["automated_missed_before_second_page"] == 2
    assert report["automation_and_spoofed_caught_rate"] == 0.25
