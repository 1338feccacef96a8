"""API Shield: on routes that carry an API, only requests that match its OpenAPI document pass.

Every violation has a kind and the spec location it broke; what happens is configured per kind
(deny, log or off). Requests to endpoints the spec does not name follow ``unknown_endpoint``:
deny, log, or ``attack`` - a hybrid of positive and anomaly models, where the endpoint is let
through unless the ML attack score is at or below ``attack_threshold``.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from extproc.api_shield.check import Violation, check
from extproc.api_shield.operations import CompiledSpec, compile_spec
from extproc.api_shield.spec import load_spec
from extproc.core.durable import DURABLE
from extproc.layers.base import JUDGES_ONLY, Capabilities, Context, LayerSettings, LayerSpec, RouteContext
from extproc.core.request import Request
from extproc.core.verdict import Action, Verdict

if TYPE_CHECKING:
    from extproc.layers.attack import AttackLayer

KINDS = ("unknown_path", "method_not_allowed", "missing_param", "invalid_param", "unknown_param", "content_type",
         "missing_body", "body_schema", "security")
Kind = Literal["unknown_path", "method_not_allowed", "missing_param", "invalid_param", "unknown_param",
               "content_type", "missing_body", "body_schema", "security"]
DEFAULT_ACTIONS: dict[str, str] = {kind: "deny" for kind in KINDS} | {"unknown_param": "log"}
ENDPOINT_KINDS = ("unknown_path", "method_not_allowed")


class ApiShieldSettings(LayerSettings):
    spec: str  # OpenAPI 3.0/3.1 file, YAML or JSON; relative paths are relative to the policy file
    base_path: str = ""  # stripped from the request path before matching (e.g. /api/v1)
    actions: dict[Kind, Literal["deny", "log", "off"]] = {}  # per violation kind, over the defaults
    unknown_endpoint: Literal["deny", "log", "attack"] = "deny"
    attack_threshold: int = Field(default=50, ge=1, le=99)  # unknown endpoints with unknown_endpoint: attack
    status: int = Field(default=403, ge=400, le=499)


def compiled(path: Path) -> CompiledSpec:
    """Compiled once per file version: routes sharing a spec, and reloads, reuse it."""
    key = (str(path.resolve()), path.stat().st_mtime_ns if path.exists() else 0)
    return DURABLE.get("api_specs", key, lambda: compile_spec(load_spec(path)))


class ApiShieldLayer:
    name: ClassVar[str] = "api_shield"
    needs_body = True  # body schemas; requests without a body are checked at the headers
    capabilities: ClassVar[Capabilities] = JUDGES_ONLY

    def __init__(self, settings: ApiShieldSettings, route: RouteContext) -> None:
        path = Path(settings.spec)
        self.spec = compiled(path if path.is_absolute() else Path(route.policy_dir) / path)
        self.base_path = settings.base_path.rstrip("/")
        self.actions = dict(DEFAULT_ACTIONS)
        self.actions.update(settings.actions.items())  # per kind, over the defaults
        self.settings = settings
        self._attack: AttackLayer | None = None  # set when unknown_endpoint is "attack"
        if settings.unknown_endpoint == "attack":
            from extproc.layers.attack import AttackLayer, AttackSettings

            self._attack = AttackLayer(AttackSettings(threshold=settings.attack_threshold), route)

    def evaluate(self, request: Request, context: Context) -> Verdict:
        path = request.url_path
        if self.base_path:
            if not (path == self.base_path or path.startswith(self.base_path + "/")):
                return self._verdict([Violation("unknown_path", path[:200], "outside the base path")], None, request,
                                     context)
            path = path[len(self.base_path):] or "/"
        operation, violations = check(self.spec, request, path)
        return self._verdict(violations, operation, request, context)

    def _verdict(self, violations: list[Violation], operation, request: Request, context: Context) -> Verdict:
        labels = (f"{operation.method} {operation.template}",) if operation else ()
        if not violations:
            return Verdict(self.name, labels=labels)
        unknown = violations[0].kind in ENDPOINT_KINDS
        actions = [self._action(v.kind, unknown) for v in violations]
        reasons = tuple(f"api_shield:{v.kind}:{v.location}" for v, a in zip(violations, actions) if a != "off")
        if unknown and self._attack is not None:
            attack = self._attack.evaluate(request, context)
            denied = attack.action is Action.DENY
            reasons += (f"api_shield:attack_score={attack.scores.get('attack', 99)}",)
            return Verdict(self.name, Action.DENY if denied else Action.LOG, self.settings.status, reasons=reasons)
        if "deny" in actions:
            return Verdict(self.name, Action.DENY, self.settings.status, reasons=reasons, labels=labels)
        return Verdict(self.name, Action.LOG if reasons else Action.ALLOW, reasons=reasons, labels=labels)

    def _action(self, kind: str, unknown_endpoint: bool) -> str:
        if unknown_endpoint and self.settings.unknown_endpoint == "log":
            return "log"
        return self.actions[kind]


SPEC = LayerSpec(name=ApiShieldLayer.name, settings=ApiShieldSettings, build=ApiShieldLayer,
                 upstream_headers=frozenset())
