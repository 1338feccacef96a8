"""Policy loading: a valid document compiles as written; every error names where it is."""
from __future__ import annotations

import hashlib
import textwrap

import pytest

from extproc import cli
from extproc.config.compile import ConfigError, load_policy, parse_policy
from extproc.core.request import InspectionLimits
from extproc.core.verdict import Mode
from tests.support import REPO

DEMO = REPO / "deploy" / "policy" / "demo.yaml"

VALID = """
version: 1
defaults:
  mode: enforce
  deadline_ms: 20
  inspection: {max_body_bytes: 1000, max_args: 10}
  layers:
    rules:
      on_error: closed
      budget_ms: 2
      rules:
        - {id: d1, match: {methods: [TRACE]}, action: deny}
        - {id: d2, match: {path: {prefix: /admin}}, action: deny}
routes:
  - name: api
    match: {route_name: api}
    inspection: {max_body_bytes: 5000}
    layers:
      rules:
        budget_ms: 7
  - name: replaced
    match: {path_prefix: /replaced/}
    layers:
      rules:
        rules:
          - {id: only, match: {any_arg: {contains: x}}, action: log}
  - name: health
    match: {path_prefix: /healthz}
    layers: {rules: null}
  - name: legacy
    match: {path_prefix: /legacy/}
    mode: observe
    deadline_ms: 50
  - name: dark
    match: {path_prefix: /dark/}
    mode: 'off'
  - name: relaxed
    match: {path_prefix: /relaxed/}
    layers: {rules: {mode: observe, on_error: open, error_status: 502}}
  - name: layer-off
    match: {path_prefix: /layer-off/}
    layers: {rules: {mode: 'off'}}
"""


