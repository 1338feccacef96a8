"""Threat-intel rules: CEL expressions with an index, fast sets, shadow mode, expiry, actions,
signed bundles with hot swap, and the React2Shell virtual patch."""
from __future__ import annotations

import base64
import json
import os
import random
import threading
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from extproc import cli
from extproc.config.compile import ConfigError, parse_policy
from extproc.rules.bundle import sign
from extproc.rules.ipset import IPSet
from extproc.rules.signatures import SignatureSet
from extproc.core.transaction import Transaction
from extproc.core.request import Request
from tests.support import REPO

DEPLOY = REPO / "deploy" / "intel"
BOUNDARY = "----WebKitFormBoundaryx8jO2oVc6SWP3Sad"


def policy_with(rules_yaml: str, extra_layers: str = "") -> object:
    return parse_policy(f"version: 1\ndefaults:\n  layers:\n    rules:\n{rules_yaml}{extra_layers}", "test")


def run(policy, method="GET", target="/", headers=(), body=b"", source_ip="198.51.100.9"):
    request = Request(method, target, headers=tuple(headers), source_ip=source_ip, has_body=bool(body))
    transaction = Transaction(policy, request)
    decision = transaction.on_headers()
    return decision if decision is not None else transaction.on_body(body)


CEL_RULES = """\
      lists:
        blocked: {cidrs: [203.0.113.0/24, '2001:db8:bad::/48']}
      signatures:
        scanners: {literals: [sqlmap, nikto, masscan]}
      rules:
        - id: admin-from-outside
          when: {path_prefixes: [/admin/]}
          expr: '!source_ip.startsWith("10.")'
          action: deny
          status: 404
        - id: blocked-addresses
          expr: in_list("blocked", source_ip)
          action: deny
        - id: scanner-agents
          expr: sig("scanners", user_agent)
          action: deny
        - id: legacy-api-header
          when: {methods: [POST], headers: [x-legacy-client]}
          expr: 'header("x-legacy-client").startsWith("v1")'
          action: set_headers
          headers: {x-extproc-legacy: "true"}
        - id: try-stricter-uploads
          mode: shadow
          when: {methods: [POST], path_prefixes: [/upload]}
          expr: body_size > 1000
          action: deny
        - id: old-campaign
          expr: 'path == "/old"'
          action: deny
          expires: 2020-01-01T00:00:00Z
"""


def test_cel_rules_deny_tag_and_shadow():
    policy = policy_with(CEL_RULES)
    admin = run(policy, target="/admin/users")
    assert (admin.allowed, admin.status, admin.reasons) == (False, 404, ("rule:admin-from-outside",))
    assert run(policy, target="/admin/users", source_ip="10.1.1.1").allowed
    assert not run(policy, source_ip="203.0.113.77").allowed
    assert not run(policy, source_ip="2001:db8:bad::1").allowed
    assert not run(policy, headers=[("user-agent", "Mozilla/5.0 sqlmap/1.7")]).allowed
    legacy = run(policy, "POST", "/api", [("x-legacy-client", "v1.4")], b"{}")
    assert legacy.allowed and ("x-extproc-legacy", "true") in legacy.set_headers
    shadow = run(policy, "POST", "/upload/file", body=b"x" * 5000)
    assert shadow.allowed and shadow.reasons == ("rule-shadow:try-stricter-uploads",)
    assert run(policy, target="/old").allowed  # expired


