"""The bot model's native engine: its tree ensemble walked by a small C extension (_trees.c).

For one request's vector onnxruntime spends ~9 µs hot and 20-30 µs in the pipeline, mostly in the
run's fixed cost rather than in the trees. The extension walks the same trees with onnxruntime's
arithmetic (float32 comparisons and sums, its logistic) and returns P(automated) in a few µs.

It is only trusted with the graph it implements, the one ``onnxmltools`` writes for the binary
LightGBM model of ``extproc_lab.bot.train``: a TreeEnsembleClassifier with LOGISTIC post-transform,
leaf weights of class 0 only and of both signs, no base values, labels [0, 1], then the
Identity/Cast/Mul(1.0) nodes that leave the probabilities as they are. Anything else raises
Unsupported and the model runs on onnxruntime, which is always right.

The trees are read from the .onnx file with the subset of ONNX's schema the attack model's native
engine uses (proto/extproc/wire/pb/onnx_subset.proto), so serving needs no onnx package.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal, NotRequired, TypedDict, cast

import numpy as np
from google.protobuf.message import DecodeError

from extproc.core.modelfiles import NativeUnsupported
from extproc.wire.pb import onnx_subset_pb2

ML_DOMAIN = "ai.onnx.ml"
# (op, domain, inputs, outputs) of every node, in order: onnxmltools' graph for a binary LightGBM.
EXPECTED_NODES = (
    ("TreeEnsembleClassifier", ML_DOMAIN, ("features",), ("label_tensor", "probability_tensor")),
    ("Identity", "", ("label_tensor",), ("lgbmlabel",)),
    ("Identity", "", ("probability_tensor",), ("lgbmprobabilities",)),
    ("Cast", "", ("lgbmlabel",), ("label",)),
    ("Mul", "", ("lgbmprobabilities", "one"), ("probabilities",)),
)
# Modes as _trees.c numbers them; onnxruntime knows no others.
MODES = {b"LEAF": 0, b"BRANCH_LEQ": 1, b"BRANCH_LT": 2, b"BRANCH_GTE": 3, b"BRANCH_GT": 4, b"BRANCH_EQ": 5,
         b"BRANCH_NEQ": 6}
_FLOAT, _INT, _STRING, _FLOATS, _INTS, _STRINGS = 1, 2, 3, 6, 7, 8  # ONNX AttributeProto types
# The ensemble's attributes the engine reads, by type; the optional ones have ONNX's defaults.
REQUIRED = {
    "class_ids": _INTS, "class_nodeids": _INTS, "class_treeids": _INTS, "class_weights": _FLOATS,
    "classlabels_int64s": _INTS, "nodes_falsenodeids": _INTS, "nodes_featureids": _INTS, "nodes_modes": _STRINGS,
    "nodes_nodeids": _INTS, "nodes_treeids": _INTS, "nodes_truenodeids": _INTS, "nodes_values": _FLOATS,
    "post_transform": _STRING,
}
OPTIONAL = {"nodes_missing_value_tracks_true": _INTS, "nodes_hitrates": _FLOATS}  # hit rates change nothing
AttributeValue = float | int | bytes | tuple[float, ...] | tuple[int, ...] | tuple[bytes, ...]


class Ensemble(TypedDict):
    """The ensemble's attributes once read_trees has checked each one's type against REQUIRED/OPTIONAL."""
    class_ids: tuple[int, ...]
    class_nodeids: tuple[int, ...]
    class_treeids: tuple[int, ...]
    class_weights: tuple[float, ...]
    classlabels_int64s: tuple[int, ...]
    nodes_falsenodeids: tuple[int, ...]
    nodes_featureids: tuple[int, ...]
    nodes_modes: tuple[bytes, ...]
    nodes_nodeids: tuple[int, ...]
    nodes_treeids: tuple[int, ...]
    nodes_truenodeids: tuple[int, ...]
    nodes_values: tuple[float, ...]
    post_transform: bytes
    nodes_missing_value_tracks_true: NotRequired[tuple[int, ...]]
    nodes_hitrates: NotRequired[tuple[float, ...]]


NodeColumn = Literal["nodes_treeids", "nodes_nodeids", "nodes_modes", "nodes_featureids", "nodes_values",
                     "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true"]


class Unsupported(NativeUnsupported):
    """The model is not the graph the extension implements (the reason is the message)."""


class NativeEngine:
    """probability(vector) of one bot model, computed by the C extension."""

    def __init__(self, path: Path, n_features: int) -> None:
        from extproc.bot import _trees  # ImportError: not built (no compiler at install)

        try:
            self.trees = _trees.Trees(**read_trees(path), n_features=n_features)
        except Unsupported:
            raise
        except Exception as exc:  # noqa: BLE001 - ids beyond the vector or int32, damaged arrays: onnxruntime judges it
            raise Unsupported(str(exc)) from None
        self.probability = self.trees.probability  # P(class 1) of one float32 vector, as a float


def read_trees(path: Path) -> dict[str, np.ndarray]:
    """The ensemble of the graph at path as _trees.Trees' flat arrays, after checking the graph."""
    model = onnx_subset_pb2.ModelProto()
    try:
        model.ParseFromString(path.read_bytes())
    except (OSError, DecodeError) as exc:
        raise Unsupported(f"cannot read the graph: {exc}") from None
    graph = model.graph
    nodes = tuple((n.op_type, n.domain, tuple(n.input), tuple(n.output)) for n in graph.node)
    if nodes != EXPECTED_NODES:
        raise Unsupported("the graph's nodes are not onnxmltools' binary LightGBM classifier")
    ensemble, _, _, cast_node, _ = graph.node
    if _attributes(cast_node) != {"to": (_INT, 7)} or any(n.attribute for n in graph.node[1:3] + graph.node[4:]):
        raise Unsupported("the nodes after the ensemble have other attributes than onnxmltools writes")
    ones = [t for t in graph.initializer if t.name == "one"]
    if len(graph.initializer) != 1 or len(ones) != 1 or not _is_scalar_one(ones[0]):
        raise Unsupported("the graph's constant 'one' is not the float32 scalar 1")

    attributes = _attributes(ensemble)
    unknown = set(attributes) - set(REQUIRED) - set(OPTIONAL)
    missing = set(REQUIRED) - set(attributes)
    wrong = {name for name, (kind, _) in attributes.items() if {**REQUIRED, **OPTIONAL}.get(name, kind) != kind}
    if unknown or missing or wrong:
        raise Unsupported(f"ensemble attributes: unknown {sorted(unknown)}, missing {sorted(missing)}, "
                          f"of another type {sorted(wrong)}")
    # Every name and type was checked just above, so the values are what Ensemble says.
    a = cast(Ensemble, {name: value for name, (_, value) in attributes.items()})
    if a["post_transform"] != b"LOGISTIC":
        raise Unsupported(f"post_transform {a['post_transform']!r}, the engine implements LOGISTIC")
    if a["classlabels_int64s"] != (0, 1):
        raise Unsupported(f"class labels {a['classlabels_int64s']}, the engine implements [0, 1]")
    weights = a["class_weights"]
    if set(a["class_ids"]) != {0} or not len(a["class_ids"]) == len(a["class_nodeids"]) == len(a["class_treeids"]) \
            == len(weights):
        raise Unsupported("the leaf weights are not one list of class 0 weights (the binary case)")
    if all(w >= 0 for w in weights):
        # onnxruntime's binary case then writes the raw sum and 1 - sum, without the logistic.
        raise Unsupported("every leaf weight is positive")
    count = len(a["nodes_nodeids"])
    a.setdefault("nodes_missing_value_tracks_true", (0,) * count)
    columns: tuple[NodeColumn, ...] = (
        "nodes_treeids", "nodes_nodeids", "nodes_modes", "nodes_featureids", "nodes_values", "nodes_truenodeids",
        "nodes_falsenodeids", "nodes_missing_value_tracks_true")
    if any(len(a[c]) != count for c in columns) or len(a.get("nodes_hitrates", ())) not in (0, count):
        raise Unsupported("the node attributes are not of one length")
    if not set(a["nodes_modes"]) <= set(MODES) or not set(a["nodes_missing_value_tracks_true"]) <= {0, 1}:
        raise Unsupported(f"node modes {sorted(set(a['nodes_modes']) - set(MODES))} or missing-value flags "
                          "the engine does not know")
    leaf_weight: dict[tuple[int, int], float] = {}
    for tree, node, weight in zip(a["class_treeids"], a["class_nodeids"], weights):
        if (tree, node) in leaf_weight:
            raise Unsupported(f"tree {tree} node {node} has more than one weight")
        leaf_weight[tree, node] = weight
    return _layout(a, leaf_weight)


