"""The compiled ``access`` block: identity sources and apps, immutable, built once per policy load."""
from __future__ import annotations

import dataclasses
import ipaddress
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from extproc.access import identity as ids
from extproc.access.apps import CompiledApp, compile_app
from extproc.access.assertion import AssertionKeyError, Signer
from extproc.access.identity import CredentialError, Identity, TokenRule
from extproc.access.jwks import key_source
from extproc.state.events import EventBus, event_bus
from extproc.access.service_tokens import SecretHash, lockout, parse_hash, source_key
from extproc.access.settings import AccessBlock, App, IdentityProvider, Rule, ServiceToken, ServiceTokenLockout
from extproc.access.tokens import Issuer, TokenVerifier
from extproc.core.request import Request

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Directory:
    apps: tuple[CompiledApp, ...]
    app_by_route: dict[str, CompiledApp]
    token_rules: dict[str, tuple[TokenRule, ...]]  # per app
    token_sources: tuple[tuple[str, str, str], ...]  # of every IdP: a token anywhere is verified
    verifier: TokenVerifier
    service_tokens: dict[str, tuple[str, SecretHash]]  # client_id -> (name, salted hash of the secret)
    service_token_headers: tuple[str, str]
    service_token_lockout: ServiceTokenLockout
    mtls_source: str | None
    mtls_require_cert: bool
    posture_header: str
    posture_sources: tuple
    signer: Signer | None
    idp_summary: tuple[str, ...] = ()  # what each IdP may assert, for check-config and the startup log
    files: tuple[str, ...] = ()  # read at compile (assertion key, secret hashes): a change recompiles
    events: EventBus | None = None  # revocations shared with every worker (state: backend redis)
    state_on_error: str = "local"

    @property
    def revocations_unheard(self) -> bool:
        """The store's revocations cannot be heard now, and the policy says to refuse then."""
        return self.events is not None and self.state_on_error == "closed" and not self.events.live

    def identify(self, request: Request, app: CompiledApp, now: float | None = None, record: bool = True) -> Identity:
        """Every credential of the request, verified and merged; CredentialError when one fails or none is given.
        ``record=False``: a what-if question (``extproc reach``) that must not count as a guess."""
        now = time.time() if now is None else now
        facts: dict = {"methods": set(), "source_ip": request.source_ip}
        token = ids.from_tokens(request, self.token_rules[app.name], self.verifier, now, self.token_sources)
        if token is not None:
            facts.update(token)
            facts["methods"].add("jwt")
        service = self._service_token(request, now, record)
        if service is not None:
            facts["service_token"] = service
            facts["methods"].add("service_token")
        certificate = ids.from_mtls(request, self.mtls_source, self.mtls_require_cert)
        if certificate is not None:
            facts["mtls_sans"], facts["mtls_subject"] = certificate
            facts["methods"].add("mtls")
        if not facts["methods"]:
            raise CredentialError("no_credentials")
        if self.posture_header:
            facts["posture"] = ids.posture_of(request, self.posture_header, self.posture_sources)
        facts["methods"] = frozenset(facts["methods"])
        return Identity(**facts)

    def _service_token(self, request: Request, now: float, record: bool) -> str | None:
        """The service token's name; a source that keeps failing is locked out, right secret or not."""
        if not any(request.header_map.get(name) for name in self.service_token_headers):
            return None
        limits = self.service_token_lockout
        guarded = record and limits.lockout_s > 0
        if guarded and lockout().locked(request.source_ip, now):
            raise CredentialError("service_token_locked_out", status=429)
        try:
            return ids.from_service_token(request, self.service_token_headers, self.service_tokens)
        except CredentialError:
            if guarded and lockout().failed(request.source_ip, now, limits.max_failures, limits.window_s,
                                            limits.lockout_s):
                log.warning("service tokens: source %s locked out for %g s after %d failures",
                            source_key(request.source_ip), limits.lockout_s, limits.max_failures)
            raise

    def as_asserted(self, identity: Identity, app: CompiledApp) -> Identity:
        """A hypothetical identity (``reach --claims``) held to what its IdP may assert for this app,
        as a token of that IdP would be: no email outside its ``email_domains``."""
        if not identity.idp:
            return identity
        rule = next((r for r in self.token_rules[app.name] if r.idp == identity.idp), None)
        if rule is None:
            raise CredentialError("idp_not_accepted")
        email = ids.asserted_email(identity.email, rule.email_domains)
        if email:
            return identity
        claims = {name: value for name, value in identity.claims.items() if name != rule.email_claim}
        return dataclasses.replace(identity, email="", claims=claims)


