"""Helpers the tiers share: keys are in extproc_lab.keys (the benchmarks use them too)."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHOP_SPEC = REPO / "tests" / "data" / "shop-openapi.yaml"  # the shop API of the API Shield tests
SHARED_DATA = REPO.parent / "shared" / "data"  # the team's captured traffic, when this checkout has it
