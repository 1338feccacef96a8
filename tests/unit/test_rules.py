"""The rules layer, end to end through parse_policy and Transaction."""
from __future__ import annotations

import json

import pytest

from extproc.config.compile import parse_policy
from extproc.core.transaction import Transaction
from extproc.core.request import Request
from extproc.core.verdict import Decision

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data; boundary=BB"


def policy_with(*rules: dict, mode: str = "enforce", inspection: dict | None = None):
    """A policy whose default route runs these rules (JSON is YAML)."""
    document = {
        "version": 1,
        "defaults": {"mode": mode, "inspection": inspection or {}, "layers": {"rules": {"rules": list(rules)}}},
    }
    return parse_policy(json.dumps(document))


def rule(id: str = "r", action: str = "deny", **match) -> dict:
    return {"id": id, "action": action, "match": match}


def run(policy, path: str = "/", method: str = "GET", *, headers=(), body: bytes | None = None,
        content_type: str | None = None, source_ip: str = "203.0.113.9") -> Decision:
    if content_type is not None:
        headers = (*headers, ("content-type", content_type))
    request = Request(method, path, headers=tuple(headers), source_ip=source_ip, has_body=body is not None)
    txn = Transaction(policy, request)
    decision = txn.on_headers()
    if decision is None:
        decision = txn.on_body(body if body is not None else b"")
    return decision


def matches(match: dict, **request) -> bool:
    """Whether a single deny rule with this match denies the request."""
    return not run(policy_with(rule(**match)), **request).allowed


def multipart(*parts: tuple[str, str | None, bytes]) -> bytes:
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--BB\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return out + b"--BB--\r\n"


# -- conditions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "hit"),
    [("GET", True), ("POST", True), ("PUT", False), ("get", False)],
)
def test_methods(method, hit):
    assert matches({"methods": ["get", "POST"]}, method=method) is hit


@pytest.mark.parametrize(
    ("operator", "value", "ignore_case", "path", "hit"),
    [
        ("exact", "/admin", False, "/admin", True),
        ("exact", "/admin", False, "/admin/", False),
        ("exact", "/admin", False, "/admin?x=1", True),  # the query is not part of the path
        ("exact", "/admin", False, "/ADMIN", False),
        ("exact", "/admin", True, "/ADMIN", True),
        ("prefix", "/admin", False, "/admin/users", True),
        ("prefix", "/admin", False, "/x/admin", False),
        ("prefix", "/admin", True, "/Admin/users", True),
        ("prefix", "/admin", False, "/%61dmin/users", True),  # matched on the decoded path
        ("suffix", ".php", False, "/index.php", True),
        ("suffix", ".php", False, "/index.php5", False),
        ("suffix", ".php", True, "/INDEX.PHP", True),
        ("suffix", ".php", False, "/index.php?x=.txt", True),
        ("contains", "..", False, "/a/../etc/passwd", True),
        ("contains", "..", False, "/a/%2e%2e/etc/passwd", True),
        ("contains", "passwd", False, "/a/PASSWD", False),
        ("contains", "passwd", True, "/a/PASSWD", True),
        ("regex", r"/\.(git|env)(/|$)", False, "/.git/config", True),
        ("regex", r"/\.(git|env)(/|$)", False, "/%2e%67it/config", True),
        ("regex", r"/\.(git|env)(/|$)", False, "/.gitignore", False),
        ("regex", r"/\.(git|env)(/|$)", False, "/.GIT/config", False),
        ("regex", r"/\.(git|env)(/|$)", True, "/.GIT/config", True),
        ("regex", r"^/v\d+/", False, "/api/v1/", False),  # search, anchors respected
    ],
)
def test_path_operators(operator, value, ignore_case, path, hit):
    assert matches({"path": {operator: value, "ignore_case": ignore_case}}, path=path) is hit


@pytest.mark.parametrize(
    ("headers", "hit"),
    [
        ((("user-agent", "sqlmap/1.7"),), True),
        ((("user-agent", "Mozilla/5.0"),), False),
        ((("user-agent", "Mozilla/5.0"), ("user-agent", "sqlmap/1.7")), True),  # any of its values
        ((("x-user-agent", "sqlmap"),), False),
        ((), False),  # absent header never matches
    ],
)
def test_headers(headers, hit):
    # The configured name is case-insensitive.
    assert matches({"headers": {"User-Agent": {"contains": "sqlmap"}}}, headers=headers) is hit


def test_several_headers_must_all_match():
    match = {"headers": {"x-a": {"exact": "1"}, "x-b": {"exact": "2"}}}
    assert matches(match, headers=(("x-a", "1"), ("x-b", "2")))
    assert not matches(match, headers=(("x-a", "1"),))


