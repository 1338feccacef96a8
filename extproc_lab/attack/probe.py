"""What a model's features are, as one digest: the committed model must be what HEAD's code trains.

A fixed set of requests (extproc_lab/data/attack-probe.jsonl: ordinary traffic, attacks in every
location, base64, overlong UTF-8, Latin-1 bytes) goes through the training path (extraction,
normalisation, decoding, framing, token classes, hashing); the digest of the resulting n-gram ids
is stored with the model when it is trained. A change to any of those steps changes the digest,
and tests/component/test_attack_model_current.py fails until the model is retrained.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from extproc.attack.features import FeatureSpec, featurize
from extproc.core.records import read_records
from extproc_lab.attack.dataset import collect

PROBE_FILE = Path(__file__).resolve().parent.parent / "data" / "attack-probe.jsonl"


def feature_digest(spec: FeatureSpec, probe: Path = PROBE_FILE) -> str:
    digest = hashlib.sha256()
    for record in collect(read_records(probe)):
        if record.framed:
            digest.update(featurize(record.framed, spec).ids.tobytes())
    return digest.hexdigest()
