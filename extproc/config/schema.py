"""The policy document's schema: what a policy file may say (validated by pydantic, strict keys).
extproc/config/compile.py turns a valid document into the immutable Policy."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from extproc.access.settings import AccessBlock
from extproc.core.request import InspectionLimits
from extproc.layers.base import ModeName, StrictModel
from extproc.rules.signatures import compile_regex

ROUTE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class Inspection(StrictModel):
    max_body_bytes: int | None = Field(default=None, ge=0, le=64 * 1024 * 1024)
    max_args: int | None = Field(default=None, ge=1, le=100_000)
    max_json_depth: int | None = Field(default=None, ge=1, le=1_000)
    max_multipart_parts: int | None = Field(default=None, ge=1, le=10_000)
    oversize: Literal["deny", "inspect_prefix"] | None = None
    over_limit: Literal["deny", "inspect_prefix"] | None = None
    uninspectable: Literal["deny", "allow"] | None = None
    uncanonical_path: Literal["deny", "allow"] | None = None

    def apply(self, base: InspectionLimits) -> InspectionLimits:
        given = {k: v for k, v in self.model_dump().items() if v is not None}
        return InspectionLimits(**{**limits_dict(base), **given})


class RouteMatch(StrictModel):
    """All given conditions must hold; an empty match matches every request."""

    route_name: str | None = None  # Envoy's route name (request attribute xds.route_name)
    hosts: list[str] | None = None  # exact names or '*.example.com'
    path_prefix: str | None = None  # against the canonical path (extproc.core.paths); '/x/' covers '/x'
    path_regex: str | None = None  # searched in the canonical path without query string
    methods: list[str] | None = None
    # Application servers that route case-insensitively (ASP.NET Core, Express) read /Internal/ as
    # /internal/: paths are compared case-folded unless the route says its upstream never does.
    case_sensitive: bool = False

    @field_validator("path_regex")
    @classmethod
    def _regex(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            compile_regex(pattern)  # RE2: request paths are attacker input
        return pattern


class Defaults(StrictModel):
    mode: ModeName = "enforce"
    deadline_ms: float | None = Field(default=None, gt=0)
    inspection: Inspection = Inspection()
    layers: dict[str, dict[str, Any] | None] = {}


class Route(StrictModel):
    name: str = Field(pattern=ROUTE_NAME)
    match: RouteMatch
    public: bool = False  # no access protection: the access layer lets every request through
    mode: ModeName | None = None
    deadline_ms: float | None = Field(default=None, gt=0)
    inspection: Inspection = Inspection()
    layers: dict[str, dict[str, Any] | None] = {}


class PolicyDocument(StrictModel):
    version: Literal[1]
    access: AccessBlock | None = None  # identity providers and apps, shared by every route
    defaults: Defaults = Defaults()
    routes: list[Route] = []


def limits_dict(limits: InspectionLimits) -> dict[str, object]:
    return {name: getattr(limits, name) for name in InspectionLimits.__slots__}
