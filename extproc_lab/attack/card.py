"""Attach a held-out evaluation to a trained model and rewrite its card, without training again.

    python -m extproc_lab.attack.card models/attack.onnx --metrics eval.json

The report must have been measured on the model's own training data (the digests must match):
figures of another model or other data never reach this model's card. Settings in which the
evaluation's folds differ from the model (fewer epochs, one seed instead of averaged seeds) are
named in the card.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from extproc.attack.model import DEFAULT_MODEL, metadata_path
from extproc_lab.attack.train import held_out_report, write_metadata


def attach(model: Path, report: Path) -> dict:
    meta_path = metadata_path(model)
    metadata = json.loads(meta_path.read_text())
    metadata["metrics"] = held_out_report(report, metadata["training"]["data"])
    write_metadata(model, metadata)
    return metadata


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m extproc_lab.attack.card", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, nargs="?", default=DEFAULT_MODEL)
    parser.add_argument("--metrics", type=Path, required=True, help="report of python -m extproc_lab.attack.evaluate --json")
    args = parser.parse_args(argv)
    attach(args.model, args.metrics)
    print(f"wrote the metrics into {metadata_path(args.model)} and {args.model.with_suffix('.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
