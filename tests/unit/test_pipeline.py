"""Transaction: route selection, combining verdicts, phases, owned headers and fault handling."""
from __future__ import annotations

import gc
import textwrap
import threading
import time

import pytest

from extproc.layers.base import JUDGES_ONLY
from extproc.config.compile import parse_policy
from extproc.layers import OWNED_HEADERS
from extproc.core.transaction import Transaction
from extproc.core.policy import LayerSlot, Policy, RoutePolicy
from extproc.core.request import InspectionLimits, Request
from extproc.core.verdict import Action, Mode, Outcome, Verdict

MS = 1_000_000  # ns


def policy_from(text: str):
    return parse_policy(textwrap.dedent(text).lstrip("\n"))


def request(path: str = "/", method: str = "GET", **kwargs) -> Request:
    return Request(method, path, **kwargs)


# -- fakes for hand-built policies --------------------------------------------------------


class FakeClock:
    def __init__(self, start: int = 1_000 * MS) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now

    def advance(self, ns: int) -> None:
        self.now += ns


class Fixed:
    """Returns a fixed verdict and records that it ran."""

    capabilities = JUDGES_ONLY

    def __init__(self, name: str, action: Action = Action.ALLOW, *, status: int = 403, needs_body: bool = False,
                 headers: tuple[tuple[str, str], ...] = ()) -> None:
        self.name = name
        self.action = action
        self.status = status
        self.needs_body = needs_body
        self.headers = headers
        self.calls = 0
        self.seen_body: bytes | None = None

    def evaluate(self, request: Request, context) -> Verdict:
        self.calls += 1
        self.seen_body = request.body
        return Verdict(self.name, self.action, self.status, reasons=(f"{self.name}:{self.action.value}",),
                       upstream_headers=self.headers)


class Raising(Fixed):
    def evaluate(self, request: Request, context) -> Verdict:
        self.calls += 1
        raise RuntimeError("layer bug")


class Slow(Fixed):
    """Takes ``cost_ns`` of the fake clock, then answers like Fixed."""

    def __init__(self, name: str, clock: FakeClock, cost_ns: int, action: Action = Action.ALLOW, **kwargs) -> None:
        super().__init__(name, action, **kwargs)
        self.clock = clock
        self.cost_ns = cost_ns

    def evaluate(self, request: Request, context) -> Verdict:
        self.clock.advance(self.cost_ns)
        return super().evaluate(request, context)


def slot(layer, mode: Mode = Mode.ENFORCE, *, closed: bool = True, budget_ms: float = 5, error_status: int = 503):
    return LayerSlot(layer=layer, mode=mode, fail_closed=closed, budget_ns=int(budget_ms * MS), error_status=error_status)


def hand_policy(*slots: LayerSlot, mode: Mode = Mode.ENFORCE, deadline_ms: float | None = None,
                limits: InspectionLimits = InspectionLimits()) -> Policy:
    deadline_ns = int(deadline_ms * MS) if deadline_ms else sum(s.budget_ns for s in slots)
    route = RoutePolicy(
        name="default", matches=lambda _r: True, mode=mode, limits=limits, slots=tuple(slots),
        deadline_ns=deadline_ns, needs_body=any(s.layer.needs_body for s in slots),
    )
    return Policy(routes=(), default=route, digest="0" * 64, source="<hand>")


def outcomes(decision) -> list[tuple[str, Outcome]]:
    return [(r.verdict.layer, r.outcome) for r in decision.results]


# -- route selection ----------------------------------------------------------------------

ROUTES = """
version: 1
routes:
  - {name: by-name, match: {route_name: envoy-api}}
  - name: by-host
    match: {hosts: [shop.example.com, '*.cdn.example.com']}
  - {name: by-prefix, match: {path_prefix: /static/}}
  - {name: by-regex, match: {path_regex: '^/v[0-9]+/'}}
  - {name: by-method, match: {methods: [put, DELETE]}}
  - {name: all-of, match: {hosts: [admin.example.com], path_prefix: /panel, methods: [POST]}}
"""


