"""Routes inherit the defaults' layer sections: rules merge by id, a route removes an inherited rule
only by naming it, named sets are replaced whole, feeds add up, and every error names its line."""
from __future__ import annotations

import textwrap

import pytest

from extproc import cli
from extproc.config.compile import ConfigError, load_policy, parse_policy
from extproc.core.transaction import Transaction
from extproc.core.request import Request
from extproc.local.stack import DEMO_POLICY
from tests.support import REPO

INTEL = REPO / "deploy" / "intel"
SCANNER = (("user-agent", "sqlmap/1.7.2#stable (https://sqlmap.org)"),)

DEFAULT_RULES = """
version: 1
defaults:
  layers:
    rules:
      rules:
        - {id: block-dotfiles, match: {path: {regex: '/\\.git(/|$)'}}, action: deny}
        - {id: block-scanners, match: {headers: {user-agent: {contains: sqlmap}}}, action: deny}
        - {id: no-trace, match: {methods: [TRACE]}, action: deny}
        - {id: tag-curl, match: {headers: {user-agent: {prefix: curl/}}}, action: tag, tags: [automation]}
"""


def policy_of(routes: str, defaults: str = DEFAULT_RULES):
    return parse_policy(textwrap.dedent(defaults).lstrip("\n") + textwrap.dedent(routes), "policy.yaml")


def problems(routes: str, defaults: str = DEFAULT_RULES) -> list[str]:
    with pytest.raises(ConfigError) as info:
        policy_of(routes, defaults)
    return info.value.problems


def rule_ids(policy, route: str, layer: str = "rules") -> list[str]:
    compiled = {r.name: r for r in (*policy.routes, policy.default)}[route]
    (slot,) = [s for s in compiled.slots if s.name == layer]
    return [rule.id for rule in slot.layer.static.rules]


def decide(policy, path: str, method: str = "GET", headers=(), route_name: str = "api"):
    request = Request(method, path, headers=tuple(headers), route_name=route_name)
    return Transaction(policy, request).on_headers()


def test_a_route_that_adds_a_rule_keeps_every_default_rule():
    policy = policy_of("""
routes:
  - name: api
    match: {route_name: api}
    layers:
      rules:
        rules:
          - {id: api-no-delete, match: {methods: [DELETE]}, action: deny, status: 405}
""")
    assert rule_ids(policy, "api") == ["block-dotfiles", "block-scanners", "no-trace", "tag-curl", "api-no-delete"]
    assert decide(policy, "/api/.git/config").status == 403
    assert decide(policy, "/api/items", headers=SCANNER).status == 403
    assert decide(policy, "/api/items", "DELETE").status == 405
    assert decide(policy, "/api/items").allowed


def test_a_rule_with_an_inherited_id_replaces_it_in_its_place():
    policy = policy_of("""
routes:
  - name: api
    match: {route_name: api}
    layers:
      rules:
        rules:
          - {id: extra, match: {path: {prefix: /api/extra}}, action: deny}
          - {id: no-trace, match: {methods: [TRACE]}, action: deny, status: 405}
""")
    assert rule_ids(policy, "api") == ["block-dotfiles", "block-scanners", "no-trace", "tag-curl", "extra"]
    assert decide(policy, "/api/items", "TRACE").status == 405
    assert decide(policy, "/other", "TRACE", route_name="").status == 403  # the defaults keep theirs


def test_a_route_removes_an_inherited_rule_by_naming_it():
    policy = policy_of("""
routes:
  - name: scanning
    match: {route_name: api}
    layers:
      rules:
        remove: [block-scanners]
""")
    assert rule_ids(policy, "scanning") == ["block-dotfiles", "no-trace", "tag-curl"]
    assert decide(policy, "/items", headers=SCANNER).allowed
    assert decide(policy, "/items", headers=SCANNER, route_name="").status == 403
    assert decide(policy, "/.git/config").status == 403


