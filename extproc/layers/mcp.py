"""MCP portal: every MCP message tied to an identity, allowed per server and per tool, its
arguments bounded and scanned, and audited in an open format.

MCP over Streamable HTTP is JSON-RPC 2.0 in POST bodies (one message or a batch). Identity comes
from the access layer before this one (its groups decide); a route names the MCP server it
carries, and a route that names none is refused. Denials answer in JSON-RPC (an error object per
message, HTTP 200 by default, as MCP clients expect), so agents see a clean error; why goes to
the audit record. List answers (tools/list, prompts/list, resources/list) are filtered on the
way back so agents never see what they cannot use.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

import orjson
from pydantic import Field

from extproc.access.identity import Caller
from extproc.access.identity import caller as access_caller
from extproc.core.durable import DURABLE
from extproc.layers.base import Capabilities, Context, Headers, Inheritance, LayerSettings, LayerSpec, RouteContext
from extproc.mcp import jsonrpc
from extproc.mcp.audit import audit_writer
from extproc.mcp.jsonrpc import FORBIDDEN, INVALID_PARAMS, RATE_LIMITED, TARGETS, Message
from extproc.mcp.listing import INTERNAL_ERROR, LISTS, AnswerFilter
from extproc.mcp.policy import CompiledGrant, Grant, Permissions
from extproc.mcp.ratelimit import RateLimiter
from extproc.observability.redact import redact_url
from extproc.core.request import Request, StateKey
from extproc.core.strict import StrictModel
from extproc.observability.tracing import trace_id_of
from extproc.core.verdict import Action, Reply, Verdict
from extproc.state.limits import Bucket, SharedLimits
from extproc.state.settings import StateSettings
from extproc.state.shared import layer_state

ALWAYS = frozenset({"initialize", "server/discover", "ping", "logging/setLevel", "completion/complete",
                    "resources/templates/list", *LISTS})  # allowed to anyone who may reach the server; lists are filtered


class RateLimit(StrictModel):
    requests: int = Field(default=60, ge=1)
    per_s: float = Field(default=60.0, gt=0)


class AuditSpec(StrictModel):
    path: str = "-"  # a file, or - for stdout
    max_bytes: int = Field(default=50 << 20, ge=1 << 16)
    backups: int = Field(default=5, ge=0, le=100)


class McpSettings(LayerSettings):
    # A route's grant for a group replaces the inherited one whole (extproc/config/inherit.py).
    inherit: ClassVar[Inheritance] = Inheritance(whole=frozenset({"groups"}))
    budget_ms: float = Field(default=20.0, gt=0, le=10_000)
    server: str | None = None  # the MCP server this route carries; none: every message is refused
    groups: dict[str, Grant] = {}  # identity group ("*": any caller) -> servers, tools, resources, prompts
    max_argument_bytes: int = Field(default=65536, ge=16)
    max_argument_depth: int = Field(default=16, ge=1, le=256)
    scan_arguments: bool = True  # the ML attack score over tool and prompt arguments
    scan_threshold: int = Field(default=20, ge=1, le=99)
    rate_limit: RateLimit | None = RateLimit()  # per identity and tool
    audit: AuditSpec | None = AuditSpec()
    deny_status: int = Field(default=200, ge=200, le=499)
    state: StateSettings = StateSettings()  # where the rate limits are counted (docs/state.md)


@dataclass
class Exchange:
    """What an allowed request leaves for its answer: the caller's grants, the list methods whose
    answers are filtered, and the ids and framing to answer with when filtering fails."""

    grants: tuple[CompiledGrant, ...]
    list_methods: list[str]
    caller: Caller
    ids: list
    batch: bool
    answer: AnswerFilter | None = None  # made on the answer's first chunk


EXCHANGE: StateKey[Exchange] = StateKey("mcp")
STORE_FALLBACK: StateKey[str] = StateKey("mcp_state")  # the store failed and on_error (open, local) let calls on


class McpLayer:
    name: ClassVar[str] = "mcp"
    needs_body = True
    capabilities = Capabilities(reads_identity=True)

    def __init__(self, settings: McpSettings, route: RouteContext) -> None:
        self.settings = settings
        self.server = settings.server
        self.permissions = Permissions(settings.groups)
        limit = settings.rate_limit
        # Kept across reloads: a reload must not hand every caller a fresh allowance.
        self.limiter = DURABLE.get("rate_limiters", ("mcp", route.route, limit.requests, limit.per_s),
                                   lambda: RateLimiter(limit.requests, limit.per_s), size=len) if limit else None
        self.limit_name = f"{route.route}\x1f{limit.requests}\x1f{limit.per_s}" if limit else ""
        self.limits = SharedLimits(layer_state(settings.state, self.name))
        self.audit = audit_writer(settings.audit.path, settings.audit.max_bytes, settings.audit.backups) \
            if settings.audit else None
        self.scanner = None
        if settings.scan_arguments:
            from extproc.layers.attack import AttackLayer, AttackSettings

            self.scanner = AttackLayer(AttackSettings(threshold=settings.scan_threshold, parts=["body"],
                                                      forward_scores=False), route)

    # -- request ---------------------------------------------------------------------------

    def evaluate(self, request: Request, context: Context) -> Verdict:
        started = time.perf_counter()
        caller = access_caller(context.identity, request.source_ip)
        grants = self.permissions.of(caller.groups)
        if request.method != "POST":  # GET opens the server's event stream, DELETE ends a session
            allowed = self.server is not None and self.permissions.may_reach(grants, self.server)
            self._record(request, caller, None, "allow" if allowed else "deny", "" if allowed else "server_not_allowed",
                         started)
            return Verdict(self.name) if allowed else Verdict(self.name, Action.DENY, 403, reasons=("mcp:server_not_allowed",))
        parsed = jsonrpc.parse(request.body, request.header_map.get("content-type", ()))
        if isinstance(parsed, jsonrpc.Malformed):
            self._record(request, caller, None, "deny", "malformed", started)
            body = orjson.dumps(jsonrpc.error(None, parsed.code, parsed.message, request.request_id))
            return Verdict(self.name, Action.DENY, 400, reasons=("mcp:malformed",), reply=Reply(body))
        messages, batch = parsed
        judged = [self._judge(message, caller, grants, request) for message in messages]
        if not batch and _headers_disagree(request, messages[0]):
            judged = [("header_body_mismatch", FORBIDDEN, 0.0)]
        for message, (reason, _code, _wait) in zip(messages, judged):
            self._record(request, caller, message, "deny" if reason else "allow", reason, started)
        if not any(reason for reason, _, _ in judged):
            # The ids answer a withheld list answer with errors the client can match (response_failure).
            request.keep(EXCHANGE, Exchange(grants, [m.method for m in messages if m.method in LISTS], caller,
                                            [m.id for m in messages if m.method and m.id is not None], batch))
            # Labels reach the decision audit and the trace (as the layer's span event), so a trace
            # shows who called which tool as the MCP audit file does.
            called = (f"{m.method} {redact_url(m.target)}".strip() for m in messages if m.method)
            fallback = request.kept(STORE_FALLBACK)
            return Verdict(self.name, labels=(f"identity:{caller.name[:128]}", *dict.fromkeys(called)),
                           reasons=(f"mcp:state_unavailable={fallback}",) if fallback else ())
        return self._refuse(request, messages, judged, batch)

    def _judge(self, message: Message, caller: Caller, grants: tuple[CompiledGrant, ...],
               request: Request) -> tuple[str, int, float]:
        """('' when allowed, else the reason), the JSON-RPC error code, seconds to wait (rate limit)."""
        if self.server is None:
            return "server_not_registered", FORBIDDEN, 0.0
        if not self.permissions.may_reach(grants, self.server):
            return "server_not_allowed", FORBIDDEN, 0.0
        # A call without an id is still a call: JSON-RPC servers run notifications, they only do
        # not answer them. Exempting every notification let tools/call of any tool through unchecked.
        if message.method == "" or message.method in ALWAYS:
            return "", 0, 0.0
        if message.method not in TARGETS:
            return "", 0, 0.0  # other methods: the server answers them (or says it does not know them)
        kind = TARGETS[message.method][0]
        if not self.permissions.permits(grants, self.server, kind, message.target):
            return f"{kind}_not_allowed", FORBIDDEN, 0.0
        return self._check_arguments(message, caller, request)

    def _check_arguments(self, message: Message, caller: Caller, request: Request) -> tuple[str, int, float]:
        raw, value = message.arguments()
        if raw is None:  # nested beyond what can be serialised, let alone inspected
            return "arguments_too_deep", INVALID_PARAMS, 0.0
        if len(raw) > self.settings.max_argument_bytes:
            return "arguments_too_large", INVALID_PARAMS, 0.0
        if value is not None and jsonrpc.depth(value, self.settings.max_argument_depth) > self.settings.max_argument_depth:
            return "arguments_too_deep", INVALID_PARAMS, 0.0
        if self.limiter is not None and message.method == "tools/call":
            key = f"{caller.name}\x1f{self.server}\x1f{message.target}"
            outcome = self.limits.take([Bucket(self.limit_name, self.limiter, key)])
            if outcome.wait > 0:
                return "rate_limited", RATE_LIMITED, outcome.wait
            if outcome.fallback == "closed":  # the store failed: the policy refuses what it cannot count
                return "state_unavailable", INTERNAL_ERROR, 0.0
            if outcome.fallback:
                request.keep(STORE_FALLBACK, outcome.fallback)
        if self.scanner is not None and raw:
            probe = Request("POST", "/", headers=(("content-type", "application/json"),), has_body=True)
            probe.attach_body(raw)
            if self.scanner.evaluate(probe, Context("mcp", 0)).action is Action.DENY:
                return "arguments_attack", FORBIDDEN, 0.0
        return "", 0, 0.0

    def _refuse(self, request: Request, messages, judged, batch: bool) -> Verdict:
        errors, reasons, wait = [], [], 0.0
        for message, (reason, code, delay) in zip(messages, judged):
            if message.id is None:
                continue  # notifications get no answer, refused or not
            text = "Forbidden by policy" if reason else "Not processed: another message of the batch was refused"
            if code == RATE_LIMITED:
                text = "Rate limit exceeded"
            errors.append(jsonrpc.error(message.id, code or FORBIDDEN, text, request.request_id))
            wait = max(wait, delay)
            if reason:
                reasons.append(f"mcp:{reason}:{message.method}:{redact_url(message.target)[:64]}")
        headers = (("retry-after", str(max(1, round(wait)))),) if wait else ()
        status = 429 if wait and self.settings.deny_status != 200 else self.settings.deny_status
        if not errors:
            # Only notifications were refused: no id to answer with. Streamable HTTP wants an HTTP
            # error status for a notification it does not accept, with at most an id-less error.
            code = next((code for reason, code, _ in judged if reason), FORBIDDEN) or FORBIDDEN
            wait = max((delay for _, _, delay in judged), default=0.0)
            headers = (("retry-after", str(max(1, round(wait)))),) if wait else ()
            status = 429 if code == RATE_LIMITED else 403
            errors = [jsonrpc.error(None, code, "Rate limit exceeded" if code == RATE_LIMITED
                                    else "Forbidden by policy", request.request_id)]
        body = orjson.dumps(errors if batch else errors[0])
        return Verdict(self.name, Action.DENY, status, reasons=tuple(reasons) or ("mcp:denied",),
                       reply=Reply(body, headers=headers))

    # -- response: filter list answers ---------------------------------------------------------

    def response_wanted(self, request: Request, status: str, headers: Headers) -> bool:
        exchange = request.kept(EXCHANGE)
        return exchange is not None and bool(exchange.list_methods) and status == "200"

    def on_response(self, request: Request, status: str, headers: Headers, body: bytes,
                    end_of_stream: bool = True) -> bytes | None:
        exchange = request.kept(EXCHANGE)
        assert exchange is not None  # response_wanted said so
        if exchange.answer is None:  # the first chunk (BUFFERED sends just one)
            content_type = next((v for k, v in headers if k == "content-type"), "application/json").lower()
            grants, server = exchange.grants, self.server  # no server: evaluate() refused every call
            exchange.answer = AnswerFilter(content_type, lambda kind, name: server is not None
                                           and self.permissions.permits(grants, server, kind, name))
        started = time.perf_counter()
        answer = exchange.answer
        rewritten = answer.feed(body, end_of_stream)  # raises Unfiltered: on_error decides
        if end_of_stream and self.audit is not None:
            self._record(request, exchange.caller, None, "filtered", ",".join(exchange.list_methods), started,
                         extra={"listed": answer.listed, "shown": answer.shown})
        return None if rewritten == body else rewritten

    def response_failure(self, request: Request, status: str, headers: Headers) -> bytes:
        """The answer in place of a list answer the filter failed on (on_error: closed): a JSON-RPC
        error per request id, as for an answer too deep to filter, in the answer's own framing."""
        exchange = request.kept(EXCHANGE)
        assert exchange is not None
        if self.audit is not None:
            self._record(request, exchange.caller, None, "withheld", ",".join(exchange.list_methods),
                         time.perf_counter())
        errors = [jsonrpc.error(message_id, INTERNAL_ERROR, "List answer could not be filtered", request.request_id)
                  for message_id in exchange.ids or [None]]  # null: JSON-RPC's id when it is not known
        if next((v for k, v in headers if k == "content-type"), "").lower().startswith("text/event-stream"):
            return b"".join(b"event: message\ndata: " + orjson.dumps(error) + b"\n\n" for error in errors)
        return orjson.dumps(errors if exchange.batch else errors[0])

    # -- audit ----------------------------------------------------------------------------

    def _record(self, request: Request, caller, message: Message | None, decision: str, reason: str,
                started: float, extra: dict | None = None) -> None:
        if self.audit is None:
            return
        raw = message.arguments()[0] if message is not None else b""
        self.audit.write({
            "request_id": request.request_id, "trace_id": trace_id_of(request.header("traceparent")), "server": self.server,
            "identity": caller.name, "groups": sorted(caller.groups),
            "client": {"ip": request.source_ip, "user_agent": request.header("user-agent")[:200],
                       "session": request.header("mcp-session-id")[:128]},
            "method": message.method if message else request.method, "id": message.id if message else None,
            "target": redact_url(message.target)[:256] if message else "",
            "arguments": {"sha256": jsonrpc.digest(raw), "bytes": len(raw)} if raw else
                         {"too_deep": True} if raw is None else None,
            "decision": decision, "reason": reason, "latency_us": round((time.perf_counter() - started) * 1e6, 1),
            **(extra or {}),
        })


def _headers_disagree(request: Request, message: Message) -> bool:
    """Streamable HTTP mirrors the method and target in Mcp-Method / Mcp-Name so proxies can route
    without parsing; a body that says otherwise would slip past whoever trusts the headers."""
    method, name = request.header("mcp-method"), request.header("mcp-name")
    return bool(method and method != message.method) or bool(name and name != message.target)






SPEC = LayerSpec(name=McpLayer.name, settings=McpSettings, build=McpLayer, upstream_headers=frozenset())