@pytest.mark.parametrize(
    ("kwargs", "route"),
    [
        (dict(route_name="envoy-api"), "by-name"),
        (dict(route_name="envoy-api", path="/static/x", authority="shop.example.com"), "by-name"),  # first match wins
        (dict(route_name="other"), "default"),
        (dict(authority="shop.example.com"), "by-host"),
        (dict(authority="SHOP.example.com:8443"), "by-host"),  # no port, no case
        (dict(authority="img.cdn.example.com"), "by-host"),
        (dict(authority="a.b.cdn.example.com"), "by-host"),
        (dict(authority="cdn.example.com"), "default"),  # '*.' needs a label
        (dict(authority="evilcdn.example.com"), "default"),
        (dict(authority="shop.example.com.evil"), "default"),
        (dict(path="/static/app.js"), "by-prefix"),
        (dict(path="/static"), "by-prefix"),  # '/static/' names the directory, itself included
        (dict(path="/staticx"), "default"),
        (dict(path="/STATIC/app.js"), "by-prefix"),  # servers that route case-insensitively
        (dict(path="/static;v=1/app.js"), "by-prefix"),  # ';' parameters, as Tomcat drops them
        (dict(path="/%73tatic\\app.js"), "by-prefix"),
        (dict(path="/x?next=/static/"), "default"),  # the query is not the path
        (dict(path="/v2/users"), "by-regex"),
        (dict(path="/api/v2/users"), "default"),
        (dict(path="/x?/v1/"), "default"),
        (dict(method="PUT"), "by-method"),
        (dict(method="DELETE"), "by-method"),
        (dict(method="POST", path="/static/x"), "by-prefix"),
        (dict(method="POST", path="/panel/x", authority="admin.example.com"), "all-of"),
        (dict(method="GET", path="/panel/x", authority="admin.example.com"), "default"),  # every condition must hold
        (dict(method="POST", path="/panel/x", authority="www.example.com"), "default"),
        (dict(), "default"),
    ],
)
def test_route_selection(kwargs, route):
    kwargs = {"path": "/", "method": "GET", **kwargs}
    decision = Transaction(policy_from(ROUTES), Request(**kwargs)).on_headers()
    assert decision.route == route
    assert decision.allowed


def test_route_limits_apply_to_the_request():
    policy = policy_from(
        """
        version: 1
        defaults: {inspection: {max_args: 50}}
        routes:
          - {name: tight, match: {path_prefix: /tight}, inspection: {max_args: 1}}
        """
    )
    tight = request("/tight?a=1&b=2")
    Transaction(policy, tight)
    assert tight.limits.max_args == 1
    assert [a.name for a in tight.query_args] == ["a"]
    assert "query_args_truncated" in tight.notes
    loose = request("/loose?a=1&b=2")
    Transaction(policy, loose)
    assert loose.limits.max_args == 50


def test_decision_carries_request_id_and_route():
    decision = Transaction(policy_from(ROUTES), request(route_name="envoy-api", request_id="rid-1")).on_headers()
    assert (decision.request_id, decision.route) == ("rid-1", "by-name")


# -- combining verdicts -------------------------------------------------------------------


def test_first_enforced_deny_wins_and_later_layers_do_not_run():
    first, denier, second_denier, after = (
        Fixed("first"), Fixed("denier", Action.DENY, status=401), Fixed("second", Action.DENY, status=429), Fixed("after"),
    )
    decision = Transaction(hand_policy(slot(first), slot(denier), slot(second_denier), slot(after)), request()).on_headers()
    assert not decision.allowed
    assert (decision.status, decision.denied_by) == (401, "denier")
    assert (first.calls, denier.calls, second_denier.calls, after.calls) == (1, 1, 0, 0)
    assert [r.verdict.layer for r in decision.results] == ["first", "denier"]
    assert decision.set_headers == () and decision.remove_headers == ()


def test_log_verdicts_do_not_deny():
    decision = Transaction(hand_policy(slot(Fixed("a", Action.LOG)), slot(Fixed("b"))), request()).on_headers()
    assert decision.allowed
    assert decision.status == 200
    assert decision.reasons == ("a:log", "b:allow")