ARGS_RULE = {"args": {"role": {"exact": "admin"}}}


@pytest.mark.parametrize(
    ("request_kwargs", "hit"),
    [
        (dict(path="/?role=admin"), True),
        (dict(path="/?role=user&role=admin"), True),  # any value of a repeated name
        (dict(path="/?ROLE=admin"), False),  # names are case-sensitive
        (dict(path="/?other=admin"), False),
        (dict(path="/?role=%61dmin"), True),
        (dict(method="POST", content_type=FORM, body=b"x=1&role=admin"), True),
        (dict(method="POST", content_type=FORM, body=b"role=user"), False),
        (dict(method="POST", content_type=JSON, body=b'{"user": {"role": "admin"}}'), True),  # innermost key
        (dict(method="POST", content_type=JSON, body=b'{"role": ["user", "admin"]}'), True),
        (dict(method="POST", content_type=JSON, body=b'{"admin": "role"}'), False),
        (dict(method="POST", content_type=MULTIPART, body=multipart(("role", None, b"admin"))), True),
        (dict(method="POST", content_type=MULTIPART, body=multipart(("role", None, b"user"))), False),
        (dict(method="POST", content_type="text/plain", body=b"role=admin"), False),  # not a parsed body type
    ],
)
def test_args_by_name_from_every_source(request_kwargs, hit):
    assert matches(ARGS_RULE, **request_kwargs) is hit


def test_multipart_file_argument_is_its_file_name():
    match = {"args": {"upload": {"suffix": ".php", "ignore_case": True}}}
    assert matches(match, method="POST", content_type=MULTIPART, body=multipart(("upload", "shell.PHP", b"data")))
    assert not matches(match, method="POST", content_type=MULTIPART, body=multipart(("upload", "cat.png", b".php")))


JNDI = {"any_arg": {"regex": r"(?i)\$\{\s*jndi\s*:"}}


@pytest.mark.parametrize(
    ("request_kwargs", "hit"),
    [
        (dict(path="/?q=${jndi:ldap://x}"), True),
        (dict(path="/?q=%24%7BJNDI%3Aldap%3A%2F%2Fx%7D"), True),
        (dict(path="/?q=hello"), False),
        (dict(path="/${jndi:ldap://x}"), False),  # the path is not an argument
        (dict(headers=(("x-api", "${jndi:ldap://x}"),)), False),  # nor is a header
        (dict(method="POST", content_type=FORM, body=b"a=1&b=%24%7Bjndi%3Ax%7D"), True),
        (dict(method="POST", content_type=JSON, body=b'{"a": {"b": ["ok", "${ jndi:x}"]}}'), True),
        (dict(method="POST", content_type=JSON, body=b'{"${jndi:x}": 1}'), False),  # keys are names, not values
        (dict(method="POST", content_type=MULTIPART, body=multipart(("a", None, b"${jndi:x}"))), True),
        (dict(method="POST", content_type=MULTIPART, body=multipart(("a", "${jndi:x}.txt", b"x"))), True),
        (dict(method="POST", content_type=f"{FORM}; charset=ibm037", body="a=${jndi:x}".encode("cp037")), True),
        (dict(method="POST", content_type=f"{FORM}; charset=utf-16", body="a=${jndi:x}".encode("utf-16")), True),
    ],
)
def test_any_arg(request_kwargs, hit):
    assert matches(JNDI, **request_kwargs) is hit


@pytest.mark.parametrize(
    ("source_ip", "hit"),
    [
        ("10.1.2.3", True),
        ("10.255.255.255", True),
        ("11.0.0.1", False),
        ("192.0.2.7", True),  # a single address without a prefix length
        ("192.0.2.8", False),
        ("2001:db8::1", True),
        ("2001:db8:ffff::1", True),
        ("2001:db9::1", False),
        ("::1", False),
        ("", False),  # unknown or invalid addresses never match
        ("not-an-ip", False),
        ("10.1.2.3:5555", False),
        ("[2001:db8::1]", False),
    ],
)
def test_source_ips(source_ip, hit):
    assert matches({"source_ips": ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]}, source_ip=source_ip) is hit


def test_source_ips_host_bits_are_accepted():
    assert matches({"source_ips": ["10.1.2.3/8"]}, source_ip="10.9.9.9")