def doc(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_policy(doc(text))
    return info.value.problems


def routes_by_name(policy):
    return {route.name: route for route in (*policy.routes, policy.default)}


# -- a valid policy -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def policy():
    return parse_policy(doc(VALID), "valid.yaml")


def test_routes_compile_in_order_with_a_default(policy):
    assert [route.name for route in policy.routes] == ["api", "replaced", "health", "legacy", "dark", "relaxed", "layer-off"]
    assert policy.default.name == "default"
    assert policy.source == "valid.yaml"
    assert policy.digest == hashlib.sha256(doc(VALID).encode()).hexdigest()


@pytest.mark.parametrize(
    ("route", "mode", "slots"),
    [
        ("default", Mode.ENFORCE, [("rules", Mode.ENFORCE)]),
        ("api", Mode.ENFORCE, [("rules", Mode.ENFORCE)]),
        ("health", Mode.ENFORCE, []),  # rules: null turns the layer off on the route
        ("legacy", Mode.OBSERVE, [("rules", Mode.OBSERVE)]),  # inherited layer, route's mode
        ("dark", Mode.OFF, []),  # mode: off runs nothing
        ("relaxed", Mode.ENFORCE, [("rules", Mode.OBSERVE)]),  # a layer may relax itself
        ("layer-off", Mode.ENFORCE, []),
    ],
)
def test_modes_and_slots(policy, route, mode, slots):
    compiled = routes_by_name(policy)[route]
    assert compiled.mode is mode
    assert [(slot.name, slot.mode) for slot in compiled.slots] == slots


def test_layer_settings_become_slot_settings(policy):
    routes = routes_by_name(policy)
    (default_slot,) = routes["default"].slots
    assert (default_slot.fail_closed, default_slot.budget_ns, default_slot.error_status) == (True, 2_000_000, 503)
    (relaxed_slot,) = routes["relaxed"].slots
    assert (relaxed_slot.fail_closed, relaxed_slot.error_status) == (False, 502)


def test_route_overriding_budget_keeps_defaults_rules(policy):
    (slot,) = routes_by_name(policy)["api"].slots
    assert slot.budget_ns == 7_000_000
    assert slot.fail_closed is True  # inherited
    assert [rule.id for rule in slot.layer.static.rules] == ["d1", "d2"]


def test_route_rules_add_to_the_defaults_rules(policy):
    (slot,) = routes_by_name(policy)["replaced"].slots
    assert [rule.id for rule in slot.layer.static.rules] == ["d1", "d2", "only"]  # see tests/unit/test_inherit.py
    assert slot.budget_ns == 2_000_000  # the rest of the section still merges


def test_inspection_limits_merge_over_defaults(policy):
    routes = routes_by_name(policy)
    assert routes["default"].limits == InspectionLimits(max_body_bytes=1000, max_args=10)
    assert routes["api"].limits == InspectionLimits(max_body_bytes=5000, max_args=10)


def test_deadlines(policy):
    routes = routes_by_name(policy)
    assert routes["default"].deadline_ns == 20_000_000
    assert routes["legacy"].deadline_ns == 50_000_000


@pytest.mark.parametrize(
    "text",
    [
        "version: 1\ndefaults: {mode: off, layers: {rules: {rules: []}}}\n",
        "version: 1\ndefaults: {layers: {rules: {mode: off, rules: []}}}\n",
        "version: 1\ndefaults: {layers: {rules: {rules: []}}}\nroutes:\n- {name: a, match: {}, mode: off}\n",
    ],
    ids=["defaults", "layer", "route"],
)
def test_unquoted_mode_off_as_documented(text):
    policy = parse_policy(text)
    route = policy.routes[0] if policy.routes else policy.default
    assert route.slots == ()


def test_deadline_defaults_to_each_phases_budgets():
    # 0: every phase (headers, body) gets the sum of its own layers' budgets.
    policy = parse_policy("version: 1\ndefaults: {layers: {rules: {budget_ms: 3, rules: []}}}\n")
    assert policy.default.deadline_ns == 0
    explicit = parse_policy("version: 1\ndefaults: {deadline_ms: 7, layers: {rules: {rules: []}}}\n")
    assert explicit.default.deadline_ns == 7_000_000


def test_needs_body_follows_the_rules(policy):
    routes = routes_by_name(policy)
    assert routes["default"].needs_body is False  # method/path rules only
    assert routes["replaced"].needs_body is True  # any_arg reads the body
    assert routes["health"].needs_body is False


def test_minimal_policy_has_only_the_default_route():
    policy = parse_policy("version: 1\n")
    assert policy.routes == ()
    assert policy.default.slots == ()
    assert policy.default.mode is Mode.ENFORCE


def test_summary_lists_every_route(policy):
    summary = policy.summary()
    assert "route api: mode=enforce layers=rules(enforce)" in summary
    assert "route health: mode=enforce layers=none" in summary
    assert "route legacy: mode=observe layers=rules(observe)" in summary
    assert summary[-2:] == ["route default: mode=enforce layers=rules(enforce)", "    rules: d1, d2"]


def test_demo_policy_loads():
    policy = load_policy(DEMO)
    routes = routes_by_name(policy)
    assert set(routes) == {"api", "internal", "legacy", "site", "default"}
    assert policy.public_routes == ("api", "legacy", "site")
    assert routes["legacy"].mode is Mode.OBSERVE
    assert routes["api"].limits.max_body_bytes == 262144


# -- errors name their YAML path ----------------------------------------------------------


RULE = "version: 1\ndefaults:\n  layers:\n    rules:\n      rules:\n        - {id: r, action: deny, match: %s}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\nroutes:\n- {name: a, match: {grups: [x]}}\n", "routes[0].match: unknown key 'grups'"),
        ("version: 1\nfoo: 1\n", "unknown key 'foo'"),
        ("version: 1\ndefaults: {inspection: {max_bodybytes: 1}}\n", "defaults.inspection: unknown key 'max_bodybytes'"),
        ("version: 1\nroutes:\n- {name: a}\n", "routes[0]: missing required key 'match'"),
        ("routes: []\n", "missing required key 'version'"),
        ("version: 2\n", "version: Input should be 1"),
        ("version: 1\ndefaults: {mode: block}\n", "defaults.mode: Input should be 'enforce', 'observe' or 'off'"),
        ("version: 1\nroutes:\n- {name: a, match: {}, mode: audit}\n", "routes[0].mode: Input should be 'enforce', 'observe' or 'off'"),
        (
            "version: 1\ndefaults: {inspection: {oversize: truncate}}\n",
            "defaults.inspection.oversize: Input should be 'deny' or 'inspect_prefix'",
        ),
        (
            "version: 1\ndefaults: {layers: {rules: {on_error: maybe}}}\n",
            "defaults.layers.rules.on_error: Input should be 'open' or 'closed'",
        ),
        (
            "version: 1\nroutes:\n- {name: a, match: {path_regex: '('}}\n",
            "routes[0].match.path_regex: regex '(' is not accepted (RE2",
        ),
        (RULE % "{path: {regex: '[a-'}}", "defaults.layers.rules.rules[0].match.path: regex '[a-' is not accepted (RE2"),
        (
            RULE % "{headers: {x-a: {regex: '*'}}}",
            "defaults.layers.rules.rules[0].match.headers.x-a: regex '*' is not accepted (RE2",
        ),
        (
            RULE % "{source_ips: [10.0.0.0/33]}",
            "defaults.layers.rules.rules[0].match.source_ips: invalid CIDR '10.0.0.0/33'",
        ),
        (RULE % "{source_ips: [nope]}", "defaults.layers.rules.rules[0].match.source_ips: invalid CIDR 'nope'"),
        (RULE % "{}", "defaults.layers.rules.rules[0].match: a rule needs at least one condition"),
        (
            RULE % "{path: {prefix: /a, suffix: b}}",
            "defaults.layers.rules.rules[0].match.path: give exactly one of exact, prefix, suffix, contains, regex (got 2)",
        ),
        (RULE % "{path: {ignore_case: true}}", "defaults.layers.rules.rules[0].match.path: give exactly one of"),
        (RULE % "{hedaers: {}}", "defaults.layers.rules.rules[0].match: unknown key 'hedaers'"),
        (
            "version: 1\ndefaults: {layers: {rules: {rules: [{id: r, match: {methods: [GET]}, action: block}]}}}\n",
            "defaults.layers.rules.rules[0].action: Input should be 'deny', 'log', 'tag', 'skip' or 'set_headers'",
        ),
        (
            "version: 1\ndefaults: {layers: {rules: {rules: [{id: r, match: {methods: [GET]}, action: deny, status: 200}]}}}\n",
            "defaults.layers.rules.rules[0].status: Input should be greater than or equal to 400",
        ),
        (
            "version: 1\ndefaults: {layers: {rules: {rules: [{id: r, match: {methods: [GET]}, action: tag, tags: [Bad Tag]}]}}}\n",
            "defaults.layers.rules.rules[0].tags: tag 'Bad Tag' must match",
        ),
        (
            "version: 1\ndefaults: {layers: {rules: {rules: [{match: {methods: [GET]}, action: deny}]}}}\n",
            "defaults.layers.rules.rules[0]: missing required key 'id'",
        ),
        (
            "version: 1\nroutes:\n- {name: a, match: {}, layers: {rules: {rules: [{id: r, match: {hedaers: {}}, action: deny}]}}}\n",
            "routes[0].layers.rules.rules[0].match: unknown key 'hedaers'",
        ),
        ("version: 1\nroutes:\n- {name: 'a b', match: {}}\n", "routes[0].name: String should match pattern"),
        ("version: 1\ndefaults: {layers: {rules: []}}\n", "defaults.layers.rules: Input should be a valid dictionary"),
        ("version: 1\ndefaults: {layers: {rules: {budget_ms: 0}}}\n", "defaults.layers.rules.budget_ms: Input should be greater than 0"),
    ],
)
def test_error_names_its_yaml_path(text, expected):
    found = problems(text)
    assert len(found) == 1, found
    assert found[0].startswith(expected), found


