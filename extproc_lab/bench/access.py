"""Access layer speed: identity verification and policy per request, with a no-layer baseline.

    python -m extproc_lab.bench.access [--n 2000]

Tokens are minted before timing. "cached" sends the same token again (the common case: a
client's session), "first seen" a different token every request, so each one is parsed and its
signature verified. Keys are generated here (RSA 2048, EC P-256, Ed25519).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from extproc.config.compile import parse_policy
from extproc.layers.base import Context
from extproc.core.transaction import Transaction
from extproc.core.request import Request
from extproc_lab.bench import timing
from extproc_lab.keys import claims, jwks, new_key

ISSUER = "https://idp.bench.example"


def policy_for(jwks_file: Path):
    return parse_policy(f"""
version: 1
access:
  idps:
    corp: {{issuer: {ISSUER}, audience: app, jwks: {{file: {jwks_file}}}, algorithms: [RS256, ES256, EdDSA],
           email_domains: [corp.example, contractors.example]}}
  apps:
    - name: app
      routes: [app]
      policies:
        - {{name: deny-contractors, action: deny, include: [{{email_domain: [contractors.example]}}]}}
        - {{name: staff, include: [{{group: [staff, admins]}}], exclude: [{{group: [suspended]}}]}}
defaults: {{layers: {{access: {{}}}}}}
routes: [{{name: app, match: {{}}}}]
""", "bench")


def request_with(token: str) -> Request:
    return Request("GET", "/app", headers=(("authorization", f"Bearer {token}"), ("user-agent", "bench")),
                   source_ip="198.51.100.7")


def time_layer(layer, tokens: list[str]) -> list[float]:
    context, samples = Context("bench", 0), []
    for token in tokens:
        request = request_with(token)
        start = time.thread_time_ns()
        verdict = layer.evaluate(request, context)
        samples.append((time.thread_time_ns() - start) / 1000)
        assert verdict.action.value == "allow"
    return samples


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    keys = {"RS256": new_key("rsa", "r"), "ES256": new_key("ec", "e"), "EdDSA": new_key("ed", "d")}
    with tempfile.TemporaryDirectory() as tmp:
        jwks_file = Path(tmp) / "jwks.json"
        jwks_file.write_text(json.dumps(jwks(*keys.values())))
        policy = policy_for(jwks_file)
    layer = policy.default.slots[0].layer if not policy.routes else policy.routes[0].slots[0].layer
    baseline = parse_policy("version: 1\n")
    minted = {alg: [key.token(claims(ISSUER, "app", email=f"user{n}@corp.example", ttl=3600))
                    for n in range(args.n)] for alg, key in keys.items()}
    time_layer(layer, minted["RS256"][:200])  # warm-up
    rows = {"baseline: transaction, no layers": [], "access, cached token (RS256)": []}
    for token in minted["RS256"]:
        start = time.thread_time_ns()
        Transaction(baseline, request_with(token)).on_headers()
        rows["baseline: transaction, no layers"].append((time.thread_time_ns() - start) / 1000)
    rows["access, cached token (RS256)"] = time_layer(layer, [minted["RS256"][0]] * args.n)
    for algorithm, tokens in minted.items():
        layer.directory.verifier.cache.clear()
        rows[f"access, first-seen {algorithm} token"] = time_layer(layer, tokens)
    print(f"{args.n} requests per row, CPU time per request (one core)")
    timing.print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
