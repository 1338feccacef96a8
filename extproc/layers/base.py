"""The one interface every defense layer implements, and the settings every layer shares."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Callable, ClassVar, Literal, Protocol

from pydantic import BeforeValidator, Field

from extproc.request import Request
from extproc.strict import StrictModel  # noqa: F401 - layers import it from here
from extproc.verdict import Verdict


def _off_from_yaml(value: object) -> object:
    return "off" if value is False else value  # YAML 1.1 reads a bare `off` as false


ModeName = Annotated[Literal["enforce", "observe", "off"], BeforeValidator(_off_from_yaml)]


@dataclass(frozen=True, slots=True)
class Inheritance:
    """How a route's section inherits list and mapping keys from the defaults' section where
    the plain merge (mappings key by key, any other value replaced) would drop protection that
    the route never named (extproc/inherit.py applies it)."""

    by_id: tuple[str, str] | None = None  # (key, id field): entries merge by id; `remove` drops inherited ids
    whole: frozenset[str] = frozenset()  # mappings whose entries a route replaces whole, by name
    accumulate: frozenset[str] = frozenset()  # lists a route adds to, never replaces


class LayerSettings(StrictModel):
    """Keys every layer section accepts; layers subclass this with their own keys."""

    inherit: ClassVar[Inheritance] = Inheritance()

    mode: ModeName | None = None  # None: the route's mode
    on_error: Literal["open", "closed"] = "closed"
    budget_ms: float = Field(default=5.0, gt=0, le=10_000)
    error_status: int = Field(default=503, ge=400, le=599)


@dataclass(frozen=True, slots=True)
class Context:
    """Per-request facts shared by the layers of one evaluation."""

    route: str
    deadline_ns: int  # extproc.worktime.work_ns() value after which expensive work should degrade
    verdicts: tuple = ()  # earlier layers' verdicts, for layers that read them (late_rules)


class Layer(Protocol):
    name: ClassVar[str]
    needs_body: bool  # evaluate() reads the body, so it runs once the body has arrived

    def evaluate(self, request: Request, context: Context) -> Verdict: ...


@dataclass(frozen=True, slots=True)
class RouteContext:
    """What a layer may know about the route and document it is built for."""

    route: str
    public: bool = False  # the route is marked public: no access protection
    access: object | None = None  # the compiled top-level access block (extproc.access.directory.Directory)
    policy_dir: str = "."  # files the policy names (specs, ...) are relative to the policy file


@dataclass(frozen=True, slots=True)
class LayerSpec:
    """Registry entry: how to validate a layer's config section and build the layer."""

    name: str
    settings: type[LayerSettings]
    build: Callable[..., Layer]  # build(settings), or build(settings, RouteContext) when route_aware
    # Headers this layer may set upstream. Client-sent copies are stripped on every route,
    # whether or not the layer runs there, so the upstream can trust them.
    upstream_headers: frozenset[str]
    route_aware: bool = False
