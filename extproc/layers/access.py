"""Zero-trust access: every request to an app carries an identity that its policy allows.

Require access protection: with this layer on, a route that belongs to no app is denied unless
the route is marked ``public``. No credential, or one that does not verify, is a 401; an
identity the app's policies do not allow is a 403. Why goes to the audit record, never to the
client. On allow the upstream gets the identity as headers and, when a key is configured, as a
short-lived assertion JWT signed by the sidecar. It never gets the service token's secret.
"""
from __future__ import annotations

from typing import ClassVar

from extproc.access.apps import CompiledApp
from extproc.access.directory import Directory
from extproc.access.identity import CredentialError, Identity
from extproc.layers.base import Capabilities, Context, LayerSettings, LayerSpec, RouteContext
from extproc.core.request import Request
from extproc.core.verdict import Action, Verdict

PREFIX = "x-extproc-"
EMAIL, GROUPS, IDP, USER, APP, METHODS, ASSERTION = (
    f"{PREFIX}user-email", f"{PREFIX}user-groups", f"{PREFIX}user-idp", f"{PREFIX}user-id", f"{PREFIX}access-app",
    f"{PREFIX}user-methods", f"{PREFIX}assertion")


class AccessSettings(LayerSettings):
    identity_headers: bool = True  # x-extproc-user-* upstream on allow (the assertion is sent either way)


class AccessLayer:
    name: ClassVar[str] = "access"
    needs_body = False
    capabilities = Capabilities(provides_identity=True)  # mcp and ai_gateway decide per identity too

    def __init__(self, settings: AccessSettings, route: RouteContext) -> None:
        if route.access is None and not route.public:
            raise ValueError("the access layer needs the top-level 'access' block (identity providers and apps)")
        self.settings = settings
        self.route = route.route
        self.public = route.public
        self.directory: Directory | None = route.access
        self.app = route.access.app_by_route.get(route.route) if route.access is not None else None

    def evaluate(self, request: Request, context: Context) -> Verdict:
        if self.public:
            return Verdict(self.name, labels=("public",))
        app, directory = self.app, self.directory
        if app is None or directory is None:  # an app comes from the directory: both or neither
            return self._deny(403, "no_app", ())  # require access protection: fail closed
        if directory.revocations_unheard:  # state on_error closed: what another worker revoked is unknown
            return self._deny(self.settings.error_status, "state_unavailable=closed", ())
        try:
            identity = directory.identify(request, app)
        except CredentialError as exc:
            return self._deny(exc.status, exc.reason, ())
        decision = app.decide(identity)
        who = (f"access:identity={_clean(identity.name)[:128]}", f"access:policy={decision.policy or '-'}")
        if not decision.allowed:
            return self._deny(403, decision.reason, who, identity)  # observed, later layers still see who
        return Verdict(self.name, reasons=(f"access:app={app.name}", *who), labels=(app.name,),
                       upstream_headers=self._headers(identity, request, app, directory), identity=identity)

    def _deny(self, status: int, reason: str, who: tuple[str, ...], identity: Identity | None = None) -> Verdict:
        app = self.app.name if self.app else "-"
        return Verdict(self.name, Action.DENY, status, reasons=(f"access:{reason}", f"access:app={app}", *who),
                       identity=identity)

    def _headers(self, identity: Identity, request: Request, app: CompiledApp,
                 directory: Directory) -> tuple[tuple[str, str], ...]:
        headers = []
        if self.settings.identity_headers:
            headers += [(APP, app.name), (USER, _clean(identity.subject or identity.name)),
                        (METHODS, ",".join(sorted(identity.methods)))]
            if identity.email:
                headers.append((EMAIL, _clean(identity.email)))
            if identity.groups:
                headers.append((GROUPS, ",".join(sorted(_clean(g).replace(",", " ") for g in identity.groups))))
            if identity.idp:
                headers.append((IDP, identity.idp))
        if directory.signer is not None:
            headers.append((ASSERTION, directory.signer.sign(identity, app.name, request)))
        return tuple(headers)


def _clean(value: str) -> str:
    """Header-safe: claims come from an IdP, but a control character must not break the request."""
    return "".join(ch for ch in value if ch.isprintable())[:1024]


SPEC = LayerSpec(
    name=AccessLayer.name,
    settings=AccessSettings,
    build=AccessLayer,
    upstream_headers=frozenset({EMAIL, GROUPS, IDP, USER, APP, METHODS, ASSERTION}),
)
