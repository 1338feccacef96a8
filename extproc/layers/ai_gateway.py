"""AI gateway: identity, budgets, scanning and visibility for LLM API calls.

On routes that carry an LLM API (OpenAI-compatible chat completions, legacy completions,
responses, embeddings; Anthropic-compatible messages and legacy complete), every call is checked
against its caller's group: which models,
how many tokens a minute and a day (estimated before the call, corrected from the response's
``usage``, streaming included), how long a prompt, how many calls a minute. User and tool
messages are scored for prompt injection, tool-call arguments by the attack model, and prompts
are searched for sensitive data, which is blocked or redacted before it leaves. Every call gets
an audit record with its token counts, scores and decision.

The body is read as the upstream reads it (extproc.core.json_body, extproc.ai_gateway.calls), and what cannot
be read that way is refused: a body on an LLM endpoint that is not one readable JSON document of
the API's shape gets 400. A request with a body (or a POST) on any other path of the route is a
shape the gateway does not know: refused unless ``unknown_shapes: pass`` hands it to the generic
layers. Prompts given as token ids cannot be scanned: refused unless ``token_prompts: allow``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import ClassVar, Literal

import orjson
from pydantic import Field

from extproc.core import json_body
from extproc.ai_gateway import sensitive
from extproc.ai_gateway.budget import TokenBudgets
from extproc.ai_gateway.calls import BadShape, LlmCall, endpoint, parse_call
from extproc.ai_gateway.injection import DEFAULT_THRESHOLD, load_injection_model
from extproc.access.identity import caller
from extproc.ai_gateway.usage import StreamUsage, tokens_used
from extproc.core.durable import DURABLE
from extproc.layers.base import Capabilities, Context, Headers, LayerSettings, LayerSpec, RouteContext
from extproc.mcp.audit import audit_writer
from extproc.mcp.ratelimit import RateLimiter
from extproc.core.request import Request, StateKey
from extproc.core.strict import StrictModel
from extproc.core.verdict import Action, Reply, Verdict
from extproc.state.limits import Bucket, SharedLimits
from extproc.state.settings import StateSettings
from extproc.state.shared import Outcome, layer_state

EVERYONE = "*"


class GroupLimits(StrictModel):
    models: list[str] = ["*"]  # glob patterns
    tokens_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_day: int | None = Field(default=None, ge=1)
    max_prompt_chars: int | None = Field(default=None, ge=1)
    requests_per_minute: int | None = Field(default=None, ge=1)


class InjectionSpec(StrictModel):
    action: Literal["deny", "log", "off"] = "deny"
    threshold: int = Field(default=DEFAULT_THRESHOLD, ge=1, le=99)
    roles: list[str] = ["user", "tool"]  # system prompts are the operator's own
    model: str | None = None


class SensitiveSpec(StrictModel):
    action: Literal["redact", "deny", "log", "off"] = "redact"
    kinds: list[Literal[sensitive.KINDS]] = list(sensitive.KINDS)  # type: ignore[valid-type]


class AiSettings(LayerSettings):
    budget_ms: float = Field(default=20.0, gt=0, le=10_000)
    groups: dict[str, GroupLimits] = {}  # identity group ("*": any caller) -> limits; no group: refused
    injection: InjectionSpec = InjectionSpec()
    scan_tool_arguments: bool = True
    scan_threshold: int = Field(default=20, ge=1, le=99)
    sensitive_data: SensitiveSpec = SensitiveSpec()
    # A request with a body (or a POST) on a path that is no LLM API the gateway reads (images,
    # audio, files, another vendor's API): deny, or pass it to the generic layers unchecked here.
    unknown_shapes: Literal["deny", "pass"] = "deny"
    # Prompts and embedding inputs given as token ids: their text cannot be scanned. allow: the
    # model, size, rate and budget checks apply (4 characters a token), the scans do not.
    token_prompts: Literal["deny", "allow"] = "deny"
    audit_path: str | None = None  # JSON Lines, one record per call; - for stdout
    state: StateSettings = StateSettings()  # where budgets and request rates are counted (docs/state.md)


@dataclass
class CallInFlight:
    """An allowed call, for its answer: who made it, what was reserved, and the answer as read."""

    who: str
    estimated: int
    model: str
    api: str
    streamed: bool  # the call asked for a stream
    started: float  # perf_counter (CLOCK_MONOTONIC: the same in every worker of the host)
    received: int = 0
    counted: bool = False  # usage charged: what Envoy sends after the declared length is ignored
    stream: StreamUsage | None = None  # an event stream, read as it goes by
    parts: list[bytes] = field(default_factory=list)  # one JSON answer, kept up to MAX_ANSWER_BYTES
    kept: int = 0


IN_FLIGHT: StateKey[CallInFlight] = StateKey("ai_gateway")
MAX_MODEL_CHARS = 256  # of the model name kept for the usage record (it travels with every answer chunk)
MAX_ANSWER_BYTES = 8 << 20  # one JSON document: a runaway body is not kept (and its usage not read)


class AiGatewayLayer:
    name: ClassVar[str] = "ai_gateway"
    needs_body = True
    capabilities = Capabilities(reads_identity=True)  # and rewrites_body when it redacts (per instance)

    def __init__(self, settings: AiSettings, route: RouteContext) -> None:
        self.settings = settings
        self.capabilities = Capabilities(reads_identity=True, rewrites_body=settings.sensitive_data.action == "redact")
        self.injection = load_injection_model(settings.injection.model) if settings.injection.action != "off" else None
        self.sensitive_kinds = frozenset(settings.sensitive_data.kinds)
        self.injection_roles = frozenset(role.casefold() for role in settings.injection.roles)
        # Kept across reloads: a reload must not refill everyone's budget or rate allowance.
        self.budgets = shared_budgets()
        self.limits = SharedLimits(layer_state(settings.state, self.name), self.budgets)
        self.request_limiters = {group: (f"{route.route}\x1f{group}\x1f{limits.requests_per_minute}",
                                         _limiter(route.route, group, limits.requests_per_minute))
                                 for group, limits in settings.groups.items() if limits.requests_per_minute}
        self.audit = audit_writer(settings.audit_path, 50 << 20, 5) if settings.audit_path else None
        self.scanner = None
        if settings.scan_tool_arguments:
            from extproc.layers.attack import AttackLayer, AttackSettings

            self.scanner = AttackLayer(AttackSettings(threshold=settings.scan_threshold, parts=["body"],
                                                      forward_scores=False), route)

    def evaluate(self, request: Request, context: Context) -> Verdict:
        if request.method.upper() != "POST" and not request.body_size:
            return Verdict(self.name)  # GET /v1/models and the like: no call to govern
        started = time.perf_counter()
        who, groups = caller(context.identity, request.source_ip)
        read = self._read(request, who, groups, started)
        if isinstance(read, Verdict):
            return read
        call, document = read
        limits = [self.settings.groups[g] for g in (*groups, EVERYONE) if g in self.settings.groups]
        scores: dict[str, int] = {}
        notes: list[str] = []  # the store failed and on_error let the call on: said in the trace and audit
        refusal = self._policy(call, limits) or self._admit(call, who, groups, limits, notes)
        body = None
        if refusal is None:
            refusal = self._scan(call, scores)
            if refusal is None and self.settings.sensitive_data.action != "off":
                refusal, body = self._sensitive(document, scores)
            if refusal is not None:  # refused after its tokens were reserved: they go back
                self.limits.correct(who, call.estimated_tokens(), 0)
        self._audit(request, call, who, groups, scores, refusal, started)
        if refusal is not None:
            return refusal
        request.keep(IN_FLIGHT, CallInFlight(who, call.estimated_tokens(), call.model[:MAX_MODEL_CHARS], call.api,
                                             call.stream, started))
        # A redacted body is new plain JSON and Envoy forwards it as it is: the client's
        # content-encoding no longer describes it, so it goes too.
        return Verdict(self.name, scores=scores, labels=(call.api, call.model[:64]), rewrite_body=body,
                       remove_headers=("content-encoding",) if body is not None else (),
                       reasons=(f"ai:model={call.model[:64]}", *dict.fromkeys(notes)))

    def _read(self, request: Request, who: str, groups, started: float) -> tuple[LlmCall, object] | Verdict:
        """(the call, the JSON document) as the upstream reads them, or the verdict on a request
        the gateway cannot read that way."""
        where = endpoint(request.url_path)
        if where is None:
            return self._unknown_shape(request, who, groups, started)
        document = json_body.read(request.body, request.header_map.get("content-type", ()))
        if isinstance(document, json_body.Unreadable):
            return self._unreadable(request, where.api, f"unreadable_body:{document.reason}", who, groups, started)
        try:
            return parse_call(where, document), document
        except BadShape:
            return self._unreadable(request, where.api, "bad_shape", who, groups, started)

    def _unknown_shape(self, request: Request, who: str, groups, started: float) -> Verdict:
        """A path that is no LLM API the gateway reads: the policy decides, refused by default."""
        passing = self.settings.unknown_shapes == "pass"
        refusal = None if passing else _refuse(403, "unknown_shape", "Forbidden")
        self._audit_unread(request, "unknown", who, groups, refusal, started, "unknown_shape")
        return Verdict(self.name, labels=("unknown_shape",)) if refusal is None else refusal

    def _unreadable(self, request: Request, api: str, reason: str, who: str, groups, started: float) -> Verdict:
        """A body on an LLM endpoint that cannot be read as the upstream reads it: never passed."""
        refusal = _refuse(400, reason, "Request body could not be read")
        self._audit_unread(request, api, who, groups, refusal, started)
        return refusal

    # -- checks ---------------------------------------------------------------------------

    def _policy(self, call: LlmCall, limits: list[GroupLimits]) -> Verdict | None:
        if not limits:
            return _refuse(403, "no_group", "Forbidden")
        if call.too_deep:  # its texts and tool arguments were not read, so they cannot be scanned
            return _refuse(400, "too_deep", "Request nested too deeply")
        if call.token_prompts and self.settings.token_prompts == "deny":
            return _refuse(403, "token_prompt", "Forbidden")  # token ids: no text to scan
        if not any(fnmatchcase(call.model, pattern) for limit in limits for pattern in limit.models):
            return _refuse(403, "model_not_allowed", "Forbidden")
        caps = [limit.max_prompt_chars for limit in limits if limit.max_prompt_chars is not None]
        if len(caps) == len(limits) and call.prompt_chars > max(caps):  # every group caps it
            return _refuse(413, "prompt_too_large", "Prompt too large")
        return None

    def _scan(self, call: LlmCall, scores: dict[str, int]) -> Verdict | None:
        if self.injection is not None:
            worst = self._injection_score(call)
            scores["injection"] = worst
            if worst <= self.settings.injection.threshold and self.settings.injection.action == "deny":
                return _refuse(403, "prompt_injection", "Forbidden", score=worst)
        if self.scanner is not None and call.tool_arguments:
            probe = Request("POST", "/", headers=(("content-type", "application/json"),), has_body=True)
            probe.attach_body(_arguments_document(call.tool_arguments))
            verdict = self.scanner.evaluate(probe, Context("ai", 0))
            scores["tool_arguments"] = verdict.scores.get("attack", 99)
            if verdict.action is Action.DENY:
                return _refuse(403, "tool_arguments_attack", "Forbidden")
        return None

    def _injection_score(self, call: LlmCall) -> int:
        """The lowest score of the scanned roles' texts. When denying, the scan stops at the first
        window at or below the threshold: the verdict is certain and the rest need not be read."""
        assert self.injection is not None
        deny, threshold = self.settings.injection.action == "deny", self.settings.injection.threshold
        worst = 99
        for role, text in call.texts:
            if role in self.injection_roles and text:
                worst = min(worst, self.injection.score(text, stop_at=threshold if deny else None))
                if deny and worst <= threshold:
                    break
        return worst

    def _sensitive(self, document: object, scores: dict[str, int]) -> tuple[Verdict | None, bytes | None]:
        # The document the call was read from, whatever content-type the client claims: a
        # text/plain label must not carry a card number past the scan. A redacted body goes as
        # plain JSON (no BOM, no content-encoding).
        redacted, found = sensitive.redact_json(document, self.sensitive_kinds)
        scores["sensitive_findings"] = found
        if not found:
            return None, None
        action = self.settings.sensitive_data.action
        if action == "deny":
            return _refuse(403, "sensitive_data", "Forbidden"), None
        return None, (orjson.dumps(redacted) if action == "redact" else None)

    def _admit(self, call: LlmCall, who: str, groups, limits: list[GroupLimits], notes: list[str]) -> Verdict | None:
        """The caller's request rates, then its token budget, in one step (one round trip to a
        shared store): a call refused by a rate reserves no tokens."""
        buckets = [Bucket(*self.request_limiters[group], f"{who}\x1f{group}") for group in (*groups, EVERYONE)
                   if group in self.request_limiters]
        windows = {}
        for window, field_name in (("minute", "tokens_per_minute"), ("day", "tokens_per_day")):
            values = [getattr(limit, field_name) for limit in limits]
            if None not in values:
                windows[window] = max(values)  # the most generous of the caller's groups
        outcome = self.limits.admit(buckets, who, call.estimated_tokens(), windows)
        if outcome.wait > 0 and outcome.limit == "rate":
            return _refuse(429, "requests_per_minute", "Too many requests", outcome.wait)
        if outcome.wait > 0:
            return _refuse(429, "token_budget", "Token budget exceeded", outcome.wait)
        return self._store_failed(outcome, notes)

    def _store_failed(self, outcome: Outcome, notes: list[str]) -> Verdict | None:
        """The state store failed: closed refuses the call (the layer's error_status); open and
        local let it on, noted in the verdict's reasons."""
        if outcome.fallback == "closed":
            return _refuse(self.settings.error_status, "state_unavailable", "Service unavailable")
        if outcome.fallback:
            notes.append(f"ai:state_unavailable={outcome.fallback}")
        return None

    # -- response: count what the call really used ------------------------------------------------

    def response_wanted(self, request: Request, status: str, headers: Headers) -> bool:
        return request.kept(IN_FLIGHT) is not None

    def watch_state(self, request: Request) -> dict | None:
        flight = request.kept(IN_FLIGHT)
        if flight is None:
            return None
        return {"who": flight.who, "estimated": flight.estimated, "model": flight.model, "api": flight.api,
                "stream": flight.streamed, "started": flight.started}

    def resume_watch(self, request: Request, state: dict) -> None:
        # Envoy carries numbers as doubles: the token estimate comes back as a float.
        request.keep(IN_FLIGHT, CallInFlight(str(state["who"]), int(state["estimated"]), str(state["model"]),
                                             str(state["api"]), bool(state["stream"]), float(state["started"])))

    def on_response_chunk(self, request: Request, headers: Headers, chunk: bytes, end_of_stream: bool) -> None:
        flight = request.kept(IN_FLIGHT)
        if flight is None or flight.counted:
            return  # counted when the declared length arrived; Envoy's end of stream came after
        content_type = next((v for k, v in headers if k == "content-type"), "").lower()
        flight.received += len(chunk)
        # Envoy 1.40 sometimes passes the last bytes of a content-length answer without an end of
        # stream, and none after (seen about once in 30 answers): the length says it is whole.
        whole = end_of_stream or _reached_length(headers, flight.received)
        if content_type.startswith("text/event-stream"):
            # Read as it goes by, in bounded memory: the usage event comes last, however long the stream.
            flight.stream = flight.stream or StreamUsage()
            flight.stream.feed(chunk, whole)
        elif flight.kept < MAX_ANSWER_BYTES:
            flight.parts.append(chunk)
            flight.kept += len(chunk)  # a running total: summing the parts on every chunk was quadratic
        if whole:
            flight.counted = True
            self._count_usage(request, flight, content_type)

    def _count_usage(self, request: Request, flight: CallInFlight, content_type: str) -> None:
        if flight.stream is not None:
            used = flight.stream.total
        else:
            used = tokens_used(b"".join(flight.parts), content_type)
        # No usage in the answer: the estimate reserved before the call stays charged.
        charged = used if used is not None else flight.estimated
        self.limits.correct(flight.who, flight.estimated, charged)
        if self.audit is not None:
            self.audit.write({"request_id": request.request_id, "kind": "llm_usage", "identity": flight.who,
                              "model": flight.model, "api": flight.api, "estimated_tokens": flight.estimated,
                              "tokens": used, "charged_tokens": charged, "stream": flight.streamed,
                              "latency_us": round((time.perf_counter() - flight.started) * 1e6, 1)})

    # -- audit ----------------------------------------------------------------------------

    def _audit(self, request: Request, call: LlmCall, who: str, groups, scores, refusal, started: float) -> None:
        if self.audit is None:
            return
        self._write(request, who, groups, refusal, started, {
            "api": call.api, "model": call.model, "stream": call.stream, "prompt_chars": call.prompt_chars,
            "estimated_tokens": call.estimated_tokens(), "scores": scores})

    def _audit_unread(self, request: Request, api: str, who: str, groups, refusal, started: float,
                      reason: str = "") -> None:
        """A request the gateway did not read as a call: no model, no tokens, no scores."""
        if self.audit is not None:
            self._write(request, who, groups, refusal, started, {"api": api}, reason)

    def _write(self, request: Request, who: str, groups, refusal, started: float, call_fields: dict,
               reason: str = "") -> None:
        if self.audit is None:  # not auditing
            return
        self.audit.write({
            "request_id": request.request_id, "kind": "llm_call", "identity": who, "groups": sorted(groups),
            **call_fields, "decision": "deny" if refusal else "allow",
            "reason": refusal.reasons[0].removeprefix("ai:") if refusal else reason,
            "latency_us": round((time.perf_counter() - started) * 1e6, 1),
        })


def _refuse(status: int, reason: str, message: str, wait: float = 0.0, score: int | None = None) -> Verdict:
    body = orjson.dumps({"error": {"type": "policy_error", "message": message}})
    headers = (("retry-after", str(max(1, round(wait)))),) if wait else ()
    reasons = (f"ai:{reason}",) + ((f"ai:injection_score={score}",) if score is not None else ())
    return Verdict("ai_gateway", Action.DENY, status, reasons=reasons, reply=Reply(body, headers=headers))


def _reached_length(headers, received: int) -> bool:
    declared = next((v for k, v in headers if k == "content-length"), "")
    return declared.isdigit() and received >= int(declared)


def shared_budgets() -> TokenBudgets:
    return DURABLE.get("ai_budgets", (), TokenBudgets, size=len)


def _limiter(route: str, group: str, per_minute: int) -> RateLimiter:
    return DURABLE.get("rate_limiters", ("ai_gateway", route, group, per_minute), lambda: RateLimiter(per_minute, 60.0),
                       size=len)


SPEC = LayerSpec(name=AiGatewayLayer.name, settings=AiSettings, build=AiGatewayLayer, upstream_headers=frozenset())


def _arguments_document(arguments: list[str]) -> bytes:
    """The tool calls' arguments as the tools read them: each JSON text parsed, so that its leaves
    are scored as the values they are (not one JSON text whose braces and quotes look like an
    injection); one that does not parse stays a string, scored whole."""
    parsed: list[object] = []
    for text in arguments:
        try:
            parsed.append(orjson.loads(text))
        except orjson.JSONDecodeError:
            parsed.append(text)
    try:
        return orjson.dumps(parsed)
    except (TypeError, orjson.JSONEncodeError):  # deeper than orjson writes: the texts as they came
        return orjson.dumps(arguments)
