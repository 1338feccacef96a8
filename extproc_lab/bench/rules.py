"""Rules layer speed: 200 rules and a 100,000-entry IP list, with a no-layer baseline.

    python -m extproc_lab.bench.rules [--n 5000]

The rules are what a threat-intel feed ships: most are virtual patches for one endpoint
(indexed by method and path prefix, a CEL expression over headers, arguments or the body), some
apply everywhere (a blocked-address list, scanner signatures in the user-agent). Requests are an
ordinary mix of page views, searches and JSON API calls, some of them on patched endpoints.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from extproc.config.compile import parse_policy
from extproc.core.request import Request
from extproc_lab.bench import timing

SEGMENTS = [f"app{n}" for n in range(60)]


def rules(count: int = 200) -> list[dict]:
    rng, out = random.Random(7), []
    out.append({"id": "blocked-addresses", "expr": 'in_list("blocked", source_ip)', "action": "deny"})
    out.append({"id": "scanners", "expr": 'sig("scanners", user_agent)', "action": "deny"})
    out.append({"id": "watch-admin", "mode": "shadow", "expr": 'path.startsWith("/admin")', "action": "deny"})
    shapes = [
        lambda n, seg: {"when": {"methods": ["POST"], "path_prefixes": [f"/{seg}/api/"]},
                        "expr": f'arg("cmd{n}") != "" && sig("injection", arg("cmd{n}"))'},
        lambda n, seg: {"when": {"methods": ["GET"], "path_prefixes": [f"/{seg}/download"]},
                        "expr": 'rx(query, "(?:^|&)file=[^&]*\\\\.\\\\.")'},
        lambda n, seg: {"when": {"methods": ["POST"], "path_prefixes": [f"/{seg}/upload"], "headers": ["x-debug"]},
                        "expr": f'header("x-debug") == "{n}"'},
        lambda n, seg: {"when": {"methods": ["GET", "POST"], "path_prefixes": [f"/{seg}/v{n % 3}/"]},
                        "expr": f'header("x-api-version") == "0.{n}" && body_size > 100000'},
    ]
    while len(out) < count:
        n = len(out)
        rule = shapes[n % len(shapes)](n, rng.choice(SEGMENTS))
        out.append({"id": f"patch-{n}", "references": [f"CVE-2026-{1000 + n}"], "action": "deny", **rule})
    return out


def blocked_list(path: Path, count: int = 100_000) -> None:
    rng = random.Random(3)
    lines = [f"{rng.randrange(1, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}/{rng.choice([24, 28, 32])}"
             for _ in range(count)]
    path.write_text("\n".join(lines) + "\n")


def requests(n: int) -> list[tuple[Request, bytes]]:
    rng, out = random.Random(11), []
    for _ in range(n):
        seg, ip = rng.choice(SEGMENTS), f"198.51.{rng.randrange(256)}.{rng.randrange(256)}"
        headers = [("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/135.0 Safari/537.36"), ("accept", "*/*")]
        kind = rng.random()
        if kind < 0.5:
            out.append((Request("GET", f"/{seg}/products/{rng.randrange(10**5)}?ref=home", headers=tuple(headers),
                                source_ip=ip), b""))
        elif kind < 0.7:
            out.append((Request("GET", f"/{seg}/download?file=report-{rng.randrange(100)}.pdf", headers=tuple(headers),
                                source_ip=ip), b""))
        else:
            body = json.dumps({"items": [{"sku": f"AB-{i}", "qty": 2} for i in range(rng.randrange(1, 20))]}).encode()
            headers.append(("content-type", "application/x-www-form-urlencoded" if kind < 0.8 else "application/json"))
            body = b"cmd3=ls&q=tent" if kind < 0.8 else body
            out.append((Request("POST", f"/{seg}/api/orders", headers=tuple(headers), source_ip=ip, has_body=True), body))
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        blocked = Path(tmp) / "blocked.txt"
        blocked_list(blocked)
        section = {"rules": rules(), "lists": {"blocked": {"file": str(blocked)}},
                   "signatures": {"scanners": {"literals": ["sqlmap", "nikto", "masscan", "zgrab", "nuclei"]},
                                  "injection": {"regexes": [r"[;&|`]\s*(?:cat|ls|id|curl|wget)\b", r"\$\("]}}}
        started = time.perf_counter()
        policy = parse_policy(json.dumps({"version": 1, "defaults": {"layers": {"rules": section}}}), "bench")
        loaded = time.perf_counter() - started
    layer = policy.default.slots[0].layer
    print(f"{len(layer.static.rules)} rules, {layer.static.lists['blocked'].size} IP list entries "
          f"(policy compiled in {loaded:.2f} s); {args.n} requests per row, CPU time per request (one core)")
    timing.print_layer_against_baseline(lambda: requests(args.n), policy, "rules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
