"""``extproc learn RECORDS.jsonl``: propose an OpenAPI document from traffic, or diff it with one.

Requests the other layers deny are left out: with ``--config`` the policy's layers (except
api_shield) run over every record first; records that carry ``"action": "deny"`` (from
``extproc score`` or an audit export) are skipped too.
"""
from __future__ import annotations

import json
import sys

import yaml

from extproc.api_shield.learn import Learner, diff, propose
from extproc.core.records import iter_records, request_from_record


def run(path: str, config: str | None, base_path: str, diff_spec: str | None, out: str | None) -> int:
    from extproc.config.compile import load_policy_or_report

    policy = None
    if config:
        policy = load_policy_or_report(config)
        if policy is None:
            return 2
        layers = {slot.name for route in (*policy.routes, policy.default) for slot in route.slots}
        policy = policy.only_layers(layers - {"api_shield"})
    learner, kept, skipped = Learner(base_path.rstrip("/")), 0, 0
    try:
        for _number, record in iter_records(path):
            if isinstance(record, Exception) or record.get("action") == "deny" or _denied(policy, record):
                skipped += 1
                continue
            request, body = request_from_record(record)
            request.attach_body(body)
            learner.add(request)
            kept += 1
    except OSError as exc:
        print(f"{path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    endpoints = learner.build()
    print(f"{kept} requests learned from, {skipped} skipped (denied or unreadable); {len(endpoints)} operations",
          file=sys.stderr)
    if diff_spec:
        return _print_diff(endpoints, diff_spec)
    text = yaml.safe_dump(propose(endpoints, base_path=base_path), sort_keys=False, allow_unicode=True)
    if out:
        with open(out, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _denied(policy, record: dict) -> bool:
    if policy is None:
        return False
    from extproc.core.transaction import Transaction

    request, body = request_from_record(record)
    transaction = Transaction(policy, request)
    decision = transaction.on_headers() or transaction.on_body(body)
    return not decision.allowed


def _print_diff(endpoints, spec_path: str) -> int:
    from extproc.api_shield.operations import compile_spec
    from extproc.api_shield.spec import SpecError, load_spec

    try:
        spec = compile_spec(load_spec(spec_path))
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(json.dumps(diff(endpoints, spec), indent=2))
    return 0
