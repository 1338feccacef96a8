"""The committed attack model is what the committed code trains: same features, same recipe, same data.

Retraining takes minutes and needs ../shared, so this checks what can drift without anyone noticing:
a change to extraction, normalisation, decoding, framing, the lexer or hashing (the model would score
values in a way it never learnt), a change of the training defaults, and, where the data is present,
a change of the data files.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

import pytest

from extproc.attack.model import DEFAULT_MODEL, load_model, metadata_path
from tests.support import SHARED_DATA

pytest.importorskip("onnx")  # extproc_lab.attack.train: the dev extra

from extproc_lab.attack.probe import feature_digest  # noqa: E402
from extproc_lab.attack.train import TrainConfig  # noqa: E402

METADATA = json.loads(metadata_path(DEFAULT_MODEL).read_text())
RETRAIN = "retrain it (docs/attack.md, 'Retrain on your own traffic', with the shipped inputs)"


def test_the_model_saw_values_as_this_code_extracts_and_hashes_them():
    spec = load_model().info.spec
    assert METADATA["training"]["feature_digest"] == feature_digest(spec), (
        f"extraction, normalisation, decoding, the lexer or hashing changed since {DEFAULT_MODEL.name} was trained: {RETRAIN}")


def test_the_model_was_trained_with_the_default_recipe():
    recorded = METADATA["training"]["config"]
    defaults = json.loads(json.dumps(asdict(TrainConfig())))
    assert recorded == defaults, f"TrainConfig's defaults are not the shipped model's recipe: {RETRAIN}"


def test_the_training_data_is_the_data_present_here():
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not in this checkout")
    for entry in METADATA["training"]["data"]["files"]:
        path = SHARED_DATA / entry["file"]
        assert path.is_file(), f"{entry['file']} trained the model but is not in {SHARED_DATA}"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], f"{entry['file']} changed: {RETRAIN}"
