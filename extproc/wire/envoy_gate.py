"""Readiness that requires the pod's Envoy to run our filter (``serve --ready-when-envoy-filter``).

In a mesh the proxy is injected and configured by others: a pod where injection did not happen,
or where the EnvoyFilter is missing or was removed, would serve the app unprotected. With this
gate the sidecar's health service says NOT_SERVING (the pod is not ready, the Service routes
nothing to it) unless the proxy's admin answers and every HTTP connection manager of its inbound
listeners runs ``envoy.filters.http.ext_proc`` on the ``extproc`` cluster, fail closed
(``failure_mode_allow`` not true), before the router. No admin (no injection), an unreadable
answer, or one HTTP chain without the filter: not ready.

Inbound listeners are those whose ``traffic_direction`` is INBOUND (Istio's ``virtualInbound``);
when no listener states a direction (a plain bootstrap), every listener counts.
"""
from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from typing import Awaitable, Callable, Iterator

log = logging.getLogger(__name__)
EXTPROC_FILTER = "envoy.filters.http.ext_proc"
ROUTER_FILTER = "envoy.filters.http.router"
HCM_FILTER = "envoy.filters.network.http_connection_manager"
EXTPROC_CLUSTER = "extproc"
RESOURCES = ("static_listeners", "dynamic_listeners")
TIMEOUT_S = 2.0
MAX_BYTES = 32 << 20  # a mesh proxy's listeners; the dump asked for holds nothing else
PERIOD_S = 5.0


def problem(admin_url: str, timeout: float = TIMEOUT_S, max_bytes: int = MAX_BYTES) -> str | None:
    """Why the Envoy at ``admin_url`` does not run our filter on every inbound HTTP chain, or None."""
    listeners = []
    for resource in RESOURCES:
        try:
            dump = _fetch(f"{admin_url.rstrip('/')}/config_dump?resource={resource}", timeout, max_bytes)
        except (OSError, ValueError) as exc:  # refused, timed out, too big, not JSON
            return f"Envoy admin {admin_url}: {exc}"
        listeners += list(_listeners(dump))
    return listeners_problem(listeners)


def listeners_problem(listeners: list[dict]) -> str | None:
    directed = [listener for listener in listeners if "traffic_direction" in listener]
    inbound = [listener for listener in directed if listener["traffic_direction"] == "INBOUND"] \
        if directed else listeners
    managers = [(listener.get("name", "?"), manager) for listener in inbound for manager in _managers(listener)]
    if not managers:
        return "no inbound HTTP listener"
    for name, manager in managers:
        missing = _filter_problem(manager.get("http_filters", []))
        if missing:
            return f"listener {name}: {missing}"
    return None


def _filter_problem(filters: list[dict]) -> str | None:
    names = [f.get("name") for f in filters]
    if EXTPROC_FILTER not in names:
        return f"no {EXTPROC_FILTER} filter"
    if ROUTER_FILTER in names and names.index(ROUTER_FILTER) < names.index(EXTPROC_FILTER):
        return f"{EXTPROC_FILTER} after the router"
    config = filters[names.index(EXTPROC_FILTER)].get("typed_config", {})
    cluster = config.get("grpc_service", {}).get("envoy_grpc", {}).get("cluster_name")
    if cluster != EXTPROC_CLUSTER:
        return f"{EXTPROC_FILTER} calls {cluster!r}, not {EXTPROC_CLUSTER!r}"
    if config.get("failure_mode_allow") is True:
        return f"{EXTPROC_FILTER} fails open (failure_mode_allow)"
    return None


def _listeners(dump: dict) -> Iterator[dict]:
    for entry in dump.get("configs", []):
        listener = entry.get("listener") or entry.get("active_state", {}).get("listener")
        if isinstance(listener, dict):
            yield listener


def _managers(listener: dict) -> Iterator[dict]:
    chains = list(listener.get("filter_chains", []))
    if "default_filter_chain" in listener:
        chains.append(listener["default_filter_chain"])
    for chain in chains:
        for network_filter in chain.get("filters", []):
            if network_filter.get("name") == HCM_FILTER:
                yield network_filter.get("typed_config", {})


def _fetch(url: str, timeout: float, max_bytes: int) -> dict:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url}")
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - scheme checked above
        body = response.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise ValueError(f"config dump larger than {max_bytes} bytes")
    dump = json.loads(body) if body.strip() else {}
    if not isinstance(dump, dict):
        raise ValueError("config dump is not a JSON object")
    return dump


async def watch(admin_url: str, set_ready: Callable[[bool], Awaitable[object]], period: float = PERIOD_S) -> None:
    """Check now and every ``period`` seconds until cancelled; log each new reason, report each
    change of state."""
    ready: bool | None = None
    last_reason: str | None = ""
    while True:
        try:
            why = await asyncio.to_thread(problem, admin_url)
        except Exception as exc:  # noqa: BLE001 - an odd dump means not ready, never a dead gate
            why = f"unreadable config dump: {exc!r}"
        if why != last_reason:
            if why is None:
                log.info("Envoy runs the ext_proc filter: ready", extra={"admin": admin_url})
            else:
                log.warning("Envoy does not run the ext_proc filter: not ready (%s)", why, extra={"admin": admin_url})
            last_reason = why
        if (why is None) != ready:
            ready = why is None
            await set_ready(ready)
        await asyncio.sleep(period)