def test_observe_route_runs_every_layer_and_records_would_deny():
    a, b, c = Fixed("a", Action.DENY), Fixed("b"), Fixed("c", Action.DENY)
    decision = Transaction(hand_policy(slot(a, Mode.OBSERVE), slot(b, Mode.OBSERVE), slot(c, Mode.OBSERVE),
                                       mode=Mode.OBSERVE), request()).on_headers()
    assert decision.allowed
    assert decision.would_deny == ("a", "c")
    assert (a.calls, b.calls, c.calls) == (1, 1, 1)


def test_observe_mode_from_config():
    policy = policy_from(
        """
        version: 1
        defaults:
          mode: observe
          layers: {rules: {rules: [{id: no-admin, match: {path: {prefix: /admin}}, action: deny}]}}
        """
    )
    decision = Transaction(policy, request("/admin")).on_headers()
    assert decision.allowed
    assert decision.would_deny == ("rules",)
    assert decision.reasons == ("rule:no-admin",)


def test_layer_relaxed_to_observe_under_enforcing_defaults():
    policy = policy_from(
        """
        version: 1
        defaults:
          mode: enforce
          layers:
            rules:
              mode: observe
              rules: [{id: no-admin, match: {path: {prefix: /admin}}, action: deny}]
        """
    )
    decision = Transaction(policy, request("/admin")).on_headers()
    assert decision.allowed
    assert decision.would_deny == ("rules",)
    assert decision.results[0].mode is Mode.OBSERVE


def test_enforced_layer_after_observed_deny_still_denies():
    observed, enforced = Fixed("observed", Action.DENY), Fixed("enforced", Action.DENY, status=429)
    decision = Transaction(hand_policy(slot(observed, Mode.OBSERVE), slot(enforced)), request()).on_headers()
    assert not decision.allowed
    assert (decision.status, decision.denied_by) == (429, "enforced")
    assert decision.would_deny == ("observed",)


# -- phases -------------------------------------------------------------------------------


def test_header_phase_deny_happens_before_the_body():
    header_layer, body_layer = Fixed("head", Action.DENY), Fixed("body", needs_body=True)
    txn = Transaction(hand_policy(slot(body_layer), slot(header_layer)), request(method="POST", has_body=True))
    assert txn.wants_body
    decision = txn.on_headers()
    assert decision is not None and not decision.allowed
    assert decision.denied_by == "head"
    assert body_layer.calls == 0


def test_body_layer_decides_once_the_body_arrives():
    header_layer, body_layer = Fixed("head"), Fixed("body", Action.DENY, needs_body=True)
    txn = Transaction(hand_policy(slot(header_layer), slot(body_layer)), request(method="POST", has_body=True))
    assert txn.on_headers() is None
    assert (header_layer.calls, body_layer.calls) == (1, 0)
    decision = txn.on_body(b"payload")
    assert not decision.allowed and decision.denied_by == "body"
    assert body_layer.seen_body == b"payload"
    assert [r.verdict.layer for r in decision.results] == ["head", "body"]  # both phases recorded
    assert header_layer.calls == 1  # not run twice


def test_observed_header_deny_still_waits_for_the_body():
    header_layer, body_layer = Fixed("head", Action.DENY), Fixed("body", needs_body=True)
    txn = Transaction(hand_policy(slot(header_layer, Mode.OBSERVE), slot(body_layer)), request(method="POST", has_body=True))
    assert txn.on_headers() is None
    decision = txn.on_body(b"x")
    assert decision.allowed
    assert decision.would_deny == ("head",)


@pytest.mark.parametrize(("has_body", "needs_body"), [(False, True), (True, False), (False, False)])
def test_everything_runs_on_headers_when_no_body_is_needed(has_body, needs_body):
    layer = Fixed("only", Action.DENY, needs_body=needs_body)
    txn = Transaction(hand_policy(slot(layer)), request(has_body=has_body))
    assert txn.wants_body is False
    decision = txn.on_headers()
    assert decision is not None and not decision.allowed
    assert layer.calls == 1


def test_args_rule_on_a_bodiless_request_decides_on_headers():
    policy = policy_from(
        """
        version: 1
        defaults:
          layers: {rules: {rules: [{id: jndi, match: {any_arg: {contains: '${jndi:'}}, action: deny}]}}
        """
    )
    decision = Transaction(policy, request("/?q=${jndi:ldap://x}")).on_headers()
    assert not decision.allowed


