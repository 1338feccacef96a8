"""Hard evidence: facts about a request that no genuine browser produces, whatever the model says.

The model generalises from examples; these checks encode how browsers are built, so they hold
for tools and versions no training set has seen. Each one names what it caught.
"""
from __future__ import annotations

from extproc.bot.features import FEATURE_NAMES

_AT = {name: index for index, name in enumerate(FEATURE_NAMES)}

# (reason, feature, value that proves it). Client-hint checks are 0.5 when they cannot tell.
AUTOMATION = (
    ("headless_user_agent", "ua_headless", 1.0),
)
SPOOFING = (
    ("headless_client_hints", "ch_headless", 1.0),  # a browser user-agent over headless Chrome
    ("client_hints_not_genuine", "ch_grease", 0.0),  # no Chromium build of that version sends that list
    ("client_hints_version", "ch_version_matches", 0.0),
    ("client_hints_vendor", "ch_vendor_matches", 0.0),
    ("client_hints_platform", "ch_platform_matches", 0.0),
    ("client_hints_mobile", "ch_mobile_matches", 0.0),
    ("client_hints_without_chromium", "ch_without_chromium", 1.0),
    ("http2_order_of_another_engine", "pseudo_matches_engine", 0.0),
    ("crawler_outside_published_ranges", "claim_spoofed", 1.0),
)


def found(vector, checks) -> str | None:
    """The reason of the first check the vector (float32 [1, features]) proves, else None."""
    row = vector[0]
    for reason, at, proof in _INDEXED[checks]:
        if row[at] == proof:
            return reason
    return None


def any_found(vector) -> bool:
    return found(vector, AUTOMATION) is not None or found(vector, SPOOFING) is not None


_INDEXED = {checks: tuple((reason, _AT[feature], proof) for reason, feature, proof in checks)
            for checks in (AUTOMATION, SPOOFING)}
