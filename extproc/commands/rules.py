"""``extproc rules``: key generation, bundle signing, and testing a bundle against recorded traffic.

    extproc rules keygen --out keys/            # feed.key (private, keep it secret) and feed.pub
    extproc rules sign BUNDLE.yaml --key keys/feed.key
    extproc rules test BUNDLE.yaml RECORDS.jsonl [--key keys/feed.pub] [--json]

``test`` shows which records each rule would hit (shadow rules included) before the bundle ships.
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from extproc.rules.bundle import BundleError, load_bundle, parse_bundle, public_keys, sign_file, write_key_pair
from extproc.core.records import iter_records, request_from_record

EXAMPLES_SHOWN = 5


def add_commands(commands) -> None:
    rules = commands.add_parser("rules", help="threat-intel rule bundles: keygen, sign, test")
    actions = rules.add_subparsers(dest="rules_command", required=True)
    keygen = actions.add_parser("keygen", help="a new Ed25519 key pair for signing bundles")
    keygen.add_argument("--out", required=True, help="directory for feed.key and feed.pub")
    keygen.set_defaults(run=_keygen)
    signer = actions.add_parser("sign", help="write BUNDLE.sig")
    signer.add_argument("bundle")
    signer.add_argument("--key", required=True, help="PEM private key from `rules keygen`")
    signer.set_defaults(run=_sign)
    tester = actions.add_parser("test", help="which records each rule of a bundle hits")
    tester.add_argument("bundle")
    tester.add_argument("records")
    tester.add_argument("--key", help="public key: also verify the bundle's signature")
    tester.add_argument("--json", action="store_true")
    tester.set_defaults(run=_test)


def _keygen(args) -> int:
    secret, public = write_key_pair(Path(args.out), "feed")
    print(f"{secret} (secret) and {public}: put the .pub value in the policy's feeds[].keys")
    return 0


def _sign(args) -> int:
    try:
        signature = sign_file(Path(args.bundle), Path(args.key))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    Path(args.bundle + ".sig").write_bytes(signature)
    print(f"{args.bundle}.sig written")
    return 0


def _test(args) -> int:
    bundle_path = Path(args.bundle)
    try:
        data = bundle_path.read_bytes()
        signature_path = Path(args.bundle + ".sig")
        signature = signature_path.read_bytes() if signature_path.exists() else None
        keys = public_keys([Path(args.key).read_text().strip()]) if args.key else None
        if keys is None:  # no key given: check the rules only; signing is the deploy step's business
            bundle = parse_bundle(data, bundle_path.name, bundle_path.parent)
        else:
            bundle = load_bundle(data, signature, keys, bundle_path.name, bundle_path.parent)
    except (OSError, ValueError, BundleError) as exc:
        print(f"{args.bundle}: {exc}", file=sys.stderr)
        return 2
    hits, total = _replay(bundle.rules, args.records)
    if args.json:
        print(json.dumps({"bundle": bundle.name, "version": bundle.version, "records": total, "rules": hits}, indent=2))
        return 0
    print(f"bundle {bundle.name} {bundle.version}: {total} records")
    for rule in bundle.rules.rules:
        entry = hits.get(rule.id, {"hits": 0, "examples": []})
        mode = "shadow " if rule.shadow else ""
        print(f"  {rule.id:40} {mode}{rule.action:12} {entry['hits']:6} hits  {' '.join(entry['examples'])}")
    return 0


def _replay(ruleset, records: str) -> tuple[dict, int]:
    hits: dict[str, dict] = defaultdict(lambda: {"hits": 0, "examples": []})
    total = 0
    for number, record in iter_records(records):
        if isinstance(record, Exception):
            continue
        total += 1
        request, body = request_from_record(record)
        request.attach_body(body)
        found = ruleset.evaluate(request, "test")
        for rule in found.matched + found.shadow:
            entry = hits[rule.id]
            entry["hits"] += 1
            if len(entry["examples"]) < EXAMPLES_SHOWN:
                entry["examples"].append(str(record.get("id", f"line {number}")))
    return dict(hits), total