@pytest.mark.parametrize(("routes", "expected"), [
    ("""
routes:
  - name: api
    match: {}
    layers: {rules: {remove: [block-scanners, block-scanner]}}
""", ["routes[0].layers.rules.remove[1]: 'block-scanner' is not inherited "
      "(inherited rules: block-dotfiles, block-scanners, no-trace, tag-curl)"]),
    ("""
routes:
  - name: api
    match: {}
    layers: {rules: {remove: block-scanners}}
""", ["routes[0].layers.rules.remove: must be a list of ids of inherited rules"]),
    ("""
routes:
  - name: api
    match: {}
    layers:
      rules:
        remove: [no-trace]
        rules: [{id: no-trace, match: {methods: [TRACE]}, action: log}]
""", ["routes[0].layers.rules.rules[0].id: 'no-trace' is both removed and redefined"]),
    ("""
routes:
  - name: api
    match: {}
    layers:
      rules:
        rules:
          - {id: twice, match: {methods: [PUT]}, action: deny}
          - {id: twice, match: {methods: [POST]}, action: deny}
""", ["routes[0].layers.rules.rules[1].id: 'twice' is already used by rules[0]"]),
])
def test_removals_and_ids_that_cannot_be_merged_are_errors_naming_their_line(routes, expected):
    assert problems(routes) == expected


def test_the_defaults_cannot_remove_and_cannot_repeat_an_id():
    found = problems("", """
version: 1
defaults:
  layers:
    rules:
      remove: [x]
      rules:
        - {id: a, match: {methods: [PUT]}, action: deny}
        - {id: a, match: {methods: [POST]}, action: deny}
""")
    assert found == ["defaults.layers.rules.remove[0]: 'x' is not inherited (inherited rules: none)",
                     "defaults.layers.rules.rules[1].id: 'a' is already used by rules[0]"]


def test_errors_in_a_routes_rules_name_the_routes_line_not_the_merged_position():
    found = problems("""
routes:
  - name: ok
    match: {path_prefix: /ok/}
  - name: api
    match: {}
    layers:
      rules:
        rules:
          - {id: block-scanners, match: {hedaers: {user-agent: {contains: x}}}, action: deny}
          - {id: new, expr: 'path ==', action: deny}
""")
    assert found[0] == "routes[1].layers.rules.rules[0].match: unknown key 'hedaers'"
    assert len(found) == 1  # the section failed validation, so nothing was compiled from it
    found = problems("""
routes:
  - name: api
    match: {}
    layers:
      rules:
        rules:
          - {id: new, expr: 'path ==', action: deny}
""")
    assert len(found) == 1 and found[0].startswith("routes[0].layers.rules.rules[0].expr: "), found


def test_late_rules_merge_by_id_and_remove_the_same_way():
    policy = policy_of("""
routes:
  - name: api
    match: {route_name: api}
    layers:
      late_rules:
        remove: [late-a]
        rules:
          - {id: late-b, match: {methods: [PUT]}, action: deny, status: 409}
          - {id: late-c, match: {methods: [PATCH]}, action: deny}
""", """
version: 1
defaults:
  layers:
    late_rules:
      rules:
        - {id: late-a, match: {methods: [POST]}, action: deny}
        - {id: late-b, match: {methods: [PUT]}, action: deny}
        - {id: late-d, match: {path: {prefix: /admin}}, action: deny}
""")
    assert rule_ids(policy, "api", "late_rules") == ["late-b", "late-d", "late-c"]
    assert rule_ids(policy, "default", "late_rules") == ["late-a", "late-b", "late-d"]
    assert decide(policy, "/admin/x").status == 403
    assert decide(policy, "/x", "PUT").status == 409
    assert decide(policy, "/x", "POST").allowed


SETS = """
version: 1
defaults:
  layers:
    rules:
      lists:
        blocked: {cidrs: [203.0.113.0/24]}
      signatures:
        scanners: {literals: [sqlmap], regexes: ['(?i)nikto']}
      rules:
        - {id: blocked, expr: 'in_list("blocked", source_ip)', action: deny}
        - {id: scanners, expr: 'sig("scanners", user_agent)', action: deny}
"""


def test_named_lists_and_signature_sets_are_replaced_whole_and_new_names_added():
    policy = policy_of("""
routes:
  - name: api
    match: {route_name: api}
    layers:
      rules:
        signatures:
          scanners: {literals: [nuclei]}
          extra: {literals: [zgrab]}
""", SETS)

    def status(agent: str, route_name: str = "api", source_ip: str = "198.51.100.1") -> int:
        request = Request("GET", "/", headers=(("user-agent", agent),), route_name=route_name, source_ip=source_ip)
        return Transaction(policy, request).on_headers().status

    assert status("nuclei") == 403
    assert status("nikto") == 200  # the route's set replaced the inherited one whole, regexes included
    assert status("nikto", route_name="") == 403
    assert status("curl", source_ip="203.0.113.9") == 403  # the inherited list it did not name
    changes = dict(policy.routes[0].inherited_changes)
    assert changes == {"rules": "replaced signatures.scanners"}