# -- oversize bodies ----------------------------------------------------------------------


def oversize_policy(oversize: str, mode: str = "enforce"):
    return policy_from(
        f"""
        version: 1
        defaults:
          mode: {mode}
          inspection: {{max_body_bytes: 16, oversize: {oversize}}}
          layers:
            rules:
              rules:
                - {{id: jndi, match: {{any_arg: {{contains: '${{jndi:'}}}}, action: deny}}
        """
    )


FORM = (("content-type", "application/x-www-form-urlencoded"),)


def body_request() -> Request:
    return request("/upload", "POST", headers=FORM, has_body=True)


def test_oversize_body_is_denied_413_by_inspection():
    txn = Transaction(oversize_policy("deny"), body_request())
    assert txn.on_headers() is None
    decision = txn.on_body(b"a=" + b"x" * 100)
    assert not decision.allowed
    assert (decision.status, decision.denied_by) == (413, "inspection")
    assert decision.reasons == ("inspection:body_truncated",)
    assert [r.verdict.layer for r in decision.results] == ["inspection"]  # rules did not run


def test_body_cut_by_envoy_is_denied_413():
    txn = Transaction(oversize_policy("deny"), body_request())
    txn.on_headers()
    decision = txn.on_body(b"a=1", complete=False)
    assert (decision.allowed, decision.status) == (False, 413)


def test_body_larger_in_total_than_kept_is_denied_413():
    txn = Transaction(oversize_policy("deny"), body_request())
    txn.on_headers()
    decision = txn.on_body(b"a=1", total_size=10_000)
    assert (decision.allowed, decision.status) == (False, 413)


def test_body_at_the_limit_is_inspected():
    txn = Transaction(oversize_policy("deny"), body_request())
    txn.on_headers()
    decision = txn.on_body(b"q=${jndi:ldap:/x")  # exactly 16 bytes
    assert (decision.allowed, decision.status, decision.denied_by) == (False, 403, "rules")


@pytest.mark.parametrize(
    ("body", "allowed"),
    [
        (b"q=${jndi:ldap://" + b"x" * 100, False),  # the payload is within the inspected prefix
        (b"a=" + b"x" * 100 + b"&q=${jndi:ldap://x}", True),  # the payload lies beyond it
    ],
)
def test_inspect_prefix_lets_oversize_through_with_the_prefix_inspected(body, allowed):
    txn = Transaction(oversize_policy("inspect_prefix"), body_request())
    txn.on_headers()
    decision = txn.on_body(body)
    assert decision.allowed is allowed
    assert "inspection" not in [r.verdict.layer for r in decision.results]
    assert "body_truncated" in txn.request.notes
    assert len(txn.request.body) == 16


def test_oversize_in_observe_mode_is_a_would_deny_and_layers_still_run():
    txn = Transaction(oversize_policy("deny", mode="observe"), body_request())
    txn.on_headers()
    decision = txn.on_body(b"q=${jndi:ldap://" + b"x" * 100)
    assert decision.allowed
    assert decision.would_deny == ("inspection", "rules")


# -- owned headers ------------------------------------------------------------------------


def tagging_policy():
    return policy_from(
        """
        version: 1
        defaults:
          layers:
            rules:
              rules:
                - {id: curl, match: {headers: {user-agent: {prefix: curl/}}}, action: tag, tags: [automation]}
        """
    )


@pytest.mark.parametrize("name", sorted(OWNED_HEADERS) + ["x-extproc-anything", "x-extproc-"])
def test_client_copies_of_owned_headers_are_removed(name):
    decision = Transaction(tagging_policy(), request(headers=((name, "forged"), ("x-other", "kept")))).on_headers()
    assert decision.allowed
    assert decision.remove_headers == (name,)
    assert decision.set_headers == ()


def test_removed_headers_are_listed_once_in_arrival_order():
    headers = (("x-extproc-b", "1"), ("accept", "*/*"), ("x-extproc-a", "2"), ("x-extproc-b", "3"))
    decision = Transaction(tagging_policy(), request(headers=headers)).on_headers()
    assert decision.remove_headers == ("x-extproc-b", "x-extproc-a")


