"""The attack layer with the committed model: verdicts, scores, per-route settings, score CLI."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from extproc.commands import score
from extproc.attack.model import DEFAULT_MODEL, metadata_path
from extproc.config.compile import ConfigError, parse_policy
from extproc.core.transaction import Transaction
from extproc.core.request import Request
from extproc.core.verdict import Action

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 Safari/537.36"
POLICY = "version: 1\ndefaults:\n  layers:\n    attack: {}\n"

ATTACKS = [
    ("sqli", "GET", "/products?id=1%27%20UNION%20SELECT%20username,password%20FROM%20users--", None, None),
    ("sqli", "GET", "/login?user=admin%27%20or%20%271%27=%271", None, None),
    ("xss", "GET", "/search?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E", None, None),
    ("xss", "POST", "/comments", "application/json", '{"text": "<img src=x onerror=alert(1)>"}'),
    ("rce", "GET", "/ping?host=127.0.0.1;cat%20/etc/passwd", None, None),
    ("lfi", "GET", "/download?file=../../../../etc/passwd", None, None),
    ("ssti", "POST", "/render", "application/x-www-form-urlencoded",
     "tpl=%7B%7Bconfig.__class__.__init__.__globals__%5B%27os%27%5D.popen%28%27id%27%29.read%28%29%7D%7D"),
    ("xxe", "POST", "/api/import", "application/xml",
     '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'),
]
BENIGN = [
    ("GET", "/search?q=blue+running+shoes&page=2", None, None),
    ("GET", "/products?category=books&sort=-price&min_price=10", None, None),
    ("POST", "/api/v1/orders", "application/json",
     '{"customer": {"name": "Zoë O\'Brien", "email": "zoe@example.com"}, "items": [{"sku": "AB-12", "qty": 2}]}'),
    ("POST", "/contact", "application/x-www-form-urlencoded",
     "name=Ana&message=Please+select+the+blue+one+and+update+my+order%2C+thanks%21"),
    ("GET", "/articles/how-to-choose-a-tent?utm_source=newsletter&utm_medium=email", None, None),
    # A beacon (sendBeacon posts text/plain): scored whole, not string by string, where short paths
    # alone look like traversal to the model.
    ("POST", "/api/v1/events", "text/plain;charset=UTF-8", '{"e":"page_view","p":"/c/cameras","ts":1718008321}'),
    ("POST", "/api/v1/events", "text/plain", '{"e":"page_view","p":"/c/lighting","ts":1718023480} '),
]


def request(method, target, content_type=None, body=None, user_agent=CHROME) -> Request:
    headers = [("user-agent", user_agent), ("accept", "*/*")]
    if content_type:
        headers.append(("content-type", content_type))
    return Request(method, target, authority="shop.example", headers=tuple(headers), has_body=body is not None)


def decide(policy, req: Request, body: str | None):
    transaction = Transaction(policy, req)
    decision = transaction.on_headers()
    return decision if decision is not None else transaction.on_body(body.encode())


@pytest.fixture(scope="module")
def policy():
    return parse_policy(POLICY)


@pytest.mark.parametrize(("family", "method", "target", "content_type", "body"), ATTACKS)
def test_attacks_are_denied_with_their_family_sub_score(policy, family, method, target, content_type, body):
    decision = decide(policy, request(method, target, content_type, body), body)
    verdict = decision.results[-1].verdict
    assert not decision.allowed and decision.denied_by == "attack"
    assert verdict.scores["attack"] <= 20
    assert family in verdict.labels  # the family head agrees
    assert any(reason.startswith("attack:worst=") for reason in verdict.reasons)


@pytest.mark.parametrize(("method", "target", "content_type", "body"), BENIGN)
def test_ordinary_requests_pass_with_a_clean_score(policy, method, target, content_type, body):
    decision = decide(policy, request(method, target, content_type, body), body)
    verdict = decision.results[-1].verdict
    assert decision.allowed
    assert verdict.scores["attack"] > 50
    headers = dict(decision.set_headers)
    assert headers["x-waf-attack-score"] == str(verdict.scores["attack"])
    assert {"x-waf-sqli-score", "x-waf-xss-score", "x-waf-rce-score"} <= headers.keys()


def test_route_settings_threshold_parts_exclusions_and_observe():
    attack = "/products?id=1%27%20UNION%20SELECT%20password%20FROM%20users--"
    policy = parse_policy(
        """
        version: 1
        defaults: {layers: {attack: {}}}
        routes:
          - {name: lenient, match: {path_prefix: /lenient}, layers: {attack: {threshold: 1, forward_scores: false}}}
          - {name: no-query, match: {path_prefix: /noquery}, layers: {attack: {parts: [path, headers]}}}
          - {name: excluded, match: {path_prefix: /excluded}, layers: {attack: {exclude: {args: [id]}}}}
          - {name: watch, match: {path_prefix: /watch}, mode: observe}
        """
    )
    assert not decide(policy, request("GET", attack), None).allowed
    lenient = decide(policy, request("GET", "/lenient" + attack), None)
    score_value = lenient.results[-1].verdict.scores["attack"]
    assert lenient.allowed == (score_value > 1)
    assert not any(name.startswith("x-waf-") for name, _ in lenient.set_headers)
    assert decide(policy, request("GET", "/noquery" + attack), None).allowed
    assert decide(policy, request("GET", "/excluded" + attack), None).allowed
    watched = decide(policy, request("GET", "/watch" + attack), None)
    assert watched.allowed and watched.would_deny == ("attack",)


def test_a_request_with_nothing_to_score_is_clean():
    query_only = parse_policy("version: 1\ndefaults: {layers: {attack: {parts: [query]}}}\n")
    verdict = decide(query_only, request("GET", "/", user_agent="curl/8.5.0"), None).results[-1].verdict
    assert verdict.action is Action.ALLOW and verdict.scores["attack"] == 99
    safe_only = decide(query_only, request("GET", "/?id=42&sort=price-desc"), None).results[-1].verdict
    assert safe_only.scores["attack"] == 99  # values of [A-Za-z0-9_.@-] are not scored


def test_sub_scores_follow_the_likeliest_family():
    from extproc.layers.attack import attributed

    probabilities = np.array([[0.99, 0.30, 0.05, 0.01] + [0.0] * 8, [0.10, 0.0, 0.0, 0.0] + [0.0] * 8])
    shares = attributed(probabilities)
    assert shares[0][0] == 0.99 and shares[0][1] == 0.99  # sqli, the likeliest family, shares the score
    assert abs(shares[0][2] - 0.99 * 0.05 / 0.30) < 1e-9
    assert not any(shares[1][1:])  # no family signal: no family blamed


def test_client_copies_of_score_headers_are_replaced(policy):
    req = request("GET", "/search?q=shoes")
    req.headers = req.headers + (("x-waf-attack-score", "99"), ("x-waf-sqli-score", "99"))
    decision = decide(policy, req, None)
    sent = dict(decision.set_headers)
    assert sent["x-waf-attack-score"] == str(decision.results[-1].verdict.scores["attack"])


def test_unusable_model_is_a_config_error_naming_the_setting(tmp_path):
    with pytest.raises(ConfigError) as error:
        parse_policy(f"version: 1\ndefaults: {{layers: {{attack: {{model: {tmp_path / 'missing.onnx'}}}}}}}\n")
    assert "defaults.layers.attack.model:" in str(error.value)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not onnx")
    metadata_path(broken).write_text(DEFAULT_MODEL.with_suffix(".json").read_text())
    with pytest.raises(ConfigError, match="cannot load the ONNX model"):
        parse_policy(f"version: 1\ndefaults: {{layers: {{attack: {{model: {broken}}}}}}}\n")


def test_model_metadata_documents_the_model():
    meta = json.loads(metadata_path(DEFAULT_MODEL).read_text())
    assert meta["feature_spec"]["version"] == 1
    assert meta["heads"][0] == "attack" and {"sqli", "xss", "rce"} <= set(meta["heads"])
    assert 0 < meta["calibration"]["threshold_probability"] < 1
    assert len(meta["training"]["data"]["sha256"]) == 64
    assert meta["metrics"]["folds"], "the model card figures come from the held-out evaluation"
    assert Path(DEFAULT_MODEL.with_suffix(".md")).exists()  # the model card


def test_score_command_writes_one_line_per_record(tmp_path):
    records = tmp_path / "records.jsonl"
    lines = [
        {"id": "a", "request": {"method": "GET", "path": "/search", "query": "q=%27+or+1%3D1--",
                                "headers": [["Host", "h"], ["User-Agent", CHROME]]}},
        {"id": "b", "request": {"method": "POST", "path": "/api", "headers": [["content-type", "application/json"]],
                                "body": '{"note": "see you at 5"}'}},
    ]
    records.write_text("\n".join(json.dumps(r) for r in lines) + "\n{broken\n")
    out = io.BytesIO()
    status = score.score_records(records, score.default_policy(), out)
    results = [json.loads(line) for line in out.getvalue().splitlines()]
    assert status == 1  # the broken line is reported, the others are scored
    assert [r.get("id") for r in results[:2]] == ["a", "b"]
    first, second, third = results
    assert first["action"] == "deny" and first["attack_score"] <= 20
    assert set(first["layers"]["attack"]["sub_scores"]) >= {"sqli", "xss", "rce", "lfi"}
    assert second["action"] == "allow" and second["attack_score"] > 50
    assert third["line"] == 3 and "not JSON" in third["error"]


def test_score_command_writes_records_whose_reasons_hold_bytes_that_are_not_utf8(tmp_path):
    """The attack layer names the worst argument in its reasons; a Latin-1 name (%F3) used to
    stop `extproc score` with a TypeError from orjson, on the first such record."""
    records = tmp_path / "records.jsonl"
    attack = {"id": "a", "request": {"method": "GET", "path": "/x",
                                     "query": "Jam%F3n=1%27%20UNION%20SELECT%20password%20FROM%20users--"}}
    records.write_text(json.dumps(attack) + "\n" + json.dumps({"id": "b", "request": {"method": "GET", "path": "/"}}))
    out = io.BytesIO()
    assert score.score_records(records, score.default_policy(), out) == 0
    first, second = [json.loads(line) for line in out.getvalue().splitlines()]
    assert first["action"] == "deny" and "attack:worst=query:Jam\u00f3n" in first["layers"]["attack"]["reasons"]
    assert second["id"] == "b"


def test_hostile_input_gets_a_defined_verdict():
    # Invalid UTF-8 everywhere, a 2 MB text body, a 20000-deep JSON body, broken escapes: no
    # exception, bounded work, and what was cut is reported in the reasons.
    policy = parse_policy("version: 1\ndefaults: {inspection: {oversize: inspect_prefix}, layers: {attack: {}}}\n")
    cases = [
        ("GET", "/x?q=%ff%fe%00%c0&%ff=1", None, None),
        ("POST", "/upload", "text/plain", "A " * 1_000_000),
        ("POST", "/api", "application/json", "[" * 20000 + '"x"' + "]" * 20000),
        ("POST", "/api", "application/json", '{"a": "\\ud800\\udc00 broken \\u12"'),
    ]
    verdicts = []
    for method, target, content_type, body in cases:
        decision = decide(policy, request(method, target, content_type, body), body)
        verdict = next(r.verdict for r in decision.results if r.verdict.layer == "attack")
        assert 1 <= verdict.scores["attack"] <= 99
        verdicts.append(verdict)
    assert "note:attack_scan_truncated" in verdicts[1].reasons
    # With the default policy the same body is refused before any layer runs.
    default = parse_policy(POLICY)
    assert decide(default, request("POST", "/upload", "text/plain", "A " * 1_000_000), "A " * 1_000_000).status == 413


def test_value_memo_changes_nothing_but_work():
    from extproc.attack.memo import MAX_KEY_CHARS, ValueMemo
    from extproc.attack.model import load_model

    model = load_model(None)
    texts = ["blue shoes", "1' or '1'='1", "Mozilla/5.0 (X11)", "blue shoes", "x" * (MAX_KEY_CHARS + 1)]
    locations = ["query:q", "query:id", "header:user-agent", "query:q", "body"]
    memo = ValueMemo(entries=2)

    def rows(framed):
        return model.probabilities(framed).tolist()

    first = np.array(memo.results(texts, locations, rows))
    again = np.array(memo.results(texts, locations, rows))
    cold = np.array(ValueMemo(entries=0).results(texts, locations, rows))
    # Equal up to float32 rounding: segment sums come from one running sum over the batch, so
    # the other values in a batch move a value's probability by ~1e-7 (never a score point here).
    assert np.allclose(first, cold, atol=1e-5) and np.allclose(again, cold, atol=1e-5)
    assert model.scores(first.max(axis=0)) == model.scores(cold.max(axis=0))
    assert len(memo.rows) <= 2  # bounded: least recently used evicted
    assert all(len(text) <= MAX_KEY_CHARS for _, text in memo.rows)  # long values are not kept
    assert memo.hits >= 1


def test_memo_setting_is_validated():
    with pytest.raises(ConfigError, match="memo_entries"):
        parse_policy("version: 1\ndefaults: {layers: {attack: {memo_entries: -1}}}\n")


@pytest.mark.parametrize(("charset", "content_type", "text"), [
    ("ibm037", "application/x-www-form-urlencoded", "q=' UNION SELECT password FROM users--"),
    ("utf-16", "text/plain", "<script>alert(document.cookie)</script>"),
    ("utf-16", "application/json", '{"comment": "<img src=x onerror=alert(1)>"}'),
])
def test_a_payload_in_a_declared_charset_is_scored_as_the_application_reads_it(policy, charset, content_type, text):
    body = text.encode(charset)
    req = request("POST", "/submit", f"{content_type}; charset={charset}", "")
    transaction = Transaction(policy, req)
    assert transaction.on_headers() is None
    decision = transaction.on_body(body)
    assert not decision.allowed and decision.denied_by == "attack"


def test_an_ordinary_form_in_ebcdic_passes(policy):
    body = "name=Ada Lovelace&city=London&note=please call after 5pm".encode("ibm037")
    req = request("POST", "/contact", "application/x-www-form-urlencoded; charset=ibm037", "")
    transaction = Transaction(policy, req)
    assert transaction.on_headers() is None
    assert transaction.on_body(body).allowed


def test_a_payload_split_over_repeated_parameters_is_scored_joined(policy):
    # ASP.NET joins q=a&q=b as "a,b": the halves alone are harmless, the joined value is not.
    from urllib.parse import urlencode

    halves = urlencode([("q", "; cat /et"), ("q", "c/passwd")])
    decision = decide(policy, request("GET", f"/search?{halves}"), None)
    assert not decision.allowed and decision.denied_by == "attack"
    repeated = decide(policy, request("GET", "/shop?size=XL&size=XL&size=M&colour=red"), None)
    assert repeated.allowed


def test_a_filename_payload_past_an_inner_quote_is_scored(policy):
    # The strict reading is 'a.png'; a parser that reads to the last quote sees the tag.
    body = ('--B\r\nContent-Disposition: form-data; name="f"; filename="a.png"><script>alert(1)</script>"\r\n'
            'Content-Type: image/png\r\n\r\nPNG\r\n--B--\r\n')
    decision = decide(policy, request("POST", "/upload", "multipart/form-data; boundary=B", body), body)
    assert not decision.allowed and decision.denied_by == "attack"


def test_a_json_document_declared_as_a_form_is_read_as_json(policy):
    # Frameworks that parse JSON whatever the content type read {"q": ...}; a form parser reads
    # '{"q": "..."}' split at '&' and '=' into fragments.
    body = json.dumps({"q": "-1 OR 0x1=1--", "page": 2})
    decision = decide(policy, request("POST", "/search", "application/x-www-form-urlencoded", body), body)
    assert not decision.allowed and decision.denied_by == "attack"


def test_numbers_in_groups_and_nested_form_names_are_not_scored_operators_and_prototypes_are():
    from extproc.attack.extract import ExtractSettings, extract

    def scored(query: str) -> list[str]:
        return extract(Request("GET", "/p?" + query), ExtractSettings()).texts[1:]  # [0] is the path

    # A card number or phone number in groups, nested form names: nothing an injection can be made of.
    assert scored("card=4111+1111+1111+1111&phone=555+123+4567") == []
    assert scored("search%5Bstate%5D=1&items%5B0%5D%5Bsku%5D=a") == []
    assert scored("user%5B%24ne%5D=1") == ["user[$ne]"]  # a NoSQL operator
    assert scored("a%5B__proto__%5D%5Bx%5D=1") == ["a[__proto__][x]"]  # prototype pollution
    assert scored("q=1+or+1") == ["1 or 1"]
