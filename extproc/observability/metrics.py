"""Prometheus metrics: decisions, per-layer latency and faults, stream events, reloads, state sizes."""
from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from extproc.core.durable import DURABLE
from extproc.core.verdict import Decision

# Layer latencies are microseconds; buckets from 10 us to 100 ms.
LATENCY_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1)


class Metrics:
    """One registry per process (tests build their own)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # Counted on every request: plain dicts, rendered at scrape time (see Tallies).
        self.tallies = Tallies()
        r.register(self.tallies)
        self.layer_faults = Counter(
            "extproc_layer_faults", "Layer errors, deadline skips and budget overruns", ["layer", "outcome"],
            registry=r,
        )
        self.stream_events = Counter(
            "extproc_stream_events", "Stream-level events: protocol errors, cancels, spurious messages",
            ["event"], registry=r,
        )
        self.reloads = Counter("extproc_config_reloads", "Policy reload attempts by result", ["result"], registry=r)
        # Per rule: a shadow rule's would-be hits are the evidence to promote it with.
        self.rule_hits = Counter("extproc_rule_hits", "Rule matches by rule id and mode (enforce, shadow)",
                                 ["rule", "mode"], registry=r)
        # The bot challenge: pages shown (or, observed, that would have been), reports passed and failed.
        self.bot_challenges = Counter("extproc_bot_challenges", "Bot challenges by route, event (issued, passed, "
                                      "failed) and mode", ["route", "event", "mode"], registry=r)
        self._children: dict = {}
        self.policy_info = Gauge(
            "extproc_policy_loaded_timestamp_seconds", "When the serving policy was loaded", ["digest"], registry=r
        )

    def policy_loaded(self, digest: str) -> None:
        """The serving policy's digest, with when it began to serve; the one before it goes."""
        self.policy_info.clear()
        self.policy_info.labels(digest[:12]).set_to_current_time()

    def watch_state(self, store) -> None:
        """Export the sizes of the per-worker state behind ``store``'s policy, and the models'
        inference times, read at scrape time."""
        self.registry.register(StateSizes(store))
        self.registry.register(ModelInference())
        self.registry.register(StateStoreOperations())

    def record(self, decision: Decision) -> None:
        tallies = self.tallies
        tallies.decisions[(decision.route, "allow" if decision.allowed else "deny")] += 1
        for result in decision.results:
            layer = result.verdict.layer
            tallies.verdicts[(layer, result.verdict.action.value, result.mode.value)] += 1
            tallies.observe(layer, result.elapsed_us / 1e6)
            if result.outcome.value != "ok":
                self.layer_faults.labels(layer, result.outcome.value).inc()
            if layer in ("rules", "late_rules"):
                self._count_rules(result.verdict.reasons)
            elif layer == "bot" and result.verdict.reasons:
                self._count_challenge(decision.route, result)

    def _count_challenge(self, route: str, result) -> None:
        event = challenge_event(result.verdict.reasons)
        if event:
            self.bot_challenges.labels(route, event, result.mode.value).inc()

    def _count_rules(self, reasons: tuple[str, ...]) -> None:
        for reason in reasons:
            kind, _, rule = reason.partition(":")
            if kind in ("rule", "rule-shadow"):
                self.rule_hits.labels(rule, "shadow" if kind == "rule-shadow" else "enforce").inc()


def challenge_event(reasons: tuple[str, ...]) -> str | None:
    """issued, passed or failed, from a bot verdict's reasons ("bot:challenge=failed:webdriver")."""
    for reason in reasons:
        if reason.startswith("bot:challenge="):
            return reason[14:].partition(":")[0]
    return None