def test_a_routes_feeds_add_to_the_inherited_feeds():
    key = (INTEL / "keys" / "example.pub").read_text().strip()
    feed = {"dir": str(INTEL), "keys": [key], "poll_s": 60}
    defaults = f"""
version: 1
defaults:
  layers:
    rules:
      feeds: [{feed!r}]
""".replace("'", '"')
    other = {**feed, "poll_s": 120}
    policy = policy_of(f"""
routes:
  - name: api
    match: {{route_name: api}}
    layers:
      rules:
        feeds: [{other!r}, {feed!r}]
""".replace("'", '"'), defaults)
    compiled = {r.name: r for r in (*policy.routes, policy.default)}
    assert [f.settings.poll_s for f in compiled["api"].slots[0].layer.feeds] == [60, 120]
    assert [f.settings.poll_s for f in compiled["default"].slots[0].layer.feeds] == [60]


MCP_DEFAULTS = """
version: 1
defaults:
  layers:
    mcp:
      server: tools
      groups:
        '*': {servers: [tools], tools: {allow: ['*'], deny: ['delete_*']}}
"""


def test_a_routes_mcp_grant_replaces_the_groups_grant_whole():
    # Merged key by key, a route's `deny` alone would have kept the inherited allow-all and lost
    # the inherited denials; as a whole grant it needs its servers and states what it allows.
    assert problems("""
routes:
  - name: agents
    match: {path_prefix: /mcp}
    layers:
      mcp:
        groups:
          '*': {tools: {deny: [drop_*]}}
""", MCP_DEFAULTS) == ["routes[0].layers.mcp.groups.*: missing required key 'servers'"]


def test_other_lists_are_the_routes_whole_choice():
    policy = policy_of("""
routes:
  - name: api
    match: {route_name: api}
    layers:
      attack: {parts: [body], exclude: {args: [comment]}}
""", """
version: 1
defaults:
  layers:
    attack: {parts: [path, query], exclude: {args: [rich_text]}}
""")
    compiled = {r.name: r for r in (*policy.routes, policy.default)}
    extract = compiled["api"].slots[0].layer.extract_settings
    assert extract.parts == {"body"}
    assert extract.exclude_args == {"comment"}  # the inherited exclusion is scored again here


# -- the demo policy and check-config ------------------------------------------------------------


def test_the_demo_api_route_runs_every_default_rule():
    policy = load_policy(DEMO_POLICY)
    api = next(route for route in policy.routes if route.name == "api")
    default_ids = rule_ids(policy, "default")
    assert rule_ids(policy, "api") == [*default_ids, "api-no-trace"]
    for headers, path, reason in (((), "/api/.git/config", "rule:block-dotfiles"),
                                  (SCANNER, "/api/orders", "rule:block-scanners")):
        request = Request("GET", path, headers=headers, route_name="api")
        decision = Transaction(policy, request).on_headers()
        assert (decision.route, decision.allowed, decision.denied_by) == (api.name, False, "rules")
        assert reason in decision.reasons


def test_check_config_shows_the_effective_rules_of_each_route(tmp_path, capsys):
    path = tmp_path / "policy.yaml"
    path.write_text(textwrap.dedent(DEFAULT_RULES).lstrip("\n") + """
routes:
  - name: api
    match: {route_name: api}
    layers:
      rules:
        remove: [tag-curl]
        rules:
          - {id: no-trace, match: {methods: [TRACE]}, action: deny, status: 405}
          - {id: api-no-delete, match: {methods: [DELETE]}, action: deny, mode: shadow}
""")
    assert cli.main(["check-config", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    api = lines.index("  route api: mode=enforce layers=rules(enforce)")
    assert lines[api + 1:api + 3] == [
        "      rules: block-dotfiles, block-scanners, no-trace, api-no-delete (shadow)",
        "      rules changed from the defaults here: replaced no-trace, added api-no-delete, removed tag-curl",
    ]
    default = lines.index("  route default: mode=enforce layers=rules(enforce)")
    assert lines[default + 1:] == ["      rules: block-dotfiles, block-scanners, no-trace, tag-curl"]