def test_cel_rules_read_requests_that_are_not_utf8():
    """Invalid UTF-8 in a path, header, cookie or argument used to fail the whole rules layer
    (CEL refuses such strings): a 503 for a legitimate request, and a scanner that appended one
    \\xff byte to its user agent was not matched. Now every rule still runs and matches, and reads
    such a byte as its Latin-1 character (0xFF is 'ÿ'), as every library is shown it (extproc/core/text.py)."""
    policy = policy_with("""\
      signatures:
        scanners: {literals: [sqlmap]}
      rules:
        - {id: scanner, expr: 'sig("scanners", user_agent) || rx(header("x-tool"), "sqlmap")', action: deny}
        - {id: env, expr: 'path.endsWith("/.env") || cookie("c") == "xÿ" || arg("q") == "ÿ"', action: deny}
""")
    assert run(policy, target="/caf%E9/%ff").allowed
    assert run(policy, headers=[("cookie", "a=\udcff"), ("x-other", "\udcfe")]).allowed
    for request in ({"headers": [("user-agent", "sqlmap\udcff")]}, {"headers": [("x-tool", "sqlmap\udcff")]},
                    {"target": "/%ff/.env"}, {"headers": [("cookie", "c=x\udcff")]}, {"target": "/?q=%ff"}):
        decision = run(policy, **request)
        assert not decision.allowed and decision.status == 403, request
        assert [r.outcome.value for r in decision.results] == ["ok"]


def test_rule_index_keeps_rules_away_from_requests_they_do_not_apply_to():
    layer = policy_with(CEL_RULES).default.slots[0].layer
    assert [r.id for r in layer.static.candidates(Request("GET", "/products"))] == [
        "blocked-addresses", "scanner-agents", "old-campaign"]
    assert "admin-from-outside" in [r.id for r in layer.static.candidates(Request("GET", "/admin/x"))]
    assert "legacy-api-header" not in [r.id for r in layer.static.candidates(Request("GET", "/admin/x"))]


def test_skip_action_takes_named_layers_out_of_the_request():
    policy = policy_with("""\
      rules:
        - id: health-checks-skip-ml
          when: {path_prefixes: [/healthz]}
          expr: source_ip.startsWith("10.")
          action: skip
          skip: [attack]
""", "    attack: {}\n")
    probe = run(policy, target="/healthz?q=%27%20union%20select%201--", source_ip="10.0.0.5")
    assert probe.allowed and [r.verdict.layer for r in probe.results] == ["rules"]
    outside = run(policy, target="/healthz?q=%27%20union%20select%20password%20from%20users--")
    assert not outside.allowed and outside.denied_by == "attack"


def test_late_rules_read_the_scores_of_the_layers_before_them():
    policy = parse_policy("""
version: 1
defaults:
  layers:
    attack: {threshold: 5}
    late_rules:
      rules:
        - id: stricter-on-admin
          when: {path_prefixes: [/admin/]}
          expr: scores["attack"] <= 60
          action: deny
""", "test")
    suspicious = "/admin/search?q=select+name"  # likely an attack, not sure enough to deny anywhere
    assert not run(policy, target=suspicious).allowed
    assert run(policy, target="/admin/search?q=blue+shoes").allowed
    assert run(policy, target=suspicious.replace("/admin/", "/shop/")).allowed
    # The same in a body: late_rules used to run with the headers, before the attack layer had
    # the body, so no request with a body was ever denied by a score.
    observed = parse_policy("""
version: 1
defaults:
  layers:
    attack: {threshold: 5, mode: observe}
    late_rules:
      rules:
        - {id: stricter-on-admin, when: {path_prefixes: [/admin/]}, expr: 'scores["attack"] <= 60', action: deny}
""", "test")
    form = [("content-type", "application/x-www-form-urlencoded")]
    denied = run(observed, "POST", "/admin/search", form, b"q=1'+UNION+SELECT+password+FROM+users--")
    assert not denied.allowed and denied.denied_by == "late_rules"
    assert [r.verdict.layer for r in denied.results] == ["attack", "late_rules"]
    assert run(observed, "POST", "/admin/search", form, b"q=blue+shoes").allowed


@pytest.mark.parametrize("expr, error", [
    ('user_agent.matches("(?i)sqlmap")', "matches() is refused"),
    ("requests > 1", "unknown variable"),
    ('in_list("nope", source_ip)', "no IP list named 'nope'"),
    ('sig("nope", path)', "no signature set named 'nope'"),
    ('rx(path, "(a)\\\\1")', "not accepted (RE2"),
    ("path ==", "CEL:"),
])
def test_bad_expressions_are_config_errors(expr, error):
    rules = f"      rules:\n        - id: r\n          expr: '{expr}'\n          action: deny\n"
    with pytest.raises(ConfigError) as caught:
        policy_with(rules)
    assert "defaults.layers.rules" in str(caught.value) and "rules[0].expr" in str(caught.value)
    assert error in str(caught.value)


