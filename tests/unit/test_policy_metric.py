"""`extproc_policy_loaded_timestamp_seconds{digest}` names the policy that serves: a reload that
succeeds replaces the digest (it kept the first one for the life of the process), one that fails
leaves it."""
from __future__ import annotations

from extproc.config.compile import parse_policy
from extproc.config.store import PolicyStore
from extproc.observability.metrics import Metrics
from extproc.wire.server import _count_reload

FIRST = "version: 1\nroutes: [{name: a, match: {path_prefix: /a}}]\n"
SECOND = "version: 1\nroutes: [{name: b, match: {path_prefix: /b}}]\n"


def digests(metrics: Metrics) -> set[str]:
    return {sample.labels["digest"] for family in metrics.registry.collect()
            if family.name == "extproc_policy_loaded_timestamp_seconds" for sample in family.samples}


def test_the_gauge_follows_the_serving_policy_across_reloads():
    metrics, first = Metrics(), parse_policy(FIRST)
    metrics.policy_loaded(first.digest)
    store = PolicyStore(first)
    count = _count_reload(metrics, store)
    store.current = parse_policy(SECOND)
    count("error")  # a failed reload: the first policy still serves, as far as the gauge knows
    assert digests(metrics) == {first.digest[:12]}
    count("ok")
    assert digests(metrics) == {store.current.digest[:12]}
    assert metrics.registry.get_sample_value("extproc_config_reloads_total", {"result": "ok"}) == 1
