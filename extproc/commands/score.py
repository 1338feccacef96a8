"""``extproc score FILE.jsonl``: run the pipeline in-process over request records.

Writes one JSON line per record to stdout, in input order (records with a ``client`` field
therefore build per-client state in file order). A line that is not a usable record produces
``{"line": N, "error": "..."}`` and a non-zero exit status, without stopping the run.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import IO

import orjson

from extproc.config.compile import parse_policy
from extproc.core.transaction import Transaction
from extproc.core.policy import Policy
from extproc.core.records import RecordError, iter_records, request_from_record
from extproc.core.text import library_value
from extproc.core.verdict import Decision, LayerResult

# Without --config: every layer that works without settings of its own. The bot layer only logs,
# so that every record gets every layer's score instead of stopping at the first deny.
DEFAULT_POLICY = "version: 1\ndefaults:\n  layers:\n    bot: {action: log}\n    attack: {}\n"


def default_policy() -> Policy:
    return parse_policy(DEFAULT_POLICY, "<default score policy>")


def score_records(path: Path, policy: Policy, out: IO[bytes]) -> int:
    errors = 0
    for number, record in iter_records(path):
        if isinstance(record, RecordError):
            errors += 1
            out.write(orjson.dumps({"line": number, "error": str(record)}) + b"\n")
            continue
        # Reasons may name client text that was not UTF-8 (an argument's name): shown as in records.
        out.write(orjson.dumps(library_value(score_record(record, policy))) + b"\n")
    return 1 if errors else 0


def score_record(record: dict, policy: Policy) -> dict:
    request, body = request_from_record(record)
    # The clock stands still, as in the red team's in-process replay: a busy machine must not turn
    # a record's decision into a deadline fault, or two runs over the same file would differ.
    transaction = Transaction(policy, request, clock=_still)
    decision = transaction.on_headers()
    if decision is None:
        decision = transaction.on_body(body)
    return describe(record, decision)


def _still() -> int:
    return 0


def describe(record: dict, decision: Decision) -> dict:
    line: dict = {"id": record.get("id"), "action": "allow" if decision.allowed else "deny"}
    if not decision.allowed:
        line["status"] = decision.status
        line["denied_by"] = decision.denied_by
    layers = {result.verdict.layer: _layer(result) for result in decision.results}
    for name in ("attack", "bot"):
        if name in layers and "score" in layers[name]:
            line[f"{name}_score"] = layers[name]["score"]
    line["layers"] = layers
    return line


def _layer(result: LayerResult) -> dict:
    """The result's record, shaped for reading: a layer's own score first, then its sub-scores."""
    record = result.record()
    entry: dict = {"action": record["action"], "mode": record["mode"]}
    scores = record["scores"]
    if "attack" in scores:
        entry["score"] = scores.pop("attack")
        entry["sub_scores"] = scores
    elif "bot" in scores:
        entry["score"] = scores.pop("bot")
        entry["class"] = record["labels"][0]
    elif scores:
        entry["scores"] = scores
    if record["reasons"]:
        entry["reasons"] = record["reasons"]
    if record["outcome"] != "ok":
        entry["outcome"] = record["outcome"]
    return entry


def run(path: str, config: str | None, layers: str | None) -> int:
    from extproc.config.compile import load_policy_or_report

    policy = load_policy_or_report(config) if config else default_policy()
    if policy is None:
        return 2
    if layers:
        wanted = {name.strip() for name in layers.split(",") if name.strip()}
        policy = policy.only_layers(wanted)
    try:
        return score_records(Path(path), policy, sys.stdout.buffer)
    except BrokenPipeError:  # `extproc score ... | head`: the reader has what it wanted
        sys.stderr.close()
        return 0
    except OSError as exc:
        print(f"{path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