def test_ip_list_of_a_hundred_thousand_entries():
    rng = random.Random(1)
    cidrs = [f"{rng.randrange(1, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.0/24" for _ in range(100_000)]
    cidrs += ["2001:db8:1::/48", "192.0.2.1"]
    networks = IPSet(cidrs)
    first = cidrs[0].split("/")[0]
    assert first in networks and f"::ffff:{first}" in networks and "2001:db8:1:ffff::1" in networks
    assert "192.0.2.1" in networks and "192.0.2.2" not in networks and "not-an-ip" not in networks


def test_signatures_run_in_linear_time_and_backtracking_patterns_are_safe():
    catastrophic = SignatureSet(regexes=[r"(a+)+$", r"^(\w+\s?)*$"])
    assert not catastrophic.search("a" * 200_000 + "!")  # RE2: no exponential blow-up
    assert catastrophic.search("a" * 1000)
    with pytest.raises(ValueError, match="RE2"):
        SignatureSet(regexes=[r"(a)\1"])  # needs backtracking: refused
    literals = SignatureSet(literals=["UNION SELECT", "<script"])
    assert literals.search("1 union select 2") and not literals.search("a reunion, selected")
    assert literals.search("\udcff<SCRIPT>")  # undecodable input is searched, not a crash


# -- signed bundles ------------------------------------------------------------------------------


def keypair(tmp_path: Path, name: str = "feed") -> tuple[Ed25519PrivateKey, str]:
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key, base64.b64encode(raw).decode()


def write_bundle(folder: Path, name: str, rules: str, key: Ed25519PrivateKey | None, version: str = "1") -> Path:
    path = folder / f"{name}.bundle.yaml"
    path.write_text(f"bundle: {name}\nversion: '{version}'\nrules:\n{rules}")
    if key is not None:
        path.with_name(path.name + ".sig").write_bytes(sign(path.read_bytes(), key))
    stamp = time.time_ns() + random.randrange(10**9)
    os.utime(path, ns=(stamp, stamp))
    return path


BLOCK_X = "  - {id: block-x, expr: 'path == \"/x\"', action: deny}\n"
BLOCK_Y = "  - {id: block-y, expr: 'path == \"/y\"', action: deny}\n"


def feed_policy(folder: Path, public: str):
    feeds = f"[{{dir: {folder}, keys: ['{public}'], poll_s: 1}}]"
    return parse_policy(f"version: 1\ndefaults: {{layers: {{rules: {{feeds: {feeds}}}}}}}\n", "t")


def wait_until(predicate, timeout: float = 15.0) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "the feed did not change in time"
        time.sleep(0.05)


def test_signed_bundle_loads_and_bad_ones_never_replace_it(tmp_path):
    key, public = keypair(tmp_path)
    other, _ = keypair(tmp_path)
    write_bundle(tmp_path, "intel", BLOCK_X, key)
    policy = feed_policy(tmp_path, public)
    assert not run(policy, target="/x").allowed
    for bad_key in (other, None):  # signed by another key, then unsigned
        path = write_bundle(tmp_path, "intel", BLOCK_Y, bad_key, version="2")
        if bad_key is None:
            path.with_name(path.name + ".sig").unlink()
        time.sleep(2.5)  # the feed re-reads the directory every second here
        assert not run(policy, target="/x").allowed and run(policy, target="/y").allowed
    # Tampered after signing: the signature of version 3 lands first, then the changed text (the
    # poller may read the folder at any moment in between, and must never see a valid pair).
    signed = f"bundle: intel\nversion: '3'\nrules:\n{BLOCK_Y}".encode()
    path.with_name(path.name + ".sig").write_bytes(sign(signed, key))
    path.write_bytes(signed.replace(b"/y", b"/z"))
    os.utime(path, ns=(time.time_ns() + 5 * 10**9,) * 2)
    time.sleep(2.5)
    assert not run(policy, target="/x").allowed and run(policy, target="/z").allowed