@pytest.mark.parametrize(
    ("note", "request_kwargs", "hit"),
    [
        ("json_invalid", dict(method="POST", content_type=JSON, body=b"{oops"), True),
        ("json_invalid", dict(method="POST", content_type=JSON, body=b'{"ok": 1}'), False),
        ("multipart_invalid", dict(method="POST", content_type=MULTIPART, body=b"garbage"), True),
        ("json_depth_exceeded", dict(method="POST", content_type=JSON, body=b"[" * 2000 + b"]" * 2000), True),
        ("query_args_truncated", dict(path="/?" + "&".join(["a=1"] * 5000)), True),
        ("query_args_truncated", dict(path="/?a=1"), False),
    ],
)
def test_notes(note, request_kwargs, hit):
    assert matches({"notes": [note]}, **request_kwargs) is hit


def test_body_truncated_note_with_inspect_prefix():
    policy = policy_with(rule("cut", notes=["body_truncated"], action="deny"),
                         inspection={"max_body_bytes": 8, "oversize": "inspect_prefix"})
    assert not run(policy, method="POST", content_type=FORM, body=b"a=" + b"x" * 50).allowed
    assert run(policy, method="POST", content_type=FORM, body=b"a=1").allowed


def test_all_conditions_of_a_rule_must_hold():
    match = {"methods": ["POST"], "path": {"prefix": "/login"}, "args": {"user": {"exact": "admin"}},
             "source_ips": ["10.0.0.0/8"]}
    good = dict(path="/login?user=admin", method="POST", source_ip="10.0.0.1")
    assert matches(match, **good)
    for change in (dict(method="GET"), dict(path="/logout?user=admin"), dict(path="/login?user=bob"),
                   dict(source_ip="8.8.8.8")):
        assert not matches(match, **{**good, **change}), change


# -- actions ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 429, 403])
def test_deny_status(status):
    deny = {**rule("d", path={"prefix": "/"}), **({"status": status} if status != 403 else {})}
    decision = run(policy_with(deny))
    assert (decision.allowed, decision.status, decision.denied_by) == (False, status, "rules")
    assert decision.reasons == ("rule:d",)


def test_no_match_allows_without_reasons():
    decision = run(policy_with(rule("d", path={"prefix": "/admin"})), "/public")
    assert decision.allowed
    assert decision.reasons == ()
    assert decision.set_headers == ()


def test_tag_sets_headers_for_the_upstream():
    policy = policy_with(
        {**rule("curl", "tag", headers={"user-agent": {"prefix": "curl/"}}), "tags": ["automation", "cli"]},
        {**rule("api", "tag", path={"prefix": "/api"}), "tags": ["api", "automation"]},
        {**rule("bare", "tag", path={"prefix": "/api"})},  # a tag rule without tags
    )
    decision = run(policy, "/api/x", headers=(("user-agent", "curl/8"),))
    assert decision.allowed
    assert dict(decision.set_headers) == {"x-extproc-rules": "curl,api,bare", "x-extproc-tags": "automation,cli,api"}
    assert decision.reasons == ("rule:curl", "rule:api", "rule:bare")
    assert decision.results[0].verdict.labels == ("automation", "cli", "api")


def test_tag_rule_without_tags_sets_only_the_rules_header():
    decision = run(policy_with(rule("bare", "tag", path={"prefix": "/"})))
    assert decision.set_headers == (("x-extproc-rules", "bare"),)


def test_log_records_reasons_but_sets_no_headers():
    policy = policy_with({**rule("seen", "log", path={"prefix": "/"}), "tags": ["audit"]})
    decision = run(policy, headers=(("x-extproc-tags", "forged"),))
    assert decision.allowed
    assert decision.reasons == ("rule:seen",)
    assert decision.set_headers == ()
    assert decision.remove_headers == ("x-extproc-tags",)
    assert decision.results[0].verdict.labels == ("audit",)


def test_log_and_tag_together_only_tag_sets_headers():
    policy = policy_with(
        {**rule("seen", "log", path={"prefix": "/"}), "tags": ["audit"]},
        {**rule("tagged", "tag", path={"prefix": "/"}), "tags": ["t"]},
    )
    decision = run(policy)
    assert decision.reasons == ("rule:seen", "rule:tagged")
    assert dict(decision.set_headers) == {"x-extproc-rules": "tagged", "x-extproc-tags": "t"}


# -- order --------------------------------------------------------------------------------


def test_first_matching_deny_wins():
    policy = policy_with(
        {**rule("first", path={"prefix": "/admin"}), "status": 401},
        {**rule("second", path={"prefix": "/"}), "status": 429},
    )
    assert (run(policy, "/admin").status, run(policy, "/admin").reasons) == (401, ("rule:first",))
    assert (run(policy, "/other").status, run(policy, "/other").reasons) == (429, ("rule:second",))