def test_set_headers_carry_tags_and_are_not_removed():
    headers = (("user-agent", "curl/8.0"), ("x-extproc-tags", "forged"), ("x-extproc-rules", "forged"), ("x-extproc-id", "1"))
    decision = Transaction(tagging_policy(), request(headers=headers)).on_headers()
    assert decision.allowed
    assert dict(decision.set_headers) == {"x-extproc-rules": "curl", "x-extproc-tags": "automation"}
    assert decision.remove_headers == ("x-extproc-id",)  # the set ones are overwritten instead


def test_later_layers_header_values_win():
    a = Fixed("a", headers=(("x-extproc-h", "from-a"),))
    b = Fixed("b", headers=(("x-extproc-h", "from-b"),))
    decision = Transaction(hand_policy(slot(a), slot(b)), request()).on_headers()
    assert decision.set_headers == (("x-extproc-h", "from-b"),)


def test_owned_headers_are_removed_even_on_a_route_without_layers():
    decision = Transaction(policy_from("version: 1\n"), request(headers=(("x-extproc-tags", "forged"),))).on_headers()
    assert decision.allowed
    assert decision.remove_headers == ("x-extproc-tags",)


# -- faults -------------------------------------------------------------------------------


def test_raising_layer_fails_open():
    broken, after = Raising("broken"), Fixed("after")
    decision = Transaction(hand_policy(slot(broken, closed=False), slot(after)), request()).on_headers()
    assert decision.allowed
    assert outcomes(decision) == [("broken", Outcome.ERROR), ("after", Outcome.OK)]
    assert decision.results[0].verdict.reasons == ("fault:error",)
    assert after.calls == 1


@pytest.mark.parametrize("error_status", [503, 500])
def test_raising_layer_fails_closed_with_its_error_status(error_status):
    broken, after = Raising("broken"), Fixed("after")
    decision = Transaction(hand_policy(slot(broken, error_status=error_status), slot(after)), request()).on_headers()
    assert not decision.allowed
    assert (decision.status, decision.denied_by) == (error_status, "broken")
    assert decision.reasons == ("fault:error",)
    assert outcomes(decision) == [("broken", Outcome.ERROR)]
    assert after.calls == 0


def test_raising_layer_in_observe_mode_is_only_a_would_deny():
    decision = Transaction(hand_policy(slot(Raising("broken"), Mode.OBSERVE)), request()).on_headers()
    assert decision.allowed
    assert decision.would_deny == ("broken",)


@pytest.mark.parametrize(("closed", "allowed", "status"), [(False, True, 200), (True, False, 503)])
def test_spent_deadline_skips_later_layers_and_on_error_decides(closed, allowed, status):
    clock = FakeClock()
    slow = Slow("slow", clock, cost_ns=30 * MS)
    later = Fixed("later", Action.DENY)  # would deny, but never runs
    policy = hand_policy(slot(slow, budget_ms=10), slot(later, closed=closed), deadline_ms=20)
    decision = Transaction(policy, request(), clock=clock).on_headers()
    assert decision.allowed is allowed
    assert decision.status == status
    assert later.calls == 0
    assert outcomes(decision) == [("slow", Outcome.OVER_BUDGET), ("later", Outcome.SKIPPED)]
    assert decision.results[1].verdict.reasons == ("fault:deadline",)


def test_layers_within_the_deadline_run():
    clock = FakeClock()
    first, second = Slow("first", clock, cost_ns=4 * MS), Fixed("second")
    decision = Transaction(hand_policy(slot(first), slot(second), deadline_ms=5), request(), clock=clock).on_headers()
    assert outcomes(decision) == [("first", Outcome.OK), ("second", Outcome.OK)]


def test_over_budget_keeps_the_verdict():
    clock = FakeClock()
    slow = Slow("slow", clock, cost_ns=7 * MS, action=Action.DENY, status=429)
    decision = Transaction(hand_policy(slot(slow, budget_ms=5), deadline_ms=100), request(), clock=clock).on_headers()
    assert not decision.allowed
    assert (decision.status, decision.denied_by) == (429, "slow")
    (result,) = decision.results
    assert result.outcome is Outcome.OVER_BUDGET
    assert result.elapsed_us == 7_000


