"""The layer registry: every layer type, in the order a route runs them (cheap ones first)."""
from __future__ import annotations

from extproc.layers import access, ai_gateway, api_shield, attack, bot, mcp, rules
from extproc.layers.base import Context, Layer, LayerSettings, LayerSpec

REGISTRY: dict[str, LayerSpec] = {spec.name: spec for spec in (rules.SPEC, access.SPEC, api_shield.SPEC, bot.SPEC, attack.SPEC, mcp.SPEC, ai_gateway.SPEC, rules.LATE_SPEC)}

# Every header any layer may set upstream; client copies are stripped from every request.
OWNED_HEADERS: frozenset[str] = frozenset().union(*(spec.upstream_headers for spec in REGISTRY.values()))
OWNED_PREFIX = "x-extproc-"

__all__ = ["REGISTRY", "OWNED_HEADERS", "OWNED_PREFIX", "Context", "Layer", "LayerSettings", "LayerSpec"]
