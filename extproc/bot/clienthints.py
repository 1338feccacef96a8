"""Chromium's User-Agent Client Hints, checked against the user-agent they accompany.

Chromium derives the GREASE brand of ``sec-ch-ua`` and the order of its brands from its major
version (the "updated" GREASE scheme, on by default since well before the oldest version in use
today). A branded build (Chrome, Edge, Brave...) sends three brands; a build without a vendor
brand (the Chromium of Linux distributions) sends two, GREASE and Chromium, e.g. Debian's
Chromium 156: ``"Not:A-Brand";v="8", "Chromium";v="156"``. A genuine build therefore sends exactly
one list per brand and version; spoofing tools that copy or invent the header rarely get it right.
"""
from __future__ import annotations

import re

GREASE_CHARS = " (:-./);=?_"
GREASE_VERSIONS = ("8", "99", "24")
# Positions of (GREASE brand, Chromium, vendor brand) for each permutation seed (major % 6).
ORDERS = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))
ORDERS_UNBRANDED = ((0, 1), (1, 0))  # (GREASE brand, Chromium) for a build without a vendor brand
UPDATED_SCHEME_FROM = 110  # below this only structural checks are made: 0.5 means "cannot tell"
BRAND = re.compile(r'"([^"]*)"\s*;\s*v\s*=\s*"([^"]*)"')
VENDOR_BRANDS = {"Chrome": ("Google Chrome", "Brave", "Chromium"), "Chrome Mobile": ("Google Chrome", "Brave", "Chromium"),
                 "Edge": ("Microsoft Edge",), "Opera": ("Opera",), "Samsung Internet": ("Samsung Internet",)}
PLATFORMS = {"Windows": "windows", "macOS": "mac", "Linux": "linux", "Android": "android",
             "Chrome OS": "chromeos", "Chromium OS": "chromeos", "iOS": "ios"}


def brands(header: str) -> list[tuple[str, str]]:
    return BRAND.findall(header)


def grease_consistent(listed: list[tuple[str, str]]) -> float:
    """1.0 when the list is exactly what a genuine Chromium of that version sends, 0.0 when not."""
    chromium = [int(v) for b, v in listed if b == "Chromium" and v.isdigit()]
    if len(listed) not in (2, 3) or len(chromium) != 1:
        return 0.0
    seed = chromium[0]
    if seed < UPDATED_SCHEME_FROM:
        return 0.5
    orders = ORDERS if len(listed) == 3 else ORDERS_UNBRANDED
    grease_at, chromium_at = orders[seed % len(orders)][:2]
    n = len(GREASE_CHARS)
    grease = f"Not{GREASE_CHARS[seed % n]}A{GREASE_CHARS[(seed + 1) % n]}Brand"
    expected_version = GREASE_VERSIONS[seed % 3]
    ok = listed[grease_at] == (grease, expected_version) and listed[chromium_at][0] == "Chromium"
    return float(ok)


def chromium_version(listed: list[tuple[str, str]]) -> int:
    for brand, version in listed:
        if brand == "Chromium":
            return int(version) if version.isdigit() else -1
    return 0


def vendor_consistent(listed: list[tuple[str, str]], family: str) -> float:
    expected = VENDOR_BRANDS.get(family)
    if expected is None:
        return 0.5
    return float(any(brand in expected for brand, _ in listed))


def platform_name(header: str) -> str:
    return PLATFORMS.get(header.strip().strip('"'), "other")