def test_every_problem_is_reported():
    found = problems(
        """
        version: 1
        defaults: {mode: block}
        routes:
          - {name: a, match: {grups: [x]}}
          - {name: b}
        """
    )
    assert sorted(found) == sorted(
        [
            "defaults.mode: Input should be 'enforce', 'observe' or 'off'",
            "routes[0].match: unknown key 'grups'",
            "routes[1]: missing required key 'match'",
        ]
    )


def test_unknown_layer_names_are_errors_where_they_appear():
    found = problems(
        """
        version: 1
        defaults: {layers: {waf: {}}}
        routes:
          - {name: a, match: {}, layers: {captcha: {}}}
          - {name: b, match: {}}
        """
    )
    assert len(found) == 2, found
    assert found[0].startswith("defaults.layers: unknown layer 'waf' (known: rules")
    assert found[1].startswith("routes[0].layers: unknown layer 'captcha' (known: rules")


def test_defaults_layer_error_is_reported_once_not_per_route():
    found = problems(
        """
        version: 1
        defaults: {layers: {rules: {budget_ms: -1}}}
        routes:
          - {name: a, match: {}}
          - {name: b, match: {}, layers: {rules: {on_error: open}}}
          - {name: c, match: {}}
        """
    )
    assert found == ["defaults.layers.rules.budget_ms: Input should be greater than 0"]


def test_route_layer_error_is_reported_at_the_route():
    found = problems(
        """
        version: 1
        defaults: {layers: {rules: {budget_ms: 2}}}
        routes:
          - {name: a, match: {}}
          - {name: b, match: {}, layers: {rules: {budget_ms: -1}}}
        """
    )
    assert found == ["routes[1].layers.rules.budget_ms: Input should be greater than 0"]