def test_over_budget_allow_stays_allowed():
    clock = FakeClock()
    decision = Transaction(hand_policy(slot(Slow("slow", clock, cost_ns=6 * MS), budget_ms=5), deadline_ms=100),
                           request(), clock=clock).on_headers()
    assert decision.allowed
    assert outcomes(decision) == [("slow", Outcome.OVER_BUDGET)]


def test_deadline_defaults_to_sum_of_budgets():
    clock = FakeClock()
    first = Slow("first", clock, cost_ns=4 * MS)  # budget 2 + 2 = 4 ms: spent
    second = Fixed("second")
    policy = hand_policy(slot(first, budget_ms=2), slot(second, budget_ms=2, closed=False))
    decision = Transaction(policy, request(), clock=clock).on_headers()
    assert outcomes(decision) == [("first", Outcome.OVER_BUDGET), ("second", Outcome.SKIPPED)]
    assert decision.allowed


def test_waiting_for_the_body_does_not_spend_the_deadline():
    clock = FakeClock()
    head, body = Fixed("head"), Fixed("body", needs_body=True)
    policy = hand_policy(slot(head, budget_ms=2), slot(body, budget_ms=2))
    txn = Transaction(policy, request(method="POST", has_body=True), clock=clock)
    assert txn.on_headers() is None
    clock.advance(50 * MS)  # the client takes 50 ms to upload; no layer is running
    decision = txn.on_body(b"hello")
    assert decision.allowed
    assert outcomes(decision) == [("head", Outcome.OK), ("body", Outcome.OK)]


# -- the deadline counts the serving thread's own work (issue 18) ----------------------------


class Waiting(Fixed):
    """Off the CPU for a while, as a thread is while another one holds the GIL."""

    def __init__(self, name: str, wait) -> None:
        super().__init__(name)
        self.wait = wait

    def evaluate(self, request: Request, context) -> Verdict:
        self.wait()
        return super().evaluate(request, context)


class Working(Fixed):
    """Works on this thread's CPU for ``cpu_ms``."""

    def __init__(self, name: str, cpu_ms: float) -> None:
        super().__init__(name)
        self.cpu_ns = int(cpu_ms * MS)

    def evaluate(self, request: Request, context) -> Verdict:
        end = time.thread_time_ns() + self.cpu_ns
        while time.thread_time_ns() < end:
            pass
        return super().evaluate(request, context)


def run_tight(first) -> tuple:
    """``first``, then a layer that denies unless it is skipped for the deadline (fail open)."""
    later = Fixed("later", Action.DENY)
    policy = hand_policy(slot(first, budget_ms=1), slot(later, closed=False), deadline_ms=1)
    return Transaction(policy, request()).on_headers(), later


def compile_big_policy() -> None:
    rules = "".join(f"\n        - {{id: r{i}, match: {{path: {{regex: '^/p{i}/[a-z]+$'}}}}, action: deny}}"
                    for i in range(400))
    parse_policy(f"version: 1\ndefaults:\n  layers:\n    rules:\n      rules:{rules}\n")


@pytest.mark.parametrize("wait", [
    lambda: time.sleep(0.03),
    # A policy compiling in another thread while this one waits, as a reload does.
    lambda: (compiler := threading.Thread(target=compile_big_policy), compiler.start(), compiler.join()),
], ids=["off-cpu", "another-thread-compiles"])
def test_time_the_thread_does_not_run_does_not_spend_the_deadline(wait):
    decision, later = run_tight(Waiting("waiting", wait))
    assert later.calls == 1 and decision.status == 403
    assert outcomes(decision) == [("waiting", Outcome.OK), ("later", Outcome.OK)]
    assert decision.results[0].elapsed_us >= 1000  # the layer's latency is still wall time


def test_the_garbage_collector_does_not_spend_the_deadline():
    heap = [[n] for n in range(400_000)]  # a full pass visits every one of them
    decision, later = run_tight(Waiting("collecting", gc.collect))
    assert later.calls == 1 and decision.status == 403
    assert outcomes(decision) == [("collecting", Outcome.OK), ("later", Outcome.OK)]
    del heap