def test_a_feed_no_policy_uses_stops_polling(tmp_path):
    import gc
    import threading

    key, public = keypair(tmp_path)
    write_bundle(tmp_path, "intel", BLOCK_X, key)
    before = set(threading.enumerate())
    policy = feed_policy(tmp_path, public)
    pollers = [t for t in threading.enumerate() if t.name == "rule-feed" and t not in before]
    assert len(pollers) == 1 and not run(policy, target="/x").allowed
    del policy  # a reload to a policy without the feed drops the last reference the same way
    gc.collect()
    wait_until(lambda: not any(t.is_alive() for t in pollers), timeout=5)


def test_bundle_hot_swap_under_traffic(tmp_path):
    key, public = keypair(tmp_path)
    write_bundle(tmp_path, "intel", BLOCK_X, key)
    policy = feed_policy(tmp_path, public)
    failures, stop = [], threading.Event()

    def traffic():
        while not stop.is_set():
            decision = run(policy, target="/ok")
            if not decision.allowed:
                failures.append((decision.status, decision.reasons))

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        write_bundle(tmp_path, "intel", BLOCK_Y, key, version="2")
        wait_until(lambda: not run(policy, target="/y").allowed)
        assert run(policy, target="/x").allowed
    finally:
        stop.set()
        worker.join()
    assert failures == []


# -- React2Shell ----------------------------------------------------------------------------------


def multipart(fields: dict[str, str]) -> bytes:
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
             for name, value in fields.items()]
    return ("".join(parts) + f"--{BOUNDARY}--\r\n").encode()


EXPLOIT = {  # the shape of the public proof of concept: a fake chunk whose "then" walks __proto__
    "0": json.dumps({"then": "$1:__proto__:then", "status": "resolved_model", "reason": -1,
                     "value": '{"then":"$B1337"}',
                     "_response": {"_prefix": "process.mainModule.require('child_process').execSync('id');",
                                   "_chunks": "$Q2", "_formData": {"get": "$1:constructor:constructor"}}}),
    "1": '"$@0"',
    "2": "[]",
}


@pytest.fixture(scope="module")
def patched():
    public = (DEPLOY / "keys" / "example.pub").read_text().strip()
    return parse_policy(f"version: 1\ndefaults: {{layers: {{rules: {{feeds: [{{dir: {DEPLOY}, keys: ['{public}']}}]}}}}}}\n",
                        "react2shell")


def action_headers(content_type: str) -> list[tuple[str, str]]:
    return [("next-action", "7f3a1c9e2b4d6f8a0c1e3b5d7f9a1c3e5b7d9f1a"), ("content-type", content_type),
            ("accept", "text/x-component"), ("user-agent", "Mozilla/5.0")]


def test_react2shell_exploit_is_blocked(patched):
    decision = run(patched, "POST", "/", action_headers(f"multipart/form-data; boundary={BOUNDARY}"), multipart(EXPLOIT))
    assert not decision.allowed and "rule:cve-2025-55182-react2shell" in decision.reasons
    escaped = multipart({**EXPLOIT, "0": EXPLOIT["0"].replace("__proto__", "\\u005f\\u005fproto\\u005f\\u005f")})
    assert not run(patched, "POST", "/", action_headers(f"multipart/form-data; boundary={BOUNDARY}"), escaped).allowed


@pytest.mark.parametrize("content_type, body", [
    ("text/plain;charset=UTF-8", b'["$K1"]'),
    ("text/plain;charset=UTF-8", json.dumps([{"productId": 42, "quantity": 2, "note": "gift wrap, please"}]).encode()),
    (f"multipart/form-data; boundary={BOUNDARY}", multipart({
        "1_$ACTION_ID_7f3a1c9e2b4d6f8a0c1e3b5d7f9a1c3e5b7d9f1a": "", "1_email": "ana@example.com",
        "1_message": "Where is my order? It says $1 shipping but the constructor kit has not arrived.",
        "0": '["$K1"]'})),
])
def test_ordinary_server_actions_pass(patched, content_type, body):
    assert run(patched, "POST", "/checkout", action_headers(content_type), body).allowed


