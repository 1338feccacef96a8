"""The layer contract: what every defense layer implements (``Layer``), the optional response
hooks (``WatchesResponse``, ``RewritesResponse``), what a layer declares it does besides judging
(``Capabilities``), what it is given (``Context``, ``RouteContext``), and the shared settings."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Callable, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BeforeValidator, Field

from extproc.core.request import Request
from extproc.core.strict import StrictModel  # noqa: F401 - layers import it from here
from extproc.core.verdict import Verdict

if TYPE_CHECKING:
    from extproc.access.directory import Directory
    from extproc.access.identity import Identity

Headers = tuple[tuple[str, str], ...]


def _off_from_yaml(value: object) -> object:
    return "off" if value is False else value  # YAML 1.1 reads a bare `off` as false


ModeName = Annotated[Literal["enforce", "observe", "off"], BeforeValidator(_off_from_yaml)]


@dataclass(frozen=True, slots=True)
class Inheritance:
    """How a route's section inherits list and mapping keys from the defaults' section where
    the plain merge (mappings key by key, any other value replaced) would drop protection that
    the route never named (extproc/config/inherit.py applies it)."""

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
    deadline_ns: int  # extproc.core.worktime.work_ns() value after which expensive work should degrade
    verdicts: tuple[Verdict, ...] = ()  # earlier layers' verdicts, given to layers that read them
    identity: Identity | None = None  # who the access layer found, given to layers that read it


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a layer does besides judging a request, declared by the layer and read once, when a
    route is compiled: the pipeline plans each route from these, never by probing the layer."""

    reads_verdicts: bool = False  # evaluate() reads context.verdicts (the layers before it)
    reads_identity: bool = False  # evaluate() reads context.identity
    provides_identity: bool = False  # its verdict's identity is context.identity for the layers after it
    rewrites_body: bool = False  # its verdict may replace the request body


JUDGES_ONLY = Capabilities()


class Layer(Protocol):
    """The contract of every layer: a name, whether it reads the body, what else it does, and the
    judgement. A layer is built once per route and policy load and must not keep request state on
    itself: what one request needs across phases it keeps on the request under a typed key
    (``request.keep(KEY, value)``, ``request.kept(KEY)``)."""

    name: ClassVar[str]

    # Read-only to the pipeline: a layer may declare them as class or instance attributes.
    @property
    def needs_body(self) -> bool:
        """evaluate() reads the body, so it runs once the body has arrived."""

    @property
    def capabilities(self) -> Capabilities: ...

    def evaluate(self, request: Request, context: Context) -> Verdict: ...


@runtime_checkable
class WatchesResponse(Protocol):
    """A layer that reads the upstream's answer as it streams by and changes nothing in it (token
    usage): its failure never withholds the answer, and it never holds it either. Where Envoy
    runs the answer reader, the answer is read there as it passes, and the layer gets, once it has
    passed, what the reader keeps: of an event stream the lines that mention usage (each as an
    event), of any other answer the body up to 1 MiB. ``watch_state`` gives, when the request is
    decided, what reading the answer needs (plain JSON values; Envoy carries them as dynamic
    metadata), and ``resume_watch`` keeps them on the stand-in request the report is read on,
    before ``response_wanted``."""

    def response_wanted(self, request: Request, status: str, headers: Headers) -> bool: ...

    def on_response_chunk(self, request: Request, headers: Headers, chunk: bytes, end_of_stream: bool) -> None: ...

    def watch_state(self, request: Request) -> dict[str, Any] | None:
        """What reading this request's answer needs; None: nothing to read."""

    def resume_watch(self, request: Request, state: dict[str, Any]) -> None:
        """Keep ``state`` (as watch_state gave it) on ``request``, a stand-in for the original."""


@runtime_checkable
class RewritesResponse(Protocol):
    """A layer that may rewrite the upstream's answer (filtering what a caller may see), so the
    answer is held until it has been read; its failure, fail-closed, replaces the answer with
    ``response_failure``'s body, since the original would show what it was to hide."""

    def response_wanted(self, request: Request, status: str, headers: Headers) -> bool: ...

    def on_response(self, request: Request, status: str, headers: Headers, body: bytes,
                    end_of_stream: bool = True) -> bytes | None: ...

    def response_failure(self, request: Request, status: str, headers: Headers) -> bytes | None:
        """The body in place of the answer; None: the generic JSON error with the request id."""


@runtime_checkable
class Describes(Protocol):
    """A layer whose contents check-config lists (the effective rules of a route)."""

    def describe(self) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class RouteContext:
    """What a layer may know about the route and document it is built for."""

    route: str
    public: bool = False  # the route is marked public: no access protection
    access: Directory | None = None  # the compiled top-level access block
    policy_dir: str = "."  # files the policy names (specs, ...) are relative to the policy file


@dataclass(frozen=True, slots=True)
class LayerSpec:
    """Registry entry: how to validate a layer's config section and build the layer."""

    name: str
    settings: type[LayerSettings]
    build: Callable[[Any, RouteContext], Layer]  # build(settings, route context)
    # Headers this layer may set upstream. Client-sent copies are stripped on every route,
    # whether or not the layer runs there, so the upstream can trust them.
    upstream_headers: frozenset[str]
