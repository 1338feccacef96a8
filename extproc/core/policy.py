"""The compiled policy: immutable objects built once per config load and swapped as a whole."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, TypedDict

from extproc.layers.base import Capabilities, Describes, Layer, RewritesResponse, WatchesResponse
from extproc.core.request import InspectionLimits, Request
from extproc.core.verdict import Mode

if TYPE_CHECKING:
    from extproc.access.directory import Directory


@dataclass(frozen=True, slots=True)
class LayerSlot:
    """A layer as one route runs it, with its optional hooks found once, here."""

    layer: Layer
    mode: Mode
    fail_closed: bool
    budget_ns: int
    error_status: int
    watcher: WatchesResponse | None = field(init=False, default=None)
    rewriter: RewritesResponse | None = field(init=False, default=None)
    describer: Describes | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        layer = self.layer
        object.__setattr__(self, "watcher", layer if isinstance(layer, WatchesResponse) else None)
        object.__setattr__(self, "rewriter", layer if isinstance(layer, RewritesResponse) else None)
        object.__setattr__(self, "describer", layer if isinstance(layer, Describes) else None)

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def capabilities(self) -> Capabilities:
        return self.layer.capabilities

    @property
    def reads_response(self) -> bool:
        return self.watcher is not None or self.rewriter is not None

    @property
    def only_watches(self) -> bool:
        """Reads answers and never changes them: its reading needs no hold on the answer."""
        return self.watcher is not None and self.rewriter is None


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    name: str
    matches: Callable[[Request], bool]
    mode: Mode
    limits: InspectionLimits
    slots: tuple[LayerSlot, ...]
    deadline_ns: int  # budget of the whole evaluation; layers that would start later are skipped
    needs_body: bool
    watches_response: bool = False  # a layer looks at responses (asks Envoy for them)
    rewrites_response: bool = False  # a layer may change responses: they are held until it has read them
    rewrites_body: bool = False  # a layer may replace the request body
    # (slots run on the headers, slots run on the body) of a request with a body, from slots
    phases: tuple[tuple[LayerSlot, ...], tuple[LayerSlot, ...]] = field(init=False)
    # (layer, change) for what this route changed in the sections it inherits: "added x", ...
    inherited_changes: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "phases", body_phases(self.slots))

    @staticmethod
    def traits(slots: tuple[LayerSlot, ...]) -> RouteTraits:
        """What a route's layers need from Envoy, worked out once when the route is compiled."""
        return {"needs_body": any(s.layer.needs_body for s in slots),
                "watches_response": any(s.reads_response for s in slots),
                "rewrites_response": any(s.rewriter is not None for s in slots),
                "rewrites_body": any(s.capabilities.rewrites_body for s in slots)}


class RouteTraits(TypedDict):
    needs_body: bool
    watches_response: bool
    rewrites_response: bool
    rewrites_body: bool


def body_phases(slots: tuple["LayerSlot", ...]) -> tuple[tuple["LayerSlot", ...], tuple["LayerSlot", ...]]:
    """(slots run on the headers, slots run on the body) of a request with a body. A layer that
    reads the verdicts before it (late_rules) waits with the body when a layer before it does:
    run on the headers, it never saw the attack score of a request with a body."""
    on_headers: list[LayerSlot] = []
    on_body: list[LayerSlot] = []
    waiting = False
    for slot in slots:
        later = slot.layer.needs_body or (waiting and slot.capabilities.reads_verdicts)
        (on_body if later else on_headers).append(slot)
        waiting = waiting or slot.layer.needs_body
    return tuple(on_headers), tuple(on_body)


@dataclass(frozen=True, slots=True)
class Policy:
    routes: tuple[RoutePolicy, ...]  # first match wins
    default: RoutePolicy  # requests no route matches
    digest: str  # sha256 of the source document, to tell which policy decided
    source: str
    public_routes: tuple[str, ...] = ()  # routes exempt from access protection
    access: Directory | None = None  # the compiled access block
    # Credentials the sidecar checks and the upstream never needs (the service token's secret):
    # removed from every request on every route, whatever the layers did or failed to do.
    credential_headers: tuple[str, ...] = ()

    def route_for(self, request: Request) -> RoutePolicy:
        for route in self.routes:
            if route.matches(request):
                return route
        return self.default

    def route_named(self, name: str) -> RoutePolicy | None:
        return next((route for route in (*self.routes, self.default) if route.name == name), None)

    def only_layers(self, names: set[str]) -> "Policy":
        """The same policy running only the named layers (for offline scoring)."""

        def keep(route: RoutePolicy) -> RoutePolicy:
            slots = tuple(slot for slot in route.slots if slot.name in names)
            return replace(route, slots=slots, **RoutePolicy.traits(slots))

        return replace(self, routes=tuple(keep(r) for r in self.routes), default=keep(self.default))

    def summary(self) -> list[str]:
        """Per route, what runs there, and the effective rules of layers that describe their
        contents (indented), for check-config and startup logs."""
        lines = []
        for route in (*self.routes, self.default):
            layers = ", ".join(f"{s.name}({s.mode.value})" for s in route.slots) or "none"
            public = " PUBLIC (no access protection)" if route.name in self.public_routes else ""
            lines.append(f"route {route.name}: mode={route.mode.value} layers={layers}{public}")
            lines.extend(f"    {line}" for line in route_contents(route))
        return lines + list(self.access.idp_summary if self.access is not None else ())


def route_contents(route: RoutePolicy) -> list[str]:
    lines = []
    for slot in route.slots:
        if slot.describer is not None:
            lines.extend(slot.describer.describe())
        changes = [change for layer, change in route.inherited_changes if layer == slot.name]
        if changes:
            lines.append(f"{slot.name} changed from the defaults here: {', '.join(changes)}")
    return lines
