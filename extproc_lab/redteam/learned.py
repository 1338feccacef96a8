"""``extproc redteam learned RECORDS``: how well a positive model learned from an application's own
traffic works on that application.

The records are split in two by a hash: the learning part and the held-out part. Normal requests
that carry the same parameters (the GET and the POST of one form filled once) fall on the same side,
so the held-out part tests values the learner never saw. Records labelled as attacks are never
learned from: they are held out, each on its own. From the learning part, ``extproc learn`` writes
a document; the held-out normal requests, the recorded attacks and generated anomalies
(``anomalies.py``: red-team payloads in the application's real parameters, tampering, resources it
never served) then go through a policy of API Shield with that document and the attack layer, both
with default settings. The report says what share of each kind of anomaly was stopped, what share
of normal requests was flagged (and which), which layer faults occurred, and what each layer
stops alone, so what the learned model adds to the attack model is seen.
"""
from __future__ import annotations

import hashlib
import logging
from collections import Counter, defaultdict
from pathlib import Path

import yaml

from extproc.api_shield.learn import Learner, propose
from extproc.api_shield.shapes import Strictness
from extproc.config.compile import parse_policy
from extproc.core.records import request_from_record
from extproc_lab.redteam import anomalies
from extproc_lab.redteam.replay import InProcess, Outcome

BENIGN = ("benign", "human")
LAYER_SETS = {"both": ("api_shield", "attack"), "api_shield": ("api_shield",), "attack": ("attack",)}
EXAMPLES = 10


def holds_out(record: dict, key: str, share: float, seed: int) -> bool:
    """True for records of the held-out part: attacks always, normal ones by a hash of ``key``."""
    if record.get("label") not in BENIGN:
        return True
    digest = hashlib.sha256(f"{seed}:{key}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


def split(records: list[dict], share: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(learning part, held-out part). A normal request's key is its parameters and how many
    requests of its method sent the same ones before it: the n-th GET and the n-th POST of one
    filled-in form share a side, while a page requested a thousand times with the same
    parameters (or none: then the record id is the key) is spread over both."""
    learn, held, seen = [], [], Counter[tuple[str, str]]()
    for record in records:
        request = record.get("request", {})
        text = request.get("query") or request.get("body") or request.get("body_b64") or ""
        seen[(str(request.get("method")), text)] += 1
        key = f"{text}#{seen[(str(request.get('method')), text)]}" if text else f"id:{record.get('id')}"
        (held if holds_out(record, key, share, seed) else learn).append(record)
    return learn, held


def learn(records: list[dict], strictness: Strictness, base_path: str = "") -> dict:
    learner = Learner(base_path.rstrip("/"))
    for record in records:
        request, body = request_from_record(record)
        request.attach_body(body)
        learner.add(request)
    return propose(learner.build(), base_path=base_path, strictness=strictness)


def policy_text(spec_path: Path, layers: tuple[str, ...], base_path: str = "") -> str:
    lines = ["version: 1", "defaults:", "  layers:"]
    if "api_shield" in layers:
        lines.append(f"    api_shield: {{spec: {spec_path}" + (f", base_path: {base_path}" if base_path else "") + "}")
    if "attack" in layers:
        lines.append("    attack: {}")
    return "\n".join(lines) + "\n"


def evaluate(records: list[dict], strictness: Strictness, workdir: Path, share: float = 0.2, seed: int = 1,
             per_family: int = 20, base_path: str = "") -> dict:
    """The whole evaluation; the learned document is written to workdir/learned-openapi.yaml."""
    logging.getLogger("extproc.core.transaction").setLevel(logging.CRITICAL)  # faults are counted instead
    train, held = split(records, share, seed)
    normal = [r for r in held if r.get("label") in BENIGN]
    recorded = [{**r, "kind": "recorded"} for r in held if r.get("label") not in BENIGN]
    generated = anomalies.generate(normal, per_family, seed)
    spec = workdir / "learned-openapi.yaml"
    spec.write_text(yaml.safe_dump(learn(train, strictness, base_path), sort_keys=False, allow_unicode=True),
                    encoding="utf-8")
    runs = {}
    for name, layers in LAYER_SETS.items():
        sender = InProcess(parse_policy(policy_text(spec, layers, base_path), f"<{name}>"))
        runs[name] = {"normal": [sender.send(r) for r in normal],
                      "anomalies": [sender.send(r) for r in recorded + generated]}
    anomalous = recorded + generated
    return {
        "strictness": strictness.name, "seed": seed, "held_out_share": share, "spec": str(spec),
        "learned_from": len(train), "operations": _operations(spec),
        "normal": _normal(normal, runs),
        "anomalies": _anomalies(anomalous, runs),
        "layer_faults": {name: _faults(run["normal"] + run["anomalies"]) for name, run in runs.items()},
    }


def _operations(spec: Path) -> int:
    document = yaml.safe_load(spec.read_text(encoding="utf-8"))
    return sum(len(item) for item in document["paths"].values())


def _normal(normal: list[dict], runs: dict) -> dict:
    both = runs["both"]["normal"]
    flagged = [(record, outcome) for record, outcome in zip(normal, both) if outcome.stopped]
    return {"total": len(normal),
            **{f"flagged_{name}": sum(o.stopped for o in run["normal"]) for name, run in runs.items()},
            "rate": _share(len(flagged), len(normal)),
            "examples": [_describe(record, outcome) for record, outcome in flagged[:EXAMPLES]]}


def _anomalies(anomalous: list[dict], runs: dict) -> dict:
    rows: dict[tuple[str, str], dict] = defaultdict(Counter)
    for index, record in enumerate(anomalous):
        for key in ((record["kind"], "*"), (record["kind"], record.get("family") or "-"), ("*", "*")):
            row = rows[key]
            row["total"] += 1
            for name, run in runs.items():
                row[name] += run["anomalies"][index].stopped
    table = {f"{kind}/{family}": {"total": row["total"], "stopped": row["both"], "rate": _share(row["both"], row["total"]),
                                  "api_shield_alone": _share(row["api_shield"], row["total"]),
                                  "attack_alone": _share(row["attack"], row["total"])}
             for (kind, family), row in sorted(rows.items())}
    missed = [_describe(record, outcome) for record, outcome in zip(anomalous, runs["both"]["anomalies"])
              if not outcome.stopped]
    return {"by_kind": table, "missed_examples": missed[:EXAMPLES * 3]}


def _faults(outcomes: list[Outcome]) -> dict:
    return dict(Counter(layer for outcome in outcomes for layer in outcome.faults))


def _describe(record: dict, outcome: Outcome) -> str:
    request = record["request"]
    target = request.get("path", "") + ("?" + request["query"] if request.get("query") else "")
    body = f" body={request['body'][:160]}" if request.get("body") else ""
    return f"{record.get('id')} {request.get('method')} {target[:200]}{body} -> {outcome.result} {outcome.layer}".strip()


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