def test_rules_test_command_reports_hits_per_rule(tmp_path, capsys):
    records = tmp_path / "records.jsonl"
    exploit = multipart(EXPLOIT).decode()
    lines = [{"id": "attack-1", "request": {"method": "POST", "path": "/", "body": exploit, "headers": [
                 [n, v] for n, v in action_headers(f"multipart/form-data; boundary={BOUNDARY}")]}},
             {"id": "normal-1", "request": {"method": "POST", "path": "/", "body": '["$K1"]',
                                            "headers": [[n, v] for n, v in action_headers("text/plain")]}}]
    records.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    bundle = str(DEPLOY / "react2shell.bundle.yaml")
    key = str(DEPLOY / "keys" / "example.pub")
    assert cli.main(["rules", "test", bundle, str(records), "--key", key, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rules"] == {"cve-2025-55182-react2shell": {"hits": 1, "examples": ["attack-1"]}}
    other = tmp_path / "other.pub"
    other.write_text(keypair(tmp_path)[1])
    assert cli.main(["rules", "test", bundle, str(records), "--key", str(other)]) == 2  # wrong key: refused


def test_rule_hits_are_counted_per_rule_and_mode():
    from prometheus_client import CollectorRegistry

    from extproc.observability.metrics import Metrics

    metrics = Metrics(CollectorRegistry())
    policy = policy_with(CEL_RULES)
    for _ in range(3):
        metrics.record(run(policy, "POST", "/upload/file", body=b"x" * 5000))
    metrics.record(run(policy, target="/admin/users"))
    sample = metrics.registry.get_sample_value
    assert sample("extproc_rule_hits_total", {"rule": "try-stricter-uploads", "mode": "shadow"}) == 3
    assert sample("extproc_rule_hits_total", {"rule": "admin-from-outside", "mode": "enforce"}) == 1


def test_feed_urls_must_be_https():
    with pytest.raises(ConfigError, match="must be https"):
        parse_policy("version: 1\ndefaults: {layers: {rules: {feeds: [{url: 'http://feeds.example/b.yaml', "
                     "keys: ['D4C0XEg+1XZe4LSkd8VvPfwPJiOCP0CSb05eN00Qy4w=']}]}}}\n", "t")


def test_bundles_polled_from_an_https_url_swap_when_a_new_signed_one_appears(tmp_path, monkeypatch):
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from extproc.local.envoy import write_self_signed_cert

    key, public = keypair(tmp_path)
    served: dict[str, bytes] = {}

    class Feed(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            body = served.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("content-length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    def publish(rules: str, version: str) -> None:
        data = f"bundle: remote\nversion: '{version}'\nrules:\n{rules}".encode()
        served["/intel.bundle.yaml"], served["/intel.bundle.yaml.sig"] = data, sign(data, key)

    cert, cert_key = write_self_signed_cert(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, cert_key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Feed)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the feed's certificate is the one we trust
    try:
        publish(BLOCK_X, "1")
        url = f"https://127.0.0.1:{server.server_address[1]}/intel.bundle.yaml"
        policy = parse_policy(f"version: 1\ndefaults: {{layers: {{rules: {{feeds: [{{url: '{url}', keys: ['{public}'], "
                              f"poll_s: 1}}]}}}}}}\n", "t")
        assert not run(policy, target="/x").allowed
        publish(BLOCK_Y, "2")
        wait_until(lambda: not run(policy, target="/y").allowed)
        assert run(policy, target="/x").allowed
    finally:
        server.shutdown()
        server.server_close()


def test_invalid_utf8_is_searched_as_its_latin1_characters():
    """Literals and regexes see a byte that is not UTF-8 as the same character (0xFF is 'ÿ'), the
    one rule of extproc/core/text.py; it is never ASCII, so it cannot stand in for '?' any more."""
    value = b"union\xffselect \xc3\xa9".decode("utf-8", "surrogateescape")
    assert SignatureSet(literals=["union\u00ffselect"]).search(value)
    assert SignatureSet(regexes=["union\u00ffselect \u00e9$"]).search(value)
    assert not SignatureSet(literals=["union?select"], regexes=[r"union\?select"]).search(value)
