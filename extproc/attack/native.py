"""The attack model's native engine: the ONNX graph computed by a fused C kernel (_ngram_bag.c).

onnxruntime pays for the graph's generality: featurize writes every n-gram's id into an int64
array, the graph gathers, reshapes and cumulatively sums hundreds of KB, and each run has ~13 µs of
fixed cost. The kernel hashes each n-gram and adds its embedding row straight into its value's bag.

It is only trusted with the graph it implements, the one ``extproc_lab.attack.train.to_onnx`` writes,
node for node, with its constants as expected and the "no n-gram" row of the table at zero. Any
other graph raises Unsupported and the model runs on onnxruntime, which is always right.

The weights are read from the .onnx file itself: onnxruntime does not hand out a graph's
initializers and the onnx package is a training dependency only, so a subset of ONNX's protobuf
schema (proto/extproc/wire/pb/onnx_subset.proto, generated like the other protos) parses the file with
the protobuf runtime that serving already has. One file stays the single source of the weights.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError

from extproc.attack import tokens
from extproc.attack.features import MULTIPLIER, ORDER_SALTS, FeatureSpec
from extproc.core.modelfiles import NativeUnsupported
from extproc.wire.pb import onnx_subset_pb2

# (op, inputs, outputs, attributes) of every node, in order: to_onnx's graph exactly. Equivalent
# spellings (a default attribute written out, renamed tensors) are refused rather than interpreted.
EXPECTED_NODES: tuple[tuple[str, tuple[str, ...], tuple[str, ...], dict[str, int]], ...] = (
    ("Gather", ("table", "ids"), ("embedded",), {"axis": 0}),
    ("Reshape", ("embedded", "by_order"), ("per_order",), {}),
    ("MatMul", ("ones", "per_order"), ("summed_flat",), {}),
    ("Reshape", ("summed_flat", "by_position"), ("summed",), {}),
    ("CumSum", ("summed", "axis0"), ("running",), {}),
    ("Concat", ("zero_row", "running"), ("cumulative",), {"axis": 0}),
    ("Gather", ("cumulative", "ends"), ("upto_end",), {"axis": 0}),
    ("Gather", ("cumulative", "starts"), ("upto_start",), {"axis": 0}),
    ("Sub", ("upto_end", "upto_start"), ("bag",), {}),
    ("Mul", ("bag", "scale"), ("pooled",), {}),
    ("Gemm", ("pooled", "w1", "b1"), ("hidden_in",), {}),  # no transA/transB, alpha = beta = 1
    ("Relu", ("hidden_in",), ("hidden",), {}),
    ("Gemm", ("hidden", "w2", "b2"), ("logits",), {}),
    ("Sigmoid", ("logits",), ("probabilities",), {}),
)
_DTYPES: dict[int, np.dtype[Any]] = {1: np.dtype("<f4"), 7: np.dtype("<i8")}  # ONNX TensorProto.FLOAT, INT64
_INT, _INTS = 2, 7  # ONNX AttributeProto.INT, INTS
_EXTERNAL = 1  # ONNX TensorProto.EXTERNAL


class Unsupported(NativeUnsupported):
    """The model is not the graph the kernel implements (the reason is the message)."""


class NativeEngine:
    """probabilities(framed) of one attack model, computed by the C kernel."""

    def __init__(self, path: Path, spec: FeatureSpec, heads: int) -> None:
        from extproc.attack import _ngram_bag  # ImportError: not built (no compiler at install)

        try:
            weights = read_weights(path, spec, heads)
        except Unsupported:
            raise
        except Exception as exc:  # noqa: BLE001 - a damaged file (odd raw sizes, negative dims): onnxruntime judges it
            raise Unsupported(f"unreadable weights: {exc}") from None
        if spec.tokens not in (0, tokens.VERSION):
            raise Unsupported(f"token channel version {spec.tokens}; this kernel lexes version {tokens.VERSION}")
        try:
            self.kernel = _ngram_bag.Kernel(
                orders=spec.orders, salts=[int(ORDER_SALTS[k]) for k in spec.orders], multiplier=int(MULTIPLIER),
                mix=int(ORDER_SALTS[0]), bits=spec.bits, lexer=tokens.native_lexer() if spec.tokens else None,
                **weights,
            )
        except (ValueError, IndexError) as exc:  # sizes beyond the kernel's limits, orders beyond the salts
            raise Unsupported(str(exc)) from None

    def probabilities(self, framed: list[bytes]) -> np.ndarray:
        out = np.empty((len(framed), self.kernel.heads), dtype=np.float32)
        self.kernel.run(framed, out)
        return out


def read_weights(path: Path, spec: FeatureSpec, heads: int) -> dict[str, np.ndarray]:
    """table, w1, b1, w2, b2 of the graph at path, after checking it is the expected graph."""
    model = onnx_subset_pb2.ModelProto()
    try:
        model.ParseFromString(path.read_bytes())
    except (OSError, DecodeError) as exc:
        raise Unsupported(f"cannot read the graph: {exc}") from None
    nodes = tuple((n.op_type, tuple(n.input), tuple(n.output), _attributes(n)) for n in model.graph.node)
    if nodes != EXPECTED_NODES or any(n.domain for n in model.graph.node):
        raise Unsupported("the graph's nodes are not those of extproc_lab.attack.train's graph")
    arrays = {t.name: _array(t) for t in model.graph.initializer}
    found = [arrays.get(name) for name in ("table", "w1", "b1", "w2", "b2")]
    weights = [a for a in found if a is not None and a.dtype == np.float32]
    if len(weights) != len(found):
        raise Unsupported("the weights are missing or not float32")
    table, w1, b1, w2, b2 = weights
    dim = table.shape[1] if table.ndim == 2 else -1
    shapes = (table.shape, w1.shape, b1.shape, w2.shape, b2.shape)
    hidden = b1.shape[0] if b1.ndim == 1 else -1
    if shapes != ((2 ** spec.bits + 1, dim), (dim, hidden), (hidden,), (hidden, heads), (heads,)):
        raise Unsupported(f"weight shapes {shapes} do not fit {2 ** spec.bits + 1} buckets and {heads} heads")
    constants = {  # what the kernel takes for granted about the graph's other initializers
        "axis0": np.array([0]),
        "zero_row": np.zeros((1, dim)),
        "ones": np.ones((1, len(spec.orders))),  # every order weighs the same
        "by_order": np.array([len(spec.orders), -1]),
        "by_position": np.array([-1, dim]),
    }
    for name, expected in constants.items():
        got = arrays.get(name)
        if got is None or got.shape != expected.shape or not np.array_equal(got, expected):
            raise Unsupported(f"the graph's constant {name!r} is not {expected.tolist()}")
    # The kernel skips n-grams that do not fit in their value instead of adding row 0.
    if np.any(table[0]):
        raise Unsupported("row 0 of the embedding table (no n-gram) is not zero")
    return {"table": table, "w1": w1, "b1": b1, "w2": w2, "b2": b2}


def _attributes(node: onnx_subset_pb2.NodeProto) -> dict[str, object]:
    """Attribute name -> value; kinds the expected graph never has come out as unequal markers."""
    values: dict[str, object] = {}
    for a in node.attribute:
        values[a.name] = a.i if a.type == _INT else tuple(a.ints) if a.type == _INTS else ("type", a.type)
    return values


def _array(tensor: onnx_subset_pb2.TensorProto) -> np.ndarray:
    dtype = _DTYPES.get(tensor.data_type)
    if dtype is None or tensor.data_location == _EXTERNAL:
        return np.empty(0, dtype=object)  # not a tensor the kernel could use; fails the checks above
    if tensor.raw_data:
        flat = np.frombuffer(tensor.raw_data, dtype=dtype)
    else:
        flat = np.array(tensor.float_data if dtype.kind == "f" else tensor.int64_data, dtype=dtype)
    shape = tuple(tensor.dims)
    if flat.size != int(np.prod(shape, dtype=np.int64)):
        return np.empty(0, dtype=object)
    return np.ascontiguousarray(flat.reshape(shape), dtype=dtype.newbyteorder("="))