def compile_directory(block: AccessBlock, route_names: set[str], problems: list[str]) -> Directory | None:
    """The compiled block, or None with the problems (YAML paths) appended."""
    start = len(problems)
    _check_apps(block, route_names, problems)
    signer = None
    if block.assertion is not None:
        try:
            signer = Signer(block.assertion)
        except AssertionKeyError as exc:
            problems.append(f"access.assertion.key_file: {exc}")
    secret_hashes = {name: _secret_hash(name, token, problems) for name, token in block.service_tokens.items()}
    sources = {name: key_source(name, idp.jwks) for name, idp in block.idps.items()}
    for name, source in sources.items():
        # A JWKS file is local: missing or unreadable at load is a mistake in the policy, and
        # every token of that IdP would get a 401. (A URL may be down for a while: it is retried
        # in the background.) A cached source that failed before is read again, as the file may
        # have been fixed since.
        if source.settings.file and source.last_error and not source.refresh():
            problems.append(f"access.idps.{name}.jwks.file: {source.settings.file}: {source.last_error}")
    if len(problems) > start:
        return None
    events = _share_revocations(block, sources, problems)
    if len(problems) > start:
        return None
    issuers = {name: Issuer(name, idp, sources[name]) for name, idp in block.idps.items()}
    hashes = {name: h for name, h in secret_hashes.items() if h is not None}  # each: a None was a problem
    client_id_header, secret_header = block.service_token_headers
    apps = tuple(compile_app(app) for app in block.apps)
    return Directory(
        apps=apps,
        app_by_route={route: app for app in apps for route in app.routes},
        token_rules={app.name: _token_rules(block, app) for app in block.apps},
        token_sources=tuple(dict.fromkeys(s for idp in block.idps.values() for s in _sources(idp))),
        verifier=TokenVerifier(issuers),
        service_tokens={t.client_id: (name, hashes[name]) for name, t in block.service_tokens.items()},
        service_token_headers=(client_id_header.lower(), secret_header.lower()),
        service_token_lockout=block.service_token_lockout,
        mtls_source=block.mtls.source if block.mtls else None,
        mtls_require_cert=block.mtls.require_cert if block.mtls else True,
        posture_header=block.posture.header.lower() if block.posture else "",
        posture_sources=tuple(ipaddress.ip_network(c, strict=False) for c in block.posture.trusted_sources)
        if block.posture else (),
        signer=signer,
        idp_summary=tuple(_idp_line(name, idp) for name, idp in block.idps.items()),
        files=tuple(([block.assertion.key_file] if block.assertion else [])
                    + [t.secret_hash_file for t in block.service_tokens.values() if t.secret_hash_file]),
        events=events,
        state_on_error=block.state.on_error,
    )


def _share_revocations(block: AccessBlock, sources: dict, problems: list[str]) -> EventBus | None:
    if block.state.backend != "redis":
        return None
    try:
        url = block.state.resolved_url()
    except ValueError as exc:
        problems.append(f"access.{exc}")
        return None
    bus = event_bus(url, block.state.key_prefix, block.state.timeout_ms, block.state.tls_ca_file)
    for source in sources.values():
        source.share_revocations(bus)
    return bus


