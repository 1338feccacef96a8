"""Envoy routes for the policy's routes whose response layers only watch answers.

Envoy reads such a route's answers for the sidecar with the answer reader, which never holds
them (extproc/local/envoy.py, ``observe_answers``), so a route must be one of Envoy's to get it.
A policy route that names Envoy's route (``route_name``) gets it on that route; one matched by
``path_prefix`` gets a route of its own, named after it, ahead of the template's routes (its
other conditions stay the sidecar's to check: Envoy's route only has to cover the requests).
Other routes keep their answers watched on the request's own stream, which holds each chunk
until the sidecar has read it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from extproc.config.compile import load_policy
from extproc.core.policy import Policy
from extproc.layers import REGISTRY
from extproc.layers.base import WatchesResponse
from extproc.local import envoy as harness

ANSWER_TIMEOUT = "0s"  # no route timeout: an LLM answer streams for minutes (stream_idle_timeout still applies)


@dataclass(frozen=True)
class Observed:
    routes: tuple[str, ...]  # policy routes whose answers the answer reader reads
    left: tuple[str, ...]  # watching routes Envoy cannot single out: answers still held for them


def observe_watched_routes(config: dict, policy_path: Path) -> Observed:
    document = yaml.safe_load(Path(policy_path).read_text(encoding="utf-8")) or {}
    if not _names_a_watching_layer(document):
        return Observed((), ())  # nothing to compile (a policy loads its models: seconds)
    policy = load_policy(policy_path)
    matches = {route.get("name"): route.get("match") or {} for route in document.get("routes") or []}
    observed, left = [], []
    envoy_routes = {route.get("name") for route in harness.routes(config)}
    added = 0
    for name in watching_only(policy):
        match = matches.get(name, {})
        envoy_route = str(match.get("route_name") or name)
        if envoy_route in envoy_routes:
            _observe_envoy_route(config, envoy_route)
        elif match.get("path_prefix"):
            _add_route(config, added, name, match["path_prefix"], bool(match.get("case_sensitive", False)))
            added += 1
        else:
            left.append(name)
            continue
        observed.append(name)
    return Observed(tuple(observed), tuple(left))


def _names_a_watching_layer(document: dict) -> bool:
    sections = [(document.get("defaults") or {}).get("layers") or {}]
    sections += [route.get("layers") or {} for route in document.get("routes") or []]
    named = {name for section in sections for name in section}
    return any(isinstance(spec.build, type) and issubclass(spec.build, WatchesResponse)
               for name, spec in REGISTRY.items() if name in named)


def watching_only(policy: Policy) -> list[str]:
    """Routes with a layer that watches answers and none that rewrites them."""
    return [route.name for route in (*policy.routes, policy.default)
            if route.watches_response and not route.rewrites_response]


def _observe_envoy_route(config: dict, route_name: str) -> None:
    harness.observe_answers(config, route_name)
    harness.find_route(config, route_name).setdefault("route", {})["timeout"] = ANSWER_TIMEOUT


def _add_route(config: dict, added: int, name: str, prefix: str, case_sensitive: bool) -> None:
    """A route of Envoy's ahead of the template's routes that reach the sidecar, after those added
    before it (in the policy's order: the first match wins in both)."""
    routes = harness.http_connection_manager(config)["route_config"]["virtual_hosts"][0]["routes"]
    first_app_route = next(index for index, route in enumerate(routes) if not _skips_sidecar(route))
    routes.insert(first_app_route + added, {
        "name": name,
        "match": {"prefix": prefix, "case_sensitive": case_sensitive},
        "route": {"cluster": harness.UPSTREAM_CLUSTER, "timeout": ANSWER_TIMEOUT},
    })
    harness.observe_answers(config, name)


def _skips_sidecar(route: dict) -> bool:
    return bool(route.get("typed_per_filter_config", {}).get(harness.EXTPROC_FILTER, {}).get("disabled"))
