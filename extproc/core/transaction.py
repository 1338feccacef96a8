"""Run a route's layers over one request and combine their verdicts into one Decision.

One Transaction per HTTP request, fed phase by phase: layers that only need headers run when
the headers arrive (an enforced deny there ends the request before any body is buffered);
layers that read the body run once it has arrived. The first enforced deny wins; in observe
mode every layer runs and would-be denies are recorded, never enforced.
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Callable

import orjson

from extproc.core.inspection import shortfall_verdict
from extproc.layers import OWNED_HEADERS, OWNED_PREFIX, Context, Layer
from extproc.core.policy import LayerSlot, Policy, RoutePolicy
from extproc.core.request import Request
from extproc.core.verdict import Action, Decision, LayerResult, Mode, Outcome, Verdict
from extproc.core.worktime import work_ns

if TYPE_CHECKING:
    from extproc.access.identity import Identity

log = logging.getLogger(__name__)


class Transaction:
    def __init__(self, policy: Policy, request: Request, clock: Callable[[], int] | None = None,
                 identity: Identity | None = None) -> None:
        self.route: RoutePolicy = policy.route_for(request)
        self.credentials = policy.credential_headers
        request.limits = self.route.limits
        self.request = request
        # Layer latency is wall time; deadlines and budgets count this thread's own work, so a
        # reload, a scrape or the collector never spends them (extproc/core/worktime.py). A clock
        # given here (tests, the replay's stopped clock) stands for both.
        self.clock = clock or time.perf_counter_ns
        self.work = clock or work_ns
        self.context = Context(route=self.route.name, deadline_ns=0)
        # Who the request is, for the layers that read it: what a layer that provides it (access)
        # found, or, on a route without one, what the caller knows (tests, offline replays).
        self.identity = identity
        self._budget = 0  # of the phase running: its deadline, in work nanoseconds
        self._phase = self._mark = (0, 0)  # (wall, work) when the phase began / the work clock was last read
        self.results: list[LayerResult] = []
        self.skipped: set[str] = set()  # layers a rule took out of this request
        self.response_status = ""
        self.response_headers: tuple[tuple[str, str], ...] | None = None
        self._response_slots: list[LayerSlot] = []
        self.response_faults: list[str] = []  # layers that raised on this answer; not called again
        self.withheld = False  # a fail-closed layer replaced the answer: the rest of it is dropped
        # Envoy's answer reader reads this request's answer for the watching layers without
        # holding it: this stream asks only for what a rewriting layer needs.
        self.answers_observed = False

    @property
    def wants_body(self) -> bool:
        """True when a body follows and some layer of this route reads it."""
        return self.request.has_body and self.route.needs_body

    def on_headers(self) -> Decision | None:
        """Run the header-only layers; None means: wait for the body, then call on_body()."""
        if not self.wants_body:
            return self._run(self.route.slots)
        decision = self._run(self.route.phases[0])
        return decision if not decision.allowed else None

    def on_body(self, body: bytes, total_size: int | None = None, complete: bool = True) -> Decision:
        self.request.attach_body(body, total_size, complete)
        return self._run(self.route.phases[1])

    # -- response phases (layers that look at the upstream's answer, e.g. to filter it) --------

    @property
    def asks_for_response(self) -> bool:
        """Whether this stream asks Envoy for the answer's headers."""
        return self.route.rewrites_response if self.answers_observed else self.route.watches_response

    def watch_handoff(self) -> dict[str, dict] | None:
        """By layer, what the watching layers need to read this request's answer where Envoy's
        answer reader reports it (once allowed); None when nothing is to be read there. A layer that fails here loses its
        reading of this answer, never the answer: it is logged and counted as a response fault."""
        if not self.answers_observed:
            return None
        states = {}
        for slot in self.route.slots:
            if not slot.only_watches or slot.name in self.skipped:
                continue
            assert slot.watcher is not None  # only_watches says so
            try:
                state = slot.watcher.watch_state(self.request)
            except Exception:  # noqa: BLE001 - watching never decides the request
                log.exception("layer %s failed to hand over its watch", slot.name,
                              extra={"request_id": self.request.request_id})
                self.response_faults.append(slot.name)
                continue
            if state is not None:
                states[slot.name] = state
        return states or None

    @property
    def rewrites_request_body(self) -> bool:
        return self.route.rewrites_body

    def on_response_headers(self, status: str, headers: tuple[tuple[str, str], ...]) -> str | None:
        """'buffered' when a layer must see the whole body (to rewrite it), 'streamed' when layers
        only watch it go by (streaming stays streaming), None when no layer wants it."""
        self.response_status, self.response_headers = status, headers
        self._response_slots = [slot for slot in self.route.slots if slot.name not in self.skipped
                                and not (self.answers_observed and slot.only_watches)
                                and _wants_response(slot, self.request, status, headers)]
        if not self._response_slots:
            return None
        return "buffered" if any(slot.rewriter is not None for slot in self._response_slots) else "streamed"

    @property
    def response_layers(self) -> list[Layer]:
        """The layers that read this answer."""
        return [slot.layer for slot in self._response_slots]

    def on_response_body(self, body: bytes, end_of_stream: bool = True) -> bytes | None:
        """The body (or chunk) to send downstream instead, or None to leave it as it is.

        A layer that raises is handled by its ``on_error``, as on the request path. A layer that
        rewrites the answer (``on_response``) removes things from it, so passing the original on
        its failure would show what it was to hide: with ``closed`` (enforced) the answer is
        replaced by the layer's own error body (``response_failure``), or a short JSON error, and
        later chunks are dropped. The status cannot change any more in every body mode (a
        STREAMED answer's headers are already on their way), so the error is the body. With
        ``open`` the original passes. A layer that only watches (``on_response_chunk``) changes
        nothing in the answer, so its failure never withholds it. Every failure is logged and
        counted, and the failed layer is not called again for this answer."""
        if self.withheld:
            return b""
        changed = None
        headers = self.response_headers or ()
        for slot in self._response_slots:
            if slot.name in self.response_faults:
                continue
            try:
                if slot.watcher is not None:
                    slot.watcher.on_response_chunk(self.request, headers, body, end_of_stream)
                if slot.rewriter is not None:
                    rewritten = slot.rewriter.on_response(self.request, self.response_status, headers,
                                                          body if changed is None else changed, end_of_stream)
                    changed = rewritten if rewritten is not None else changed
            except Exception as exc:  # noqa: BLE001 - on_error decides, as on the request path
                log.exception("layer %s failed on the response", slot.name,
                              extra={"request_id": self.request.request_id})
                self.response_faults.append(slot.name)  # the stream reports it to metrics
                if slot.rewriter is None:
                    continue
                if slot.fail_closed and slot.mode is Mode.ENFORCE:
                    self.withheld = True
                    return self._withheld_body(slot)
                # Fail open: what the layer held back from earlier chunks (an event cut in two)
                # passes too, not only this chunk.
                unfiltered = getattr(exc, "unfiltered", None)
                changed = unfiltered if unfiltered is not None else changed
        return changed

    def _withheld_body(self, slot: LayerSlot) -> bytes:
        assert slot.rewriter is not None  # only a rewriter's failure withholds the answer
        try:
            own = slot.rewriter.response_failure(self.request, self.response_status, self.response_headers or ())
            if own is not None:
                return own
        except Exception:  # noqa: BLE001 - the generic error below still withholds the answer
            log.exception("layer %s failed to write its error body", slot.name,
                          extra={"request_id": self.request.request_id})
        return orjson.dumps({"error": "unavailable", "request_id": self.request.request_id}) + b"\n"

    def decide(self) -> Decision:
        """The decision from the layers run so far."""
        request = self.request
        results = tuple(self.results)
        denial = next((r for r in results if r.enforced_deny), None)
        if denial is not None:
            return Decision(
                request_id=request.request_id,
                route=self.route.name,
                allowed=False,
                status=denial.verdict.status,
                results=results,
                denied_by=denial.verdict.layer,
                reply=denial.verdict.reply,
            )
        to_set = _upstream_headers(results)
        setting = {name for name, _ in to_set}
        owned = [name for name, _ in request.headers if name in OWNED_HEADERS or name.startswith(OWNED_PREFIX)]
        asked = [name for r in results for name in r.verdict.remove_headers]  # e.g. a rewritten body's coding
        asked += [name for name in self.credentials if name in request.header_map]
        to_remove = tuple(dict.fromkeys(name for name in owned + asked if name not in setting))
        rewritten = [r.verdict.rewrite_body for r in results if r.verdict.rewrite_body is not None]
        return Decision(
            request_id=request.request_id,
            route=self.route.name,
            allowed=True,
            set_headers=to_set,
            remove_headers=to_remove,
            results=results,
            body=rewritten[-1] if rewritten else None,
        )

    # -- internals ------------------------------------------------------------------------

    def _run(self, slots: tuple[LayerSlot, ...]) -> Decision:
        # The deadline runs per phase: time the client spends uploading the body is not ours.
        self._budget = self.route.deadline_ns or sum(slot.budget_ns for slot in slots)
        self._phase = self._mark = (self.clock(), self.work())  # (wall, work) when the phase began
        self.context = Context(route=self.route.name, deadline_ns=self._phase[1] + self._budget)
        _ = self.request.canonical_form  # notes a path with no single reading
        if self._shortfall():
            return self.decide()
        first = True
        for slot in slots:
            if slot.name in self.skipped:
                continue
            result = self._run_slot(slot, first)
            first = False
            self.skipped.update(result.verdict.skip_layers)
            self.results.append(result)
            if result.enforced_deny:
                return self.decide()
        self._shortfall()  # a limit the layers ran into while reading the request
        return self.decide()

    def _shortfall(self) -> bool:
        """Record what the inspection settings say of the request's shortfalls; True on an
        enforced deny. Not a layer: the route's limits, enforced as the route's mode says."""
        verdict = shortfall_verdict(self.request, self.route.limits)
        if verdict is None or any(r.verdict.reasons == verdict.reasons for r in self.results):
            return False
        self.results.append(LayerResult(verdict, self.route.mode, Outcome.OK, 0.0))
        return self.results[-1].enforced_deny

    def _run_slot(self, slot: LayerSlot, first: bool = False) -> LayerResult:
        start = self.clock()
        # The first layer of a phase always runs, however short the deadline. The thread cannot
        # have worked longer than the time that passed, so the work clock is read only past it.
        if not first and start - self._phase[0] >= self._budget and self._worked(start) >= self._budget:
            return LayerResult(_fault_verdict(slot, "deadline"), slot.mode, Outcome.SKIPPED, 0.0)
        try:
            verdict = slot.layer.evaluate(self.request, self._context_for(slot))
            outcome = Outcome.OK
            if verdict.identity is not None and slot.capabilities.provides_identity:
                self.identity = verdict.identity
        except Exception:  # a broken layer must not break the stream: on_error decides
            log.exception("layer %s failed", slot.name, extra={"request_id": self.request.request_id})
            verdict, outcome = _fault_verdict(slot, "error"), Outcome.ERROR
        end = self.clock()
        if outcome is Outcome.OK and end - start > slot.budget_ns and self._overran(slot.budget_ns, start, end):
            outcome = Outcome.OVER_BUDGET
        return LayerResult(verdict, slot.mode, outcome, (end - start) / 1000)

    def _context_for(self, slot: LayerSlot) -> Context:
        """The phase's context, with what this layer declared it reads."""
        wants = slot.capabilities
        if not (wants.reads_verdicts or wants.reads_identity):
            return self.context
        return replace(self.context, verdicts=tuple(r.verdict for r in self.results) if wants.reads_verdicts else (),
                       identity=self.identity if wants.reads_identity else None)

    # The work clock costs a system call (extproc/core/worktime.py), the wall clock does not: the work
    # clock is read at the start of a phase, then only when the wall clock says the deadline or a
    # budget may be spent.

    def _worked(self, now: int) -> int:
        """The phase's work so far."""
        worked = self.work()
        self._mark = (now, worked)
        return worked - self._phase[1]

    def _overran(self, budget_ns: int, start: int, end: int) -> bool:
        """Whether a layer that ran from start to end (wall) worked longer than budget_ns. The
        work since the last reading, less the wall time before the layer began, is what the
        layer did at least: a wait before it never makes it look slow."""
        marked_wall, marked_work = self._mark
        worked = self.work()
        self._mark = (end, worked)
        return (worked - marked_work) - (start - marked_wall) > budget_ns


def _wants_response(slot: LayerSlot, request: Request, status: str, headers: tuple[tuple[str, str], ...]) -> bool:
    hook = slot.rewriter or slot.watcher
    return hook is not None and hook.response_wanted(request, status, headers)


def _upstream_headers(results: tuple[LayerResult, ...]) -> tuple[tuple[str, str], ...]:
    headers: dict[str, str] = {}
    for result in results:
        for name, value in result.verdict.upstream_headers:
            headers[name] = value
    return tuple(headers.items())


def _fault_verdict(slot: LayerSlot, fault: str) -> Verdict:
    if slot.fail_closed:
        return Verdict(slot.name, Action.DENY, slot.error_status, reasons=(f"fault:{fault}",))
    return Verdict(slot.name, Action.ALLOW, reasons=(f"fault:{fault}",))

