"""Custom and threat-intel rules: virtual patches deployed in minutes, without a restart.

Each rule has declarative conditions (``match``), a CEL expression (``expr``), or both, and an
index (``when``: methods, hosts, path prefixes, headers present) that keeps hundreds of rules
cheap. Actions: deny (with a status), log, tag, skip named layers for this request, or set
headers upstream. ``mode: shadow`` rules never act: their would-be hits are recorded per rule, so
a rule is promoted with evidence. Expired rules are ignored. Rules come from the policy and from
signed bundles (``feeds``) that replace each other whole when a new one verifies.

``late_rules`` is the same layer placed after the scoring layers, where expressions can read
``scores`` and ``labels``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar

from extproc.core.durable import DURABLE
from extproc.rules.bundle import Feed, FeedSettings
from extproc.rules.model import RuleDocument
from extproc.rules.ruleset import CompiledRule, Hits, RuleSet
from extproc.layers.base import JUDGES_ONLY, Capabilities, Context, Inheritance, LayerSettings, LayerSpec, RouteContext
from extproc.core.request import Request
from extproc.core.verdict import Action, Verdict

log = logging.getLogger(__name__)
TAGS_HEADER = "x-extproc-tags"
RULES_HEADER = "x-extproc-rules"


class RulesSettings(LayerSettings, RuleDocument):
    # A route's rules merge with the inherited ones by id (``remove`` drops some); its lists and
    # signature sets replace inherited ones of the same name whole; its feeds add to theirs.
    inherit: ClassVar[Inheritance] = Inheritance(by_id=("rules", "id"), whole=frozenset({"lists", "signatures"}),
                                                 accumulate=frozenset({"feeds"}))
    feeds: list[FeedSettings] = []


def shared_feed(settings: FeedSettings, base_dir: Path) -> Feed:
    """One per feed settings, kept across policy reloads (with its last good bundles) for as long
    as a policy uses it: the old policy holds it while the new one is built."""
    return DURABLE.get("feeds", (settings.model_dump_json(), str(base_dir)),
                       lambda: Feed(settings, base_dir, on_event=_count_feed_event), weak=True)


def _count_feed_event(event: str, name: str, detail: str) -> None:
    feed_events[event] = feed_events.get(event, 0) + 1


feed_events: dict[str, int] = {}  # loaded / rejected, for metrics


class RulesLayer:
    name: ClassVar[str] = "rules"
    capabilities: ClassVar[Capabilities] = JUDGES_ONLY

    def __init__(self, settings: RulesSettings, route: RouteContext) -> None:
        base_dir = Path(route.policy_dir)
        self.static = RuleSet(settings, base_dir)
        self.feeds = tuple(shared_feed(feed, base_dir) for feed in settings.feeds)
        # Feed bundles change while serving, so with feeds the layer waits for the body.
        self.needs_body = self.static.reads_body or bool(self.feeds)

    def describe(self) -> list[str]:
        """The effective rules in the order they run, and the named sets and feeds they use."""
        static = self.static
        rules = ", ".join(f"{rule.id} (shadow)" if rule.shadow else rule.id for rule in static.rules) or "none"
        lines = [f"{self.name}: {rules}"]
        if static.lists or static.sets:
            lines.append(f"{self.name} lists: {', '.join(static.lists) or 'none'}; "
                         f"signatures: {', '.join(static.sets) or 'none'}")
        if self.feeds:
            lines.append(f"{self.name} feeds: {len(self.feeds)} (their rules change while serving)")
        return lines

    def rulesets(self) -> tuple[RuleSet, ...]:
        return (self.static, *(ruleset for feed in self.feeds for ruleset in feed.rulesets))

    def evaluate(self, request: Request, context: Context) -> Verdict:
        hits = Hits()
        for ruleset in self.rulesets():
            found = ruleset.evaluate(request, context.route, context.verdicts)
            hits.matched += found.matched
            hits.shadow += found.shadow
            hits.errors += found.errors
            if any(rule.action == "deny" for rule in found.matched):
                break
        if hits.errors:
            log.warning("rule evaluation failed", extra={"request_id": request.request_id, "rules": hits.errors})
        return _verdict(self.name, hits)


class LateRulesLayer(RulesLayer):
    """The same rules after every other layer, reading their verdicts (``verdicts.attack.score``)."""

    name: ClassVar[str] = "late_rules"
    capabilities: ClassVar[Capabilities] = Capabilities(reads_verdicts=True)


def _verdict(layer: str, hits: Hits) -> Verdict:
    matched = hits.matched
    reasons = tuple(f"rule:{rule.id}" for rule in matched) + tuple(f"rule-shadow:{rule.id}" for rule in hits.shadow)
    if not matched:
        return Verdict(layer, Action.LOG if reasons else Action.ALLOW, reasons=reasons)
    denial = next((rule for rule in matched if rule.action == "deny"), None)
    return Verdict(
        layer,
        Action.DENY if denial else Action.LOG,
        denial.status if denial else 403,
        reasons=reasons,
        labels=tuple(dict.fromkeys(tag for rule in matched for tag in rule.tags)),
        upstream_headers=_headers(matched),  # kept in observe mode, where a deny lets it pass
        skip_layers=tuple(dict.fromkeys(layer for rule in matched if rule.action == "skip" for layer in rule.skip)),
    )


def _headers(matched: list[CompiledRule]) -> tuple[tuple[str, str], ...]:
    headers: dict[str, str] = {}
    tagging = [rule for rule in matched if rule.action == "tag"]
    if tagging:
        headers[RULES_HEADER] = ",".join(rule.id for rule in tagging)
        tags = ",".join(dict.fromkeys(tag for rule in tagging for tag in rule.tags))
        if tags:
            headers[TAGS_HEADER] = tags
    for rule in matched:
        if rule.action == "set_headers":
            headers.update(rule.headers)
    return tuple(headers.items())


SPEC = LayerSpec(name=RulesLayer.name, settings=RulesSettings, build=RulesLayer,
                 upstream_headers=frozenset({TAGS_HEADER, RULES_HEADER}))
LATE_SPEC = LayerSpec(name=LateRulesLayer.name, settings=RulesSettings, build=LateRulesLayer,
                      upstream_headers=frozenset())
