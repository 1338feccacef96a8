"""``extproc learn RECORDS.jsonl``: propose an OpenAPI document from traffic, widen one, or diff with one.

    extproc learn traffic.jsonl [--strictness loose|balanced|strict] --out spec.yaml
    extproc learn new.jsonl --update spec.yaml [--out spec.yaml]   # widen where the traffic needs it
    extproc learn new.jsonl --diff spec.yaml                       # what --update would change (JSON)

Requests the other layers deny are left out: with ``--config`` the policy's layers (except
api_shield) run over every record first; records that carry ``"action": "deny"`` (from
``extproc score`` or a capture) are skipped too, and so are records labelled as attacks, and
captured requests another layer would have denied in observe mode.
"""
from __future__ import annotations

import json
import sys
from typing import Iterator

import yaml

from extproc.api_shield.learn import Learner, propose
from extproc.api_shield.shapes import STRICTNESS
from extproc.core.records import iter_records, request_from_record
from extproc.core.request import Request


def run(path: str, config: str | None, base_path: str, diff_spec: str | None, out: str | None,
        strictness: str = "balanced", update_spec: str | None = None) -> int:
    policy = _policy(config) if config else None
    if config and policy is None:
        return 2
    base_path = base_path.rstrip("/")
    level = STRICTNESS[strictness]
    learner, requests, counts = Learner(base_path), [], [0, 0]  # learned from, skipped
    try:
        for request in _requests(path, policy, counts):
            if diff_spec or update_spec:
                requests.append(request)  # checked against the document, then partly learned
            else:
                learner.add(request)  # only its sample is kept
    except OSError as exc:
        print(f"{path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"{counts[0]} requests learned from, {counts[1]} skipped (denied, attacks or unreadable)", file=sys.stderr)
    if diff_spec or update_spec:
        return _against(diff_spec or update_spec or "", requests, level, base_path, out, diff_only=bool(diff_spec))
    endpoints = learner.build()
    print(f"{len(endpoints)} operations (strictness {strictness})", file=sys.stderr)
    _write(yaml.safe_dump(propose(endpoints, base_path=base_path, strictness=level), sort_keys=False,
                          allow_unicode=True), out)
    return 0


def _policy(config: str):
    from extproc.config.compile import load_policy_or_report

    policy = load_policy_or_report(config)
    if policy is None:
        return None
    layers = {slot.name for route in (*policy.routes, policy.default) for slot in route.slots}
    return policy.only_layers(layers - {"api_shield"})


def _requests(path: str, policy, counts: list[int]) -> Iterator[Request]:
    """The records' requests, bodies attached, but for those left out (counted in counts[1])."""
    for _number, record in iter_records(path):
        if isinstance(record, Exception) or _left_out(record) or _denied(policy, record):
            counts[1] += 1
            continue
        request, body = request_from_record(record)
        request.attach_body(body)
        counts[0] += 1
        yield request


def _left_out(record: dict) -> bool:
    """Denied requests and attacks are not learned from. A capture's would-be denies of API Shield
    itself (run in observe mode to learn what the document lacks) are; those of other layers are not."""
    if record.get("action") == "deny":
        return True
    if isinstance(record.get("would_deny"), list):
        return any(layer != "api_shield" for layer in record["would_deny"])
    return record.get("label") == "attack"


def _denied(policy, record: dict) -> bool:
    if policy is None:
        return False
    from extproc.core.transaction import Transaction

    request, body = request_from_record(record)
    transaction = Transaction(policy, request)
    decision = transaction.on_headers() or transaction.on_body(body)
    return not decision.allowed


def _against(spec_path: str, requests: list[Request], level, base_path: str, out: str | None, diff_only: bool) -> int:
    from extproc.api_shield.spec import SpecError, parse_spec, read_document
    from extproc.api_shield.update import diff, update

    try:
        document = read_document(spec_path)
        parse_spec(document, spec_path)  # a usable document, or the reason it is not
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return 2
    assert isinstance(document, dict)  # parse_spec refuses anything else
    if diff_only:
        print(json.dumps(diff(document, requests, level, base_path), indent=2, ensure_ascii=False))
        return 0
    widened, changes = update(document, requests, level, base_path)
    for change in changes:
        print(_describe(change), file=sys.stderr)
    print(f"{len(changes)} changes", file=sys.stderr)
    _write(yaml.safe_dump(widened, sort_keys=False, allow_unicode=True), out)
    return 0


def _describe(change: dict) -> str:
    text = f"{change['operation']}: {change['where']}: {change['change']}"
    if "before" in change:
        text += f": {json.dumps(change['before'], ensure_ascii=False)} -> {json.dumps(change['after'], ensure_ascii=False)}"
    elif "after" in change:
        text += f": {json.dumps(change['after'], ensure_ascii=False)}"
    return text


def _write(text: str, out: str | None) -> None:
    if out:
        with open(out, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