def test_the_layers_own_work_still_spends_the_deadline_and_the_budget():
    decision, later = run_tight(Working("busy", cpu_ms=3))
    assert later.calls == 0 and decision.allowed  # skipped; on_error open lets it through
    assert outcomes(decision) == [("busy", Outcome.OVER_BUDGET), ("later", Outcome.SKIPPED)]


def test_a_layer_is_not_blamed_for_the_work_of_the_layers_before_it():
    busy = Working("busy", cpu_ms=0.8)
    late_worker = Working("late-worker", cpu_ms=0.5)
    waits_then_works = Waiting("waits-then-works", lambda: (time.sleep(0.005), late_worker.evaluate(request(), None)))
    policy = hand_policy(slot(busy, budget_ms=1), slot(waits_then_works, budget_ms=1), deadline_ms=10)
    decision = Transaction(policy, request()).on_headers()
    assert outcomes(decision) == [("busy", Outcome.OK), ("waits-then-works", Outcome.OK)]


def test_work_excludes_the_collectors_passes_of_this_thread():
    from extproc.core.worktime import work_ns

    heap = [[n] for n in range(400_000)]
    cpu, work = time.thread_time_ns(), work_ns()
    gc.collect()
    cpu, work = time.thread_time_ns() - cpu, work_ns() - work
    del heap
    assert work < cpu / 10, (work, cpu)


# -- faults on the response ------------------------------------------------------------------


class Rewriting(Fixed):
    """A response layer that removes b"secret" from the answer, or raises when told to."""

    def __init__(self, name: str, *, broken: bool = False) -> None:
        super().__init__(name)
        self.broken = broken

    def response_wanted(self, request, status, headers) -> bool:
        return True

    def on_response(self, request, status, headers, body, end_of_stream=True):
        if self.broken:
            raise RuntimeError("filter bug")
        return body.replace(b"secret", b"")

    def response_failure(self, request, status, headers):
        return None  # the pipeline's generic error


def answered(*slots: LayerSlot) -> Transaction:
    transaction = Transaction(hand_policy(*slots), request(request_id="rid-9"))
    assert transaction.on_headers().allowed
    assert transaction.on_response_headers("200", ((":status", "200"),)) == "buffered"
    return transaction


def test_a_rewriting_layer_that_fails_closed_withholds_the_answer():
    transaction = answered(slot(Rewriting("filter", broken=True)))
    faults = transaction.response_faults  # what the stream reports to metrics
    body = transaction.on_response_body(b"public secret", end_of_stream=False)
    assert body == b'{"error":"unavailable","request_id":"rid-9"}\n' and faults == ["filter"]
    assert transaction.on_response_body(b"more secret") == b""  # the rest is dropped too


def test_a_rewriting_layer_that_fails_open_passes_the_original_and_counts_it():
    broken, working = Rewriting("broken", broken=True), Rewriting("working")
    transaction = answered(slot(working), slot(broken, closed=False))
    faults = transaction.response_faults  # what the stream reports to metrics
    assert transaction.on_response_body(b"public secret") == b"public "  # the working layer's rewrite stays
    assert transaction.on_response_body(b"secret again") == b" again"
    assert faults == ["broken"]  # counted once: a failed layer is not called again


def test_a_layer_failing_closed_in_observe_mode_does_not_withhold():
    transaction = answered(slot(Rewriting("filter", broken=True), Mode.OBSERVE))
    assert transaction.on_response_body(b"answer") is None


def test_the_stream_reports_each_response_fault_once_for_the_metrics():
    from extproc.wire import messages
    from extproc.wire.stream import StreamProcessor

    faults: list[str] = []
    stream = StreamProcessor(hand_policy(slot(Rewriting("filter", broken=True), closed=False)),
                             on_response_fault=faults.append)
    stream.handle(messages.request_headers("GET", "/", authority="a"))
    stream.handle(messages.response_headers("200"))
    for chunk, last in ((b"one secret", False), (b"two secret", True)):
        reply = stream.handle(messages.response_body(chunk, last))
        assert not reply.response_body.response.HasField("body_mutation")  # failing open: the original passes
    assert faults == ["filter"]  # the server counts these as extproc_layer_faults{outcome="response_error"}