def _secret_hash(name: str, token: ServiceToken, problems: list[str]) -> SecretHash | None:
    if token.secret_hash is not None:
        return parse_hash(token.secret_hash)  # checked by the schema
    assert token.secret_hash_file is not None  # the schema wants exactly one of the two
    path = f"access.service_tokens.{name}.secret_hash_file"
    try:
        return parse_hash(Path(token.secret_hash_file).read_text(encoding="utf-8"))
    except OSError as exc:
        problems.append(f"{path}: {token.secret_hash_file}: {exc.strerror or exc}")
    except (ValueError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: {token.secret_hash_file}: {exc}")
    return None


def _idp_line(name: str, idp: IdentityProvider) -> str:
    asserts = (f"asserts addresses in {', '.join(idp.email_domains)}" if idp.email_domains
               else "asserts no email address (it has no email_domains)")
    return f"idp {name}: {asserts}; tokens live at most {idp.max_token_lifetime_s:g} s"


def _token_rules(block: AccessBlock, app: App) -> tuple[TokenRule, ...]:
    rules = []
    for name in app.idps if app.idps is not None else block.idps:
        idp = block.idps[name]
        audience = app.audience or idp.audience
        assert audience, "_check_apps refused an app whose tokens have no audience"
        rules.append(TokenRule(name, _sources(idp), audience, idp.email_claim, idp.groups_claim,
                               frozenset(idp.email_domains)))
    return tuple(rules)


def _sources(idp) -> tuple[tuple[str, str, str], ...]:
    return tuple(("cookie", s.cookie, "") if s.cookie else ("header", s.header.lower(), s.scheme or "")
                 for s in idp.token_sources)


def _check_apps(block: AccessBlock, route_names: set[str], problems: list[str]) -> None:
    owner: dict[str, str] = {}
    seen_apps: set[str] = set()
    for index, app in enumerate(block.apps):
        path = f"access.apps[{index}]"
        if app.name in seen_apps:
            problems.append(f"{path}.name: {app.name!r} is already used")
        seen_apps.add(app.name)
        for route in app.routes:
            if route not in route_names:
                problems.append(f"{path}.routes: no route named {route!r}")
            elif route in owner:
                problems.append(f"{path}.routes: route {route!r} already belongs to app {owner[route]!r}")
            owner.setdefault(route, app.name)
        if app.idps is None and len(block.idps) > 1:
            problems.append(f"{path}.idps: the access block has several IdPs ({', '.join(map(repr, block.idps))}): "
                            "name the ones this app accepts")
        for name in app.idps if app.idps is not None else block.idps:
            if name not in block.idps:
                problems.append(f"{path}.idps: no identity provider named {name!r}")
            elif not (app.audience or block.idps[name].audience):
                problems.append(f"{path}.audience: tokens of {name!r} need an audience: set it here or on the IdP")
        _check_rule_references(block, app, path, problems)


def _check_rule_references(block: AccessBlock, app: App, path: str, problems: list[str]) -> None:
    for p_index, policy in enumerate(app.policies):
        for part in ("include", "require", "exclude"):
            for r_index, rule in enumerate(getattr(policy, part)):
                where = f"{path}.policies[{p_index}].{part}[{r_index}]"
                for token in rule.service_token or ():
                    if token not in block.service_tokens:
                        problems.append(f"{where}.service_token: no service token named {token!r}")
                for idp in rule.idp or ():
                    if idp not in block.idps:
                        problems.append(f"{where}.idp: no identity provider named {idp!r}")
                _check_assertable(block, app, rule, policy.action == "allow" and part != "exclude", where, problems)
                if rule.device_posture and block.posture is None:
                    problems.append(f"{where}.device_posture: needs access.posture (which sources to trust)")
                if (rule.mtls or rule.mtls_san) and block.mtls is None:
                    problems.append(f"{where}: mTLS rules need access.mtls")


def _check_assertable(block: AccessBlock, app: App, rule: Rule, grants: bool, where: str, problems: list[str]) -> None:
    """A rule may only ask for what an IdP it accepts may assert: an address in one of that IdP's
    ``email_domains``; and a rule that grants on groups or claims of an app with several IdPs
    names the IdP whose groups it means (group names are each IdP's own)."""
    idps = [n for n in (rule.idp or (app.idps if app.idps is not None else block.idps)) if n in block.idps]
    asserted = {domain: name for name in idps for domain in block.idps[name].email_domains}
    wanted = [("email", v, v.lower().rpartition("@")[2]) for v in rule.email or ()]
    wanted += [("email_domain", v, v.lower().lstrip("@")) for v in rule.email_domain or ()]
    for key, value, domain in wanted:
        if domain not in asserted:
            problems.append(f"{where}.{key}: no IdP this rule accepts may assert addresses in {domain!r} "
                            f"({_assertions(block, idps)}); add it to the email_domains of the IdP that owns it")
    if grants and (rule.group or rule.claim) and rule.idp is None and len(idps) > 1:
        problems.append(f"{where}: group and claim names are each IdP's own, and this app accepts "
                        f"{', '.join(map(repr, idps))}: name the IdP whose groups this rule means (idp: [...])")


def _assertions(block: AccessBlock, idps: list[str]) -> str:
    return "; ".join(f"{name!r} asserts " + (", ".join(block.idps[name].email_domains) or "no email address "
                                             "(it has no email_domains)") for name in idps) or "it accepts no IdP"
