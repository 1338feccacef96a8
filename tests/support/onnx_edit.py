"""Edited copies of a shipped model, for the tests that check what the native engines refuse."""
from __future__ import annotations

from pathlib import Path

from extproc.wire.pb import onnx_subset_pb2


def edited_copy(model_path: Path, tmp_path: Path, edit) -> Path:
    """A copy of the model (its .onnx edited through the subset schema) and its metadata."""
    model = onnx_subset_pb2.ModelProto()
    model.ParseFromString(model_path.read_bytes())  # fields outside the subset are kept as unknown
    edit(model.graph)
    path = tmp_path / model_path.name
    path.write_bytes(model.SerializeToString())
    path.with_suffix(".json").write_text(model_path.with_suffix(".json").read_text())
    return path
