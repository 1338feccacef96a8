"""Values the decision core produces: a layer's Verdict and the request's Decision.

A deny is a value, never an exception: exceptions mean a layer broke, and the pipeline handles
them by that layer's ``on_error`` setting.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from extproc.access.identity import Identity

EMPTY: Mapping[str, int] = MappingProxyType({})


class Action(enum.Enum):
    ALLOW = "allow"
    LOG = "log"  # something matched and is recorded, nothing is enforced
    DENY = "deny"


class Mode(enum.Enum):
    ENFORCE = "enforce"
    OBSERVE = "observe"  # run and record, never block
    OFF = "off"


class Outcome(enum.Enum):
    """How a layer's run ended, for metrics and audit."""

    OK = "ok"
    ERROR = "error"  # raised; handled by on_error
    SKIPPED = "skipped"  # the request's deadline was spent before it ran; handled by on_error
    OVER_BUDGET = "over_budget"  # ran longer than its budget; verdict kept, counted


@dataclass(frozen=True, slots=True)
class Reply:
    """A layer's own deny body (e.g. a JSON-RPC error), instead of the generic JSON one."""

    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()  # e.g. retry-after


@dataclass(frozen=True, slots=True)
class Verdict:
    layer: str
    action: Action = Action.ALLOW
    status: int = 403  # HTTP status when the action is DENY
    reasons: tuple[str, ...] = ()  # machine-readable, e.g. "rule:block-admin"
    scores: Mapping[str, int] = field(default_factory=lambda: EMPTY)
    labels: tuple[str, ...] = ()
    upstream_headers: tuple[tuple[str, str], ...] = ()  # set on the request when it is allowed
    # Request headers the upstream must not get (a credential once checked), whatever the action:
    # an observed deny lets the request through, and it goes without them too.
    remove_headers: tuple[str, ...] = ()
    skip_layers: tuple[str, ...] = ()  # layers this request does not run (a rule's `skip` action)
    reply: Reply | None = None  # the deny response body, when the layer speaks the app's protocol
    rewrite_body: bytes | None = None  # the request body to send upstream instead (e.g. redacted)
    identity: Identity | None = None  # who the request is (the access layer): context.identity of later layers


@dataclass(frozen=True, slots=True)
class LayerResult:
    verdict: Verdict
    mode: Mode
    outcome: Outcome
    elapsed_us: float

    @property
    def enforced_deny(self) -> bool:
        return self.verdict.action is Action.DENY and self.mode is Mode.ENFORCE

    @property
    def observed_deny(self) -> bool:
        return self.verdict.action is Action.DENY and self.mode is Mode.OBSERVE

    def record(self) -> dict:
        """The result as audit records, spans and ``extproc score`` show it (plain JSON values)."""
        verdict = self.verdict
        return {
            "layer": verdict.layer, "action": verdict.action.value, "mode": self.mode.value,
            "outcome": self.outcome.value, "elapsed_us": round(self.elapsed_us, 1),
            "scores": dict(verdict.scores), "labels": list(verdict.labels), "reasons": list(verdict.reasons),
        }


@dataclass(frozen=True, slots=True)
class Decision:
    request_id: str
    route: str
    allowed: bool
    status: int = 200  # the deny status when not allowed
    set_headers: tuple[tuple[str, str], ...] = ()
    remove_headers: tuple[str, ...] = ()
    results: tuple[LayerResult, ...] = field(default=())
    denied_by: str = ""
    reply: Reply | None = None  # the denying layer's own response body
    body: bytes | None = None  # a replacement for the request body, when a layer rewrote it

    @property
    def would_deny(self) -> tuple[str, ...]:
        """Layers that would have denied had they been enforcing (observe mode)."""
        return tuple(r.verdict.layer for r in self.results if r.observed_deny)

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(reason for r in self.results for reason in r.verdict.reasons)
