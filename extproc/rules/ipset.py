"""IP/CIDR lists of any size (IPv4 and IPv6): merged intervals, one binary search per lookup."""
from __future__ import annotations

import bisect
import ipaddress
import socket
from functools import lru_cache
from pathlib import Path


class IPSet:
    def __init__(self, cidrs: list[str]) -> None:
        spans: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for text in cidrs:
            if text.strip():
                start, end, version = parse_cidr(text.strip())
                spans[version].append((start, end))
        self._starts, self._ends = {}, {}
        for version, intervals in spans.items():
            merged = _merge(sorted(intervals))
            self._starts[version] = [start for start, _ in merged]
            self._ends[version] = [end for _, end in merged]
        self.size = sum(len(v) for v in spans.values())

    def __bool__(self) -> bool:
        return any(self._starts.values())

    def __contains__(self, address: str) -> bool:
        parsed = parse_address(address)
        if parsed is None:
            return False
        value, version = parsed
        index = bisect.bisect_right(self._starts[version], value) - 1
        return index >= 0 and value <= self._ends[version][index]


def parse_cidr(text: str) -> tuple[int, int, int]:
    """(first, last, version) of an address or CIDR; ValueError naming it when invalid. Plain
    socket parsing: a list of a hundred thousand entries loads in a fraction of a second."""
    address, _, length = text.partition("/")
    family, version, bits = (socket.AF_INET6, 6, 128) if ":" in address else (socket.AF_INET, 4, 32)
    try:
        value = int.from_bytes(socket.inet_pton(family, address), "big")
        prefix = int(length) if length else bits
    except (OSError, ValueError):
        raise ValueError(f"invalid address or CIDR {text!r}") from None
    if not 0 <= prefix <= bits:
        raise ValueError(f"invalid prefix length in {text!r}")
    host_bits = bits - prefix
    start = value >> host_bits << host_bits
    return start, start | ((1 << host_bits) - 1), version


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in intervals:
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


@lru_cache(maxsize=65536)
def parse_address(text: str) -> tuple[int, int] | None:
    """(integer, version) of an address; IPv4-mapped IPv6 counts as IPv4; None when invalid."""
    try:
        address = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    address = mapped or address
    return int(address), address.version


def read_list(path: str | Path) -> list[str]:
    """One address or CIDR per line; '#' starts a comment."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]