class Tallies:
    """The per-request metrics (decisions, layer verdicts, layer latency) as plain counts.

    prometheus_client's Counter and Histogram take a lock per increment, about 10 us per request
    for the dozen updates a decision makes; these are updated from the serving thread only (one
    event loop per worker process) and read at scrape time, where a count read mid-update is at
    worst one request behind.
    """

    def __init__(self) -> None:
        self.decisions: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.verdicts: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        self.latency: dict[str, list] = {}  # layer -> [count per bucket (+Inf last), sum]

    def observe(self, layer: str, seconds: float) -> None:
        histogram = self.latency.get(layer)
        if histogram is None:
            histogram = self.latency[layer] = [[0] * (len(LATENCY_BUCKETS) + 1), 0.0]
        histogram[0][bisect_left(LATENCY_BUCKETS, seconds)] += 1  # le: a value on a bound counts there
        histogram[1] += seconds

    def describe(self):
        return []

    def collect(self):
        decisions = CounterMetricFamily("extproc_decisions", "Final decisions by route and action",
                                        labels=["route", "action"])
        for labels, count in sorted(self.decisions.copy().items()):  # copied: the loop may add keys
            decisions.add_metric(list(labels), count)
        verdicts = CounterMetricFamily("extproc_layer_verdicts", "Layer verdicts by layer, action and mode",
                                       labels=["layer", "action", "mode"])
        for verdict_labels, count in sorted(self.verdicts.copy().items()):
            verdicts.add_metric(list(verdict_labels), count)
        latency = HistogramMetricFamily("extproc_layer_duration_seconds", "Time spent in each layer",
                                        labels=["layer"])
        for layer, (counts, total) in sorted(self.latency.copy().items()):
            latency.add_metric([layer], cumulative_buckets(LATENCY_BUCKETS, counts), sum_value=total)
        yield from (decisions, verdicts, latency)


def cumulative_buckets(bounds: tuple[float, ...], counts: list[int]) -> list[tuple[str, int]]:
    """Per-bucket counts (the last one past every bound) as Prometheus' cumulative le buckets."""
    cumulative, buckets = 0, []
    for bound, count in zip((*bounds, float("inf")), counts):
        cumulative += count
        buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
    return buckets


class ModelInference:
    """``extproc_model_inference_seconds{model}``: time spent in each model's inference, read at
    scrape time from the per-model clocks of extproc.core.modelfiles."""

    def describe(self):
        return []

    def collect(self):
        from extproc.core.modelfiles import INFERENCE_BUCKETS, inference

        family = HistogramMetricFamily("extproc_model_inference_seconds", "Model inference time", labels=["model"])
        for model, clock in sorted(inference.items()):
            family.add_metric([model], cumulative_buckets(INFERENCE_BUCKETS, clock.buckets), sum_value=clock.total)
        yield family


class StateStoreOperations:
    """``extproc_state_store_operations{layer, operation, outcome}``: round trips to the shared
    state store (extproc/state): ok, error (failed or timed out: on_error decided) and skipped
    (the store was known to be down: on_error decided without asking it)."""

    def describe(self):
        return []

    def collect(self):
        from extproc.state.store import OPERATIONS

        family = CounterMetricFamily("extproc_state_store_operations", "Shared state store round trips by outcome",
                                     labels=["layer", "operation", "outcome"])
        for labels, count in sorted(OPERATIONS.copy().items()):
            family.add_metric(list(labels), count)
        yield family


class StateSizes:
    """``extproc_state_entries{state}``: bounded per-worker memories (extproc/core/durable.py), to see them
    fill and evict, and the serving policy's verified-token cache."""

    def __init__(self, store) -> None:
        self.store = store

    def describe(self):
        return []  # sizes change at every scrape; nothing to check at registration

    def collect(self):
        family = GaugeMetricFamily("extproc_state_entries", "Entries in per-worker state, by kind", labels=["state"])
        sizes = DURABLE.sizes()
        for kind in ("bot_clients", "attack_memo"):  # always shown, at 0 before their first use
            sizes.setdefault(kind, 0)
        for kind, entries in sorted(sizes.items()):
            family.add_metric([kind], entries)
        access = self.store.current.access
        family.add_metric(["access_token_cache"], len(access.verifier.cache) if access is not None else 0)
        yield family