# -- what could not be inspected: each shortfall is a decision the route's inspection block owns --

SHORTFALL_POLICY = """
version: 1
defaults:
  inspection: {{max_args: 4, max_body_bytes: 4096}}
  layers:
    rules:
      rules:
        - {{id: jndi, match: {{any_arg: {{contains: '${{jndi:'}}}}, action: deny}}
routes:
  - name: relaxed
    match: {{path_prefix: /relaxed/}}
    inspection: {{{relaxed}}}
"""
PADDED = "&".join(f"f{i}=a" for i in range(8)) + "&x=%24%7Bjndi%3Aldap%3A%2F%2Fe%2Fa%7D"


@pytest.mark.parametrize(("path", "headers", "body", "status", "note", "relaxed"), [
    (f"/p?{PADDED}", (), None, 413, "query_args_truncated", "over_limit: inspect_prefix"),
    ("/p", FORM, PADDED.encode(), 413, "form_args_truncated", "over_limit: inspect_prefix"),
    ("/p", (("content-type", "application/json"),), b"[" * 40 + b"]" * 40, 413, "json_depth_exceeded",
     "over_limit: inspect_prefix"),
    ("/p", (*FORM, ("content-encoding", "compress")), b"a=1", 415, "body_encoding_unsupported",
     "uninspectable: allow"),
    ("/p", (*FORM, ("content-encoding", "gzip")), b"a=1", 415, "body_encoding_invalid", "uninspectable: allow"),
    ("/p", (("content-type", "text/plain; charset=x-unheard-of"),), b"a", 415, "body_charset_unknown",
     "uninspectable: allow"),
    ("/p", (("content-type", "multipart/form-data"),), b"--x\r\n", 415, "multipart_invalid", "uninspectable: allow"),
    ("/..;/p", (), None, 400, "path_uncanonical", "uncanonical_path: allow"),
    ("/p%252f..", (), None, 400, "path_uncanonical", "uncanonical_path: allow"),
    ("/p%00", (), None, 400, "path_uncanonical", "uncanonical_path: allow"),
])
def test_a_request_not_inspected_whole_is_denied_unless_the_route_accepts_it(path, headers, body, status, note,
                                                                            relaxed):
    policy = policy_from(SHORTFALL_POLICY.format(relaxed=relaxed))
    decision = run(policy, path, headers, body)
    assert (decision.allowed, decision.status, decision.denied_by) == (False, status, "inspection")
    assert decision.reasons == (f"inspection:{note}",)
    relaxed = Request(method="GET", path="/relaxed" + path.removeprefix("/.."), headers=headers,
                      has_body=body is not None)
    relaxed.path = relaxed.path if note != "path_uncanonical" else "/relaxed/%252f"
    txn = Transaction(policy, relaxed)
    decision = txn.on_headers() if body is None else (txn.on_headers() or txn.on_body(body))
    assert decision.route == "relaxed" and note in relaxed.notes
    assert decision.allowed or decision.denied_by != "inspection", decision.reasons


def run(policy, path, headers, body):
    method = "GET" if body is None else "POST"
    txn = Transaction(policy, request(path, method, headers=headers, has_body=body is not None))
    decision = txn.on_headers()
    return decision if body is None or decision is not None else txn.on_body(body)


def test_a_padded_payload_is_still_found_on_a_relaxed_route():
    # With over_limit relaxed, the cut arguments are noted and the rest still inspected.
    policy = policy_from(SHORTFALL_POLICY.format(relaxed="over_limit: inspect_prefix, max_args: 100"))
    decision = run(policy, f"/relaxed/p?{PADDED}", (), None)
    assert (decision.allowed, decision.denied_by) == (False, "rules")


def test_an_observed_route_records_the_shortfall_without_denying():
    policy = policy_from(SHORTFALL_POLICY.format(relaxed="{}").replace("    inspection: {{}}\n", "")
                         + "    mode: observe\n")
    decision = run(policy, f"/relaxed/p?{PADDED}", (), None)
    assert decision.allowed and "inspection:query_args_truncated" in decision.reasons
