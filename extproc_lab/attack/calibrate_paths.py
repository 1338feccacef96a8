"""URL paths' own operating point for the attack score, set on real paths.

    python -m extproc_lab.attack.calibrate_paths ../shared/data/train-extra/benign-urls.jsonl \
        [--attacks FILE ...] [--target-fp 0.0005] [--write]

Ordinary paths look nothing like parameter values (words, slugs, file names, commas, tool names),
and the value model, trained on values, flags them far more often. The real URLs are split by host
into two halves: the probability at which the calibration half's plain paths (ordinary path
characters only, no decoding: model.plain_path) are flagged ``target-fp`` of the time becomes their
operating point (an offset to the attack logit, never a lower point than the values'); paths with
metacharacters or decoded segments keep the values' point. The other half, whose hosts it never
saw, says what that does. Attack records (``--attacks``) say what it costs: attacks caught at the path before,
and still caught after. ``--write`` stores the offset and the figures in the model's metadata and
rewrites its card.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from extproc.attack.extract import ExtractSettings, extract
from extproc.attack.features import frame
from extproc.attack.model import DEFAULT_MODEL, load_model, logit_shift_for, metadata_path, plain_path
from extproc.attack.normalize import normalize
from extproc.core.records import request_from_record
from extproc_lab.attack.dataset import host_half
from extproc_lab.attack.train import write_metadata

PATH_ONLY = ExtractSettings(parts=frozenset({"path"}))


def path_probabilities(model, record: dict) -> tuple[float, float]:
    """The highest attack probability, as the network gives it, of the request's plain path values
    (those the paths' operating point applies to: model.plain_path) and of its other path values
    (metacharacters, decoded segments); 0 where there is none."""
    request, _body = request_from_record(record)
    values = extract(request, PATH_ONLY)
    framed = [frame(*normalize(text), location) for text, location in zip(values.texts, values.locations)]
    if not framed:
        return 0.0, 0.0
    attack = model.raw_probabilities(framed)[:, 0]
    plain = [float(p) for p, value in zip(attack, framed) if plain_path(value)]
    other = [float(p) for p, value in zip(attack, framed) if not plain_path(value)]
    return max(plain, default=0.0), max(other, default=0.0)


def calibrate(model, urls: list[dict], target_fp: float) -> dict:
    halves: list[list[tuple[float, float]]] = [[], []]
    for record in urls:
        halves[host_half(record)].append(path_probabilities(model, record))
    fit, held_out = (np.array(h) for h in halves)
    operating = float(np.quantile(fit[:, 0], 1 - target_fp))  # over the plain paths' probabilities
    offset = min(0.0, logit_shift_for(operating) - model.info.logit_shift)  # never more eager than values
    return {
        "logit_offset": round(offset, 4),
        "target_fp": target_fp,
        "calibration_paths": len(fit),
        "held_out_paths": len(held_out),
        "held_out_fp_before": round(_flagged(model, held_out, 0.0), 5),
        "held_out_fp_after": round(_flagged(model, held_out, offset), 5),
    }


def attack_cost(model, attacks: list[dict], offset: float) -> dict:
    """Attack records whose path alone was enough to flag them, before and after the offset."""
    scored = np.array([path_probabilities(model, record) for record in attacks])
    return {"attack_records": len(attacks), "flagged_by_path_before": round(_flagged(model, scored, 0.0) * len(scored)),
            "flagged_by_path_after": round(_flagged(model, scored, offset) * len(scored))}


def _flagged(model, probabilities: np.ndarray, offset: float) -> float:
    """Share of (plain, other) path probability pairs at or past the operating point."""
    value_point = _threshold_probability(model.info.logit_shift)
    plain_point = _with_offset(value_point, -offset)
    return float(((probabilities[:, 0] >= plain_point) | (probabilities[:, 1] >= value_point)).mean())


def _threshold_probability(logit_shift: float) -> float:
    """The probability that scores exactly the default threshold under this shift."""
    q_logit = logit_shift_for(0.5)  # the shift that puts p = 0.5 on the threshold: logit(q) there
    return 1 / (1 + math.exp(-(q_logit - logit_shift)))


def _with_offset(probability: float, offset: float) -> float:
    logit = math.log(probability / (1 - probability)) + offset
    return 1 / (1 + math.exp(-logit))


def read_jsonl(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("urls", help="request records of real, benign URLs (several hosts)")
    parser.add_argument("--attacks", nargs="*", default=[], help="attack records, to report the cost")
    parser.add_argument("--target-fp", type=float, default=0.0005, help="share of real paths flagged")
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--write", action="store_true", help="store the offset and figures in the metadata")
    args = parser.parse_args(argv)
    model = load_model(args.model)
    figures = calibrate(model, read_jsonl(args.urls), args.target_fp)
    attacks = [r for path in args.attacks for r in read_jsonl(path) if r.get("label") == "attack"]
    if attacks:
        figures["attacks"] = attack_cost(model, attacks, figures["logit_offset"])
    figures["urls"] = Path(args.urls).name
    print(json.dumps(figures, indent=1))
    if args.write:
        meta = json.loads(metadata_path(Path(args.model)).read_text())
        meta["calibration"].setdefault("locations", {})["path"] = figures
        write_metadata(Path(args.model), meta)  # the card shows the point
    return 0


if __name__ == "__main__":
    sys.exit(main())