@pytest.mark.parametrize("second", ["api", "default"])
def test_duplicate_or_reserved_route_names_are_rejected(second):
    found = problems(
        f"""
        version: 1
        routes:
          - {{name: api, match: {{}}}}
          - {{name: {second}, match: {{}}}}
        """
    )
    assert len(found) == 1
    assert found[0] == f"routes[1].name: '{second}' is already used (or is the reserved 'default')"


def test_duplicate_route_name_error_names_its_yaml_path():
    found = problems("version: 1\nroutes:\n- {name: api, match: {}}\n- {name: api, match: {}}\n")
    assert found[0].startswith("routes[1].name: ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\nversion: 1\n", "invalid YAML: line 2, column 1: duplicate key 'version'"),
        (
            "version: 1\nroutes:\n  - name: a\n    match: {}\n    name: b\n",
            "invalid YAML: line 5, column 5: duplicate key 'name'",
        ),
        ("version: 1\nroutes: [\n", "invalid YAML: line 3, column 1: "),
        ("version: 1\n  bad: indent\n", "invalid YAML: line 2, column 6: "),
        ("version: 1\nx: '\tunterminated\n", "invalid YAML: "),
    ],
)
def test_yaml_errors_name_line_and_column(text, expected):
    found = problems(text)
    assert len(found) == 1
    assert found[0].startswith(expected), found


def test_unhashable_yaml_key_is_a_config_error():
    with pytest.raises(ConfigError) as info:
        parse_policy("version: 1\n? [a, b]\n: 1\n")
    assert info.value.problems[0].startswith("invalid YAML: line 2")


def test_invalid_utf8_policy_is_a_config_error():
    with pytest.raises(ConfigError) as info:
        parse_policy(b"version: 1\nx: \xff\xfe\xfd\n")
    assert info.value.problems[0].startswith("invalid YAML: ")


@pytest.mark.parametrize("text", ["", "- version: 1\n", "just text\n", "42\n", "null\n"])
def test_document_must_be_a_mapping(text):
    assert problems(text) == ["the policy must be a YAML mapping with 'version: 1'"]


def test_config_error_str_prefixes_each_problem_with_the_source():
    with pytest.raises(ConfigError) as info:
        parse_policy("version: 1\ndefaults: {mode: block}\nroutes: [{name: a}]\n", "p.yaml")
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert all(line.startswith("p.yaml: ") for line in lines)
    assert info.value.source == "p.yaml"


def test_load_policy_unreadable_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_policy(missing)
    assert info.value.source == str(missing)
    assert info.value.problems == ["cannot read: No such file or directory"]


def test_load_policy_directory_is_unreadable(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_policy(tmp_path)
    assert info.value.problems[0].startswith("cannot read: ")


def test_load_policy_reports_the_file_name(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\nroutes:\n- {name: a, match: {grups: [x]}}\n")
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    assert str(info.value) == f"{path}: routes[0].match: unknown key 'grups'"


# -- check-config -------------------------------------------------------------------------


def test_check_config_accepts_the_demo_policy(capsys):
    assert cli.main(["check-config", str(DEMO)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0].startswith(f"{DEMO}: ok (sha256 ")
    every = "rules({0}), access({0}), bot({0}), attack({0})"
    assert f"  route api: mode=enforce layers={every.format('enforce')} PUBLIC (no access protection)" in lines
    assert f"  route internal: mode=enforce layers={every.format('enforce')}" in lines
    assert f"  route legacy: mode=observe layers={every.format('observe')} PUBLIC (no access protection)" in lines
    assert f"  route default: mode=enforce layers={every.format('enforce')}" in lines


def test_check_config_rejects_a_bad_policy(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\nroutes:\n- {name: a, match: {grups: [x]}}\n- {name: b}\n")
    assert cli.main(["check-config", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{path}: routes[0].match: unknown key 'grups'",
        f"{path}: routes[1]: missing required key 'match'",
    ]


def test_check_config_missing_file(tmp_path, capsys):
    path = tmp_path / "missing.yaml"
    assert cli.main(["check-config", str(path)]) == 1
    assert capsys.readouterr().err.startswith(f"{path}: cannot read: ")


def test_a_layer_that_cannot_be_built_is_a_config_error_not_a_crash(monkeypatch, tmp_path):
    from extproc.bot import model

    monkeypatch.setattr(model, "DEFAULT_MODEL", tmp_path / "missing.onnx")
    found = problems("version: 1\ndefaults: {layers: {bot: {}}}\n")
    assert found and found[0].startswith("defaults.layers.bot:") and "missing.onnx" in found[0]