def _layout(a: Ensemble, leaf_weight: dict[tuple[int, int], float]) -> dict[str, np.ndarray]:
    """Each tree (in tree id order) from its node 0, depth first: a branch's true child right after
    it, its false child after the true child's subtree. Each node of the tree must be reached
    exactly once: a tree, not a graph with cycles or orphans."""
    by_id: dict[int, dict[int, int]] = {}  # tree id -> node id -> attribute index
    for attribute_index, (tree, node) in enumerate(zip(a["nodes_treeids"], a["nodes_nodeids"])):
        if node in by_id.setdefault(tree, {}):
            raise Unsupported(f"tree {tree} has two nodes {node}")
        by_id[tree][node] = attribute_index
    columns: dict[str, list[float]] = {name: [] for name in ("features", "values", "modes", "missing_true",
                                                              "next_false")}
    roots, leaves = [], 0
    for tree in sorted(by_id):
        ids = by_id[tree]
        if 0 not in ids:
            raise Unsupported(f"tree {tree} has no node 0")
        roots.append(len(columns["modes"]))
        placed = 0
        # (node id, the position of the branch it is the false child of)
        pending: list[tuple[int, int | None]] = [(0, None)]
        while pending:
            node, parent = pending.pop()
            index = ids.get(node)
            if index is None:
                raise Unsupported(f"tree {tree}: a branch leads to node {node}, which is not in the tree")
            position = len(columns["modes"])
            if parent is not None:
                columns["next_false"][parent] = position
            mode = MODES[a["nodes_modes"][index]]
            is_leaf = mode == 0
            weight = leaf_weight.get((tree, node))
            if is_leaf != (weight is not None):
                raise Unsupported(f"tree {tree} node {node}: " + ("a leaf without a weight" if is_leaf
                                                                    else "a branch with a weight"))
            leaves += is_leaf
            placed += 1
            if placed > len(ids):
                raise Unsupported(f"tree {tree} reaches a node twice (not a tree)")
            columns["features"].append(0 if is_leaf else a["nodes_featureids"][index])
            columns["values"].append(weight if weight is not None else a["nodes_values"][index])  # a leaf's
            columns["modes"].append(mode)
            columns["missing_true"].append(0 if is_leaf else a["nodes_missing_value_tracks_true"][index])
            columns["next_false"].append(0)
            if not is_leaf:  # popped first, the true child is placed next
                pending.append((a["nodes_falsenodeids"][index], position))
                pending.append((a["nodes_truenodeids"][index], None))
        if placed != len(ids):
            raise Unsupported(f"tree {tree} has nodes no branch leads to")
    if leaves != len(leaf_weight):
        raise Unsupported("some weights belong to no leaf")
    dtypes = {"features": np.int32, "values": np.float32, "modes": np.uint8, "missing_true": np.uint8,
              "next_false": np.int32}
    arrays = {name: np.array(values, dtype=dtypes[name]) for name, values in columns.items()}
    if np.any(arrays["features"] < 0):
        raise Unsupported("a negative feature id")
    return {**arrays, "roots": np.array(roots, dtype=np.int32)}


def _attributes(node: onnx_subset_pb2.NodeProto) -> dict[str, tuple[int, AttributeValue]]:
    """Attribute name -> (type, value); a name given twice makes the graph one the engine refuses."""
    values: dict[str, tuple[int, AttributeValue]] = {}
    for attr in node.attribute:
        by_type: dict[int, AttributeValue] = {
            _FLOAT: attr.f, _INT: attr.i, _STRING: attr.s, _FLOATS: tuple(attr.floats), _INTS: tuple(attr.ints),
            _STRINGS: tuple(attr.strings)}
        value = by_type.get(attr.type)
        if attr.name in values or value is None:
            raise Unsupported(f"attribute {attr.name!r} is repeated or of a type the engine does not read")
        values[attr.name] = (attr.type, value)
    return values


def _is_scalar_one(tensor: onnx_subset_pb2.TensorProto) -> bool:
    if tensor.data_type != 1 or tuple(tensor.dims) not in ((), (1,)) or tensor.data_location == 1:
        return False
    values = np.frombuffer(tensor.raw_data, dtype="<f4") if tensor.raw_data else np.array(tensor.float_data, "<f4")
    return values.shape == (1,) and values[0] == 1.0