def test_tag_after_a_deny_is_not_evaluated():
    policy = policy_with(rule("deny", path={"prefix": "/"}), {**rule("tag", "tag", path={"prefix": "/"}), "tags": ["t"]})
    assert run(policy).reasons == ("rule:deny",)


def test_tags_before_a_deny_are_recorded():
    policy = policy_with(
        {**rule("curl", "tag", headers={"user-agent": {"prefix": "curl/"}}), "tags": ["automation"]},
        {**rule("seen", "log", path={"prefix": "/"})},
        rule("no-admin", path={"prefix": "/admin"}),
    )
    decision = run(policy, "/admin", headers=(("user-agent", "curl/8"),))
    assert not decision.allowed
    assert decision.reasons == ("rule:curl", "rule:seen", "rule:no-admin")


def test_observe_mode_keeps_tags_matched_before_a_would_be_deny():
    policy = policy_with(
        {**rule("curl", "tag", headers={"user-agent": {"prefix": "curl/"}}), "tags": ["automation"]},
        rule("no-admin", path={"prefix": "/admin"}),
        mode="observe",
    )
    decision = run(policy, "/admin", headers=(("user-agent", "curl/8"),))
    assert decision.allowed and decision.would_deny == ("rules",)
    assert dict(decision.set_headers).get("x-extproc-tags") == "automation"


def test_observe_mode_tags_without_a_deny_are_set():
    policy = policy_with({**rule("curl", "tag", headers={"user-agent": {"prefix": "curl/"}}), "tags": ["automation"]},
                         mode="observe")
    decision = run(policy, headers=(("user-agent", "curl/8"),))
    assert dict(decision.set_headers) == {"x-extproc-rules": "curl", "x-extproc-tags": "automation"}


# -- needs_body ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("match", "needs_body"),
    [
        ({"methods": ["GET"]}, False),
        ({"path": {"prefix": "/"}}, False),
        ({"headers": {"x-a": {"exact": "1"}}}, False),
        ({"source_ips": ["10.0.0.0/8"]}, False),
        ({"args": {"a": {"exact": "1"}}}, True),
        ({"any_arg": {"contains": "x"}}, True),
        ({"notes": ["json_invalid"]}, True),
        ({"methods": ["POST"], "args": {"a": {"exact": "1"}}}, True),
    ],
)
def test_needs_body_only_when_a_rule_reads_args_or_notes(match, needs_body):
    policy = policy_with(rule("a", path={"prefix": "/x"}), rule("b", **match))
    (slot,) = policy.default.slots
    assert slot.layer.needs_body is needs_body
    assert policy.default.needs_body is needs_body


def test_no_rules_needs_no_body():
    (slot,) = policy_with().default.slots
    assert slot.layer.needs_body is False


def test_header_only_rules_decide_without_waiting_for_the_body():
    policy = policy_with(rule("no-admin", path={"prefix": "/admin"}))
    txn = Transaction(policy, Request("POST", "/admin", has_body=True))
    decision = txn.on_headers()
    assert decision is not None and not decision.allowed


def test_body_reading_rules_wait_for_the_body():
    policy = policy_with(rule("role", args={"role": {"exact": "admin"}}))
    txn = Transaction(policy, Request("POST", "/", headers=(("content-type", FORM),), has_body=True))
    assert txn.on_headers() is None
    assert not txn.on_body(b"role=admin").allowed


@pytest.mark.parametrize("spec", [
    {"regex": r"(?i)\$\{\s*jndi\s*:"}, {"regex": r"^adm[i1]n$"}, {"regex": r"\bor\b\s+1=1"}, {"regex": r"\Aselect"},
    {"regex": r"x$"}, {"contains": "union", "ignore_case": True}, {"exact": "root"}, {"prefix": "../"},
    {"suffix": ".php"},
])
def test_any_value_screen_agrees_with_matching_each_value(spec):
    # The joined-text screen must never hide a value that matches on its own.
    import random

    from extproc.config.matchers import StringMatch

    rng = random.Random(5)
    pieces = ["${ jndi:ldap://x}", "admin", "adm1n", "xadmin", " or 1=1", "select *", "a\nselect", "UNION",
              "root", "../etc", "index.php", "x", "a$", "\udcff", "", "plain text", "$", "{", "jndi:"]
    match = StringMatch(**spec)
    one, many = match.compile(), match.compile_any()
    for _ in range(400):
        values = ["".join(rng.choice(pieces) for _ in range(rng.randrange(1, 3))) for _ in range(rng.randrange(1, 12))]
        assert many(values) == any(one(value) for value in values), values
