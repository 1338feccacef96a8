"""Bot management: every request gets a bot score 1-99 (1 = automated, 99 = human) and a class.

Classes: ``human``, ``automation`` (a tool, a library, a headless or driven browser),
``verified-crawler`` (a search crawler from its operator's published ranges), ``ai-crawler``,
and ``spoofed`` (a browser or crawler it is not). A published crawler's claim is settled by its
address; hard evidence no genuine browser produces settles a request whatever the model says;
everything else is the model's score over the request and its client's behaviour so far.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path
from typing import ClassVar, Final, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from extproc.bot import evidence
from extproc.bot.behaviour import ClientTracker
from extproc.bot.challenge import PROBE_HEADER, Challenge, ChallengeSettings, ProbeOutcome
from extproc.bot.crawlers import (
    AI,
    SPOOFED,
    VERIFIED,
    Catalogue,
    RangesError,
    load_catalogue,
)
from extproc.bot.features import DEFAULT_CLIENT_KEY, FEATURE_NAMES, Facts, Featurizer, client_key
from extproc.bot.model import DEFAULT_THRESHOLD, ModelError, load_model
from extproc.bot.navigation import is_navigation
from extproc.core.durable import DURABLE
from extproc.layers.base import JUDGES_ONLY, Capabilities, Context, LayerSettings, LayerSpec, RouteContext
from extproc.core.modelfiles import validated_model_path
from extproc.core.request import Request
from extproc.core.verdict import Action, Reply, Verdict
from extproc.state.behaviour import SharedTracker
from extproc.state.settings import StateSettings
from extproc.state.shared import StoreUnavailable, layer_state

log = logging.getLogger(__name__)

SCORE_HEADER, CLASS_HEADER = "x-bot-score", "x-bot-class"
HUMAN: Final = "human"
AUTOMATION: Final = "automation"
VERIFIED_CRAWLER: Final = "verified-crawler"
AI_CRAWLER: Final = "ai-crawler"
SPOOFED_CLASS: Final = "spoofed"
ClassName = Literal["human", "automation", "verified-crawler", "ai-crawler", "spoofed"]
ActionName = Literal["allow", "tag", "log", "deny", "challenge"]
KEY_PART = r"^(ip|ja3|ja4|user-agent|header:[a-z0-9-]+|cookie:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$"
ACTIONS = {"deny": Action.DENY, "log": Action.LOG, "tag": Action.ALLOW, "allow": Action.ALLOW, "challenge": Action.DENY}
CHALLENGE: Final = "challenge"
SCORE_TEXT = tuple(str(score) for score in range(100))  # header values, formatted once


class BotSettings(LayerSettings):
    threshold: int = Field(default=DEFAULT_THRESHOLD, ge=1, le=99)  # at or below: automated
    action: ActionName = "deny"  # for automated requests whose class has no action of its own
    classes: dict[ClassName, ActionName] = {VERIFIED_CRAWLER: "allow"}
    trust_unverifiable_crawlers: bool = False  # search crawlers that publish no ranges (Yandex, Baidu)
    client_key: list[str] = Field(default=list(DEFAULT_CLIENT_KEY), min_length=1)
    max_clients: int = Field(default=50_000, ge=1, le=10_000_000)  # per worker; least recently seen go first
    client_ttl_s: float = Field(default=1800.0, gt=0, le=86_400)
    crawler_ranges: str | None = None  # default: deploy/bot/crawler-ranges.json
    ranges_refresh_s: float = Field(default=60.0, gt=0)  # how often the ranges file is checked for changes
    forward_scores: bool = True  # x-bot-score and x-bot-class upstream
    model: str | None = None  # default: models/bot.onnx
    challenge: ChallengeSettings | None = None  # the keys and terms of the `challenge` action
    state: StateSettings = StateSettings()  # where client behaviour is summarised (docs/state.md)

    @field_validator("client_key")
    @classmethod
    def _key_parts(cls, parts: list[str]) -> list[str]:
        bad = [p for p in parts if not re.match(KEY_PART, p)]
        if bad:
            raise ValueError(f"unknown client key part(s) {bad}: use ip, ja3, ja4, user-agent, header:NAME, cookie:NAME")
        return parts

    @model_validator(mode="after")
    def _challenge_configured(self) -> "BotSettings":
        if self.classes.get(VERIFIED_CRAWLER) == CHALLENGE:
            raise ValueError("verified crawlers cannot run a challenge page: give them another action")
        if self.challenge is None and CHALLENGE in (self.action, *self.classes.values()):
            raise ValueError("the challenge action needs a `challenge` section with its key")
        return self

    @field_validator("model")
    @classmethod
    def _loadable(cls, path: str | None) -> str | None:
        return validated_model_path(path, load_model, ModelError)

    @field_validator("crawler_ranges")
    @classmethod
    def _ranges(cls, path: str | None) -> str | None:
        try:
            load_catalogue(path)
        except RangesError as exc:
            raise ValueError(str(exc)) from None
        return path


class RefreshingCatalogue:
    """The crawler ranges, re-read when the file changes (checked at most every interval).

    The check and the re-read run in a thread of their own: parsing the file takes milliseconds,
    which the request that happened to come at the interval would otherwise pay."""

    def __init__(self, path: str | None, interval_s: float) -> None:
        self.path = Path(path) if path else None
        self.interval_s = interval_s
        self.current: Catalogue = load_catalogue(path)
        self._stamp = self._mtime()
        self._checked = time.monotonic()
        self.refresher: threading.Thread | None = None  # the last check started (tests join it)

    def get(self) -> Catalogue:
        now = time.monotonic()
        if now - self._checked >= self.interval_s and not (self.refresher and self.refresher.is_alive()):
            self._checked = now
            self.refresher = threading.Thread(target=self._refresh, name="crawler-ranges", daemon=True)
            self.refresher.start()
        return self.current

    def _refresh(self) -> None:
        stamp = self._mtime()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self.current = load_catalogue(self.path)
        except RangesError as exc:  # keep the ranges we have; say why the new ones are ignored
            log.error("crawler ranges not refreshed: %s", exc)

    def _mtime(self) -> int:
        from extproc.bot.crawlers import DEFAULT_RANGES

        try:
            return (self.path or DEFAULT_RANGES).stat().st_mtime_ns
        except OSError:
            return -1


def shared_tracker(max_clients: int, ttl_s: float, key: tuple[str, ...]) -> ClientTracker:
    """One per worker and settings, kept across policy reloads: a reload must not forget clients."""
    return DURABLE.get("bot_clients", (max_clients, ttl_s, key), lambda: ClientTracker(max_clients, ttl_s), size=len)


class BotLayer:
    name: ClassVar[str] = "bot"
    needs_body = False
    capabilities: ClassVar[Capabilities] = JUDGES_ONLY

    def __init__(self, settings: BotSettings, route: RouteContext) -> None:
        self.settings = settings
        self.model = load_model(settings.model)
        self.catalogue = RefreshingCatalogue(settings.crawler_ranges, settings.ranges_refresh_s)
        key = tuple(settings.client_key)
        tracker = SharedTracker(layer_state(settings.state, self.name),
                                shared_tracker(settings.max_clients, settings.client_ttl_s, key))
        self.featurizer = Featurizer(self.catalogue.current, tracker, key)
        self.challenge = Challenge(settings.challenge) if settings.challenge is not None else None
        self._warm_up()

    def _warm_up(self) -> None:
        """Pay the one-off costs (user-agent matcher, ONNX session) now, not on the first request."""
        from extproc.bot.useragent import parse_agent

        parse_agent(f"Mozilla/5.0 (X11; Linux x86_64) warm-up {id(self)}")
        self.model.probability(np.zeros((1, len(FEATURE_NAMES)), dtype=np.float32))

    def evaluate(self, request: Request, context: Context) -> Verdict:
        self.featurizer.catalogue = self.catalogue.get()
        try:
            if self.challenge is not None:
                return self._evaluate_with_challenge(request, self.challenge)
            facts = self.featurizer.facts(request)
        except StoreUnavailable:  # state on_error closed: no score without the shared behaviour
            return Verdict(self.name, Action.DENY, self.settings.error_status, reasons=("bot:state_unavailable=closed",))
        score = self.model.score(self.model.probability(facts.vector))
        bot_class, score, why = self.classify(facts, score)
        return self._verdict(bot_class, score, _noted(facts, why))

    def _evaluate_with_challenge(self, request: Request, challenge: Challenge) -> Verdict:
        """As evaluate(), with the clearance read first and navigations challenged where the
        class's action, or the score band, says so; the page's report is answered here."""
        first = dict(reversed(request.headers))
        client = client_key(request, self.featurizer.key_parts, first)
        now = time.time()
        if request.method == "POST" and PROBE_HEADER in first:
            return self._probe_verdict(challenge.answer(first, client, request.request_id, request.scheme == "https", now))
        facts = self.featurizer.facts(request, first, client)
        score = self.model.score(self.model.probability(facts.vector))
        cleared = challenge.cleared(request.headers, first, client, now)
        if cleared:
            score = max(score, challenge.settings.cleared_score)
        bot_class, score, why = self.classify(facts, score, cleared)
        why = _noted(facts, why)
        action = self._action(bot_class)
        banded = bot_class == HUMAN and score <= challenge.settings.score_at_or_below
        if action == CHALLENGE or banded:
            if not cleared and is_navigation(request.method, first):
                return self._challenge_verdict(bot_class, score, why, challenge.page(first, client, request.request_id))
            action = challenge.settings.fallback if action == CHALLENGE else action
        return self._verdict(bot_class, score, why, action)

    def classify(self, facts: Facts, score: int, cleared: bool = False) -> tuple[ClassName, int, tuple[str, ...]]:
        """(class, score, reasons): claims and hard evidence settle it before the model's score.
        A clearance settles what spoofing evidence claims: the page's script saw the same user agent
        and client hints as the headers, from inside a browser engine."""
        claim = facts.claim
        if claim is not None:
            crawler = f"bot:crawler={claim.operator}:{claim.status}"
            if claim.status == SPOOFED:
                return SPOOFED_CLASS, 1, (crawler,)
            capped = min(score, self.settings.threshold)  # automated by its own word
            if claim.category == AI:
                return AI_CRAWLER, capped, (crawler,)
            trusted = claim.status == VERIFIED or self.settings.trust_unverifiable_crawlers
            return (VERIFIED_CRAWLER if trusted else AUTOMATION), capped, (crawler,)
        proof = evidence.found(facts.vector, evidence.AUTOMATION)
        if proof:
            return AUTOMATION, 1, (f"bot:evidence={proof}",)
        proof = None if cleared else evidence.found(facts.vector, evidence.SPOOFING)
        if proof:
            return SPOOFED_CLASS, 1, (f"bot:evidence={proof}",)
        if score > self.settings.threshold:
            return HUMAN, score, ()
        return (SPOOFED_CLASS if facts.agent.kind == "browser" else AUTOMATION), score, ()

    def _action(self, bot_class: ClassName) -> ActionName:
        automated = bot_class != HUMAN
        return self.settings.classes.get(bot_class) or (self.settings.action if automated else "allow")

    def _verdict(self, bot_class: ClassName, score: int, why: tuple[str, ...],
                 action: ActionName | None = None) -> Verdict:
        action = action or self._action(bot_class)
        headers = ((SCORE_HEADER, SCORE_TEXT[score]), (CLASS_HEADER, bot_class))
        forward = self.settings.forward_scores or action == "tag"
        reasons = (f"bot:class={bot_class}", f"bot:score={score}", *why) if action != "allow" else ()
        return Verdict(
            self.name,
            ACTIONS[action],
            403,
            reasons=reasons,
            scores={"bot": score},
            labels=(bot_class,),
            upstream_headers=headers if forward else (),
        )

    def _challenge_verdict(self, bot_class: ClassName, score: int, why: tuple[str, ...], page: Reply) -> Verdict:
        """The interstitial instead of the page (in observe mode: a would-be challenge, recorded)."""
        reasons = (f"bot:class={bot_class}", f"bot:score={score}", *why, "bot:challenge=issued")
        return Verdict(self.name, Action.DENY, 403, reasons=reasons, scores={"bot": score}, labels=(bot_class,),
                       reply=page)

    def _probe_verdict(self, outcome: ProbeOutcome) -> Verdict:
        """The sidecar's own answer to the page's report: a clearance, or a 403. A failed report is
        the browser's automation showing: class automation, with what showed it."""
        if outcome.passed:
            return Verdict(self.name, Action.DENY, 200, reasons=(f"bot:class={HUMAN}", "bot:challenge=passed"),
                           labels=(HUMAN,), reply=outcome.reply)
        reasons = (f"bot:class={AUTOMATION}", "bot:score=1", *(f"bot:challenge=failed:{w}" for w in outcome.why))
        return Verdict(self.name, Action.DENY, 403, reasons=reasons, scores={"bot": 1}, labels=(AUTOMATION,),
                       reply=outcome.reply)


def _noted(facts: Facts, why: tuple[str, ...]) -> tuple[str, ...]:
    """The reasons, saying so when the store failed and this worker's own behaviour was read."""
    return (*why, "bot:state_unavailable=local") if facts.client_source == "local" else why


SPEC = LayerSpec(name=BotLayer.name, settings=BotSettings, build=BotLayer,
                 upstream_headers=frozenset({SCORE_HEADER, CLASS_HEADER}))

