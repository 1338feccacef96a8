"""The attack model's native engine (extproc/attack/_ngram_bag.c) against onnxruntime, the reference.

The C extension is built by `pip install -e .`; these tests fail, not skip, when it is missing, so a
broken build is not mistaken for a passing one.
"""
from __future__ import annotations

import logging
import random
import sys
import threading

import numpy as np
import pytest

import extproc.attack
from extproc_lab.attack import datagen, payloads
from extproc_lab.attack.dataset import collect
from extproc.attack.features import (
    MULTIPLIER,
    ORDER_SALTS,
    FeatureSpec,
    featurize,
    frame,
)
from extproc.attack.model import DEFAULT_MODEL, ENGINE_VARIABLE, AttackModel, ModelError
from extproc.attack.native import Unsupported, read_weights
from extproc_lab.attack.placement import attack_records
from tests.support.onnx_edit import edited_copy

KERNEL_MODULE = "extproc.attack._ngram_bag"


@pytest.fixture(scope="module")
def native():
    return AttackModel(DEFAULT_MODEL, engine="native")


@pytest.fixture(scope="module")
def reference():
    return AttackModel(DEFAULT_MODEL, engine="onnxruntime")


def edge_values(rng: random.Random) -> list[bytes]:
    """Values the generated traffic does not have: empty and 1-character texts, raw 1-byte values,
    every byte value, long random binary, 64 KB."""
    high = bytes(range(256))
    return [
        frame("", 0, "query:q"), frame("x", 63, "header:x"), frame("é", 1, "json:a"), frame("\udcff", 0, "body"),
        b"x", b"\x00", b"\xff", b"\n", high, high[::-1],
        bytes(rng.randrange(128, 256) for _ in range(3000)),
        frame("ü€😀\u2215" * 500, 5, "form:comment"),
        frame("".join(chr(rng.randrange(32, 127)) for _ in range(65536)), 0, "body"),
        bytes(rng.randrange(256) for _ in range(65536)),
    ]


@pytest.fixture(scope="module")
def requests() -> list[list[bytes]]:
    """Framed values grouped as the layer batches them: one list per request."""
    benign = list(datagen.benign_records(500, seed=31))
    attacks = list(attack_records(payloads.generate_all(10, seed=31), seed=31))[:300]
    grouped = [r.framed for r in collect(benign + attacks) if r.framed]
    rng = random.Random(31)
    edges = edge_values(rng)
    grouped += [edges[i:i + 3] for i in range(0, len(edges), 3)]
    grouped += [[bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))) for _ in range(8)] for _ in range(40)]
    return grouped


def test_enough_values_and_the_edge_cases(requests):
    values = [v for request in requests for v in request]
    assert len(values) >= 3000
    assert min(map(len, values)) == 1 and max(map(len, values)) >= 65536
    assert any(max(v) >= 0x80 for v in values)


def test_rolling_hash_is_featurize_hash():
    # The kernel hashes each n-gram with the rolling hash; featurize with prefix sums. Same ids.
    spec = FeatureSpec()
    rng = random.Random(5)
    values = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))) for _ in range(300)]
    values += [b"\xff" * 9, b"\x00" * 9, bytes(range(250, 256))]
    batch = featurize(values, spec)
    for value, start, end in zip(values, batch.starts, batch.ends):
        expected = np.zeros((len(spec.orders), len(value)), dtype=np.int64)
        for i in range(len(value)):
            h = 0
            for row, k in enumerate(range(1, max(spec.orders) + 1)):
                if i + k > len(value):
                    break
                h = (h * int(MULTIPLIER) + value[i + k - 1]) & 0xFFFFFFFF
                if k in spec.orders:
                    mixed = ((h ^ int(ORDER_SALTS[k])) * int(ORDER_SALTS[0])) & 0xFFFFFFFF
                    expected[spec.orders.index(k), i] = (mixed >> (32 - spec.bits)) + 1
        assert np.array_equal(batch.ids[:, start:end], expected), value


def test_native_and_onnxruntime_agree(native, reference, requests):
    assert native.engine == "native" and reference.engine == "onnxruntime"
    got = np.concatenate([native.probabilities(r) for r in requests])
    expected = np.concatenate([reference.probabilities(r) for r in requests])
    assert got.shape == expected.shape and got.dtype == np.float32
    assert np.abs(got - expected).max() <= 1e-4
    got_scores = np.array([native.scores(column) for column in got.T])
    expected_scores = np.array([reference.scores(column) for column in expected.T])
    assert np.abs(got_scores - expected_scores).max() <= 1
    assert (got_scores == expected_scores).mean() >= 0.999


def test_native_matches_exact_arithmetic(native, requests):
    # In float64, from the same ids and weights: the kernel's only error is float32 rounding.
    # (onnxruntime's is larger on big batches: its per-value sums are differences of one running
    # sum over the whole batch.)
    spec = native.info.spec
    weights = {k: v.astype(np.float64) for k, v in read_weights(DEFAULT_MODEL, spec, len(native.heads)).items()}
    values = [v for request in requests[:300] for v in request]
    batch = featurize(values, spec)
    embedded = weights["table"][batch.ids].sum(axis=0)
    bags = np.array([embedded[s:e].sum(axis=0) for s, e in zip(batch.starts, batch.ends)]) * batch.scale
    hidden = np.maximum(bags @ weights["w1"] + weights["b1"], 0)
    exact = 1 / (1 + np.exp(-(hidden @ weights["w2"] + weights["b2"])))
    assert np.abs(native.raw_probabilities(values) - exact).max() <= 1e-5


def test_empty_batch_and_bad_input(native):
    assert native.probabilities([]).shape == (0, len(native.heads))
    with pytest.raises(ValueError):
        native.probabilities([b"ok", b""])  # featurize cannot scale an empty value either
    with pytest.raises(TypeError):
        native.probabilities(["text, not bytes"])
    with pytest.raises(ValueError, match="out must be float32"):
        native._native.kernel.run([b"x"], np.empty((2, len(native.heads)), dtype=np.float32))


def test_threads_share_one_model(native, requests):
    # The kernel releases the GIL; each call's results must still be its own.
    batch = requests[:50]
    expected = [native.probabilities(r) for r in batch]
    failures = []

    def work():
        for _ in range(20):
            if any(not np.array_equal(native.probabilities(r), e) for r, e in zip(batch, expected)):
                failures.append(1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


# -- engine selection --------------------------------------------------------------------------


def test_falls_back_to_onnxruntime_without_the_extension(monkeypatch, caplog, requests):
    # The import fails as if the extension was never built.
    monkeypatch.setitem(sys.modules, KERNEL_MODULE, None)
    monkeypatch.delattr(extproc.attack, "_ngram_bag", raising=False)
    with caplog.at_level(logging.INFO, logger="extproc.attack.model"):
        model = AttackModel(DEFAULT_MODEL)
    assert model.engine == "onnxruntime"
    assert "onnxruntime engine, the native kernel is not built" in caplog.text
    assert model.probabilities(requests[0]).shape == (len(requests[0]), len(model.heads))
    with pytest.raises(ModelError, match="not built"):
        AttackModel(DEFAULT_MODEL, engine="native")


def test_environment_chooses_the_engine(monkeypatch, caplog):
    with caplog.at_level(logging.INFO, logger="extproc.attack.model"):
        assert AttackModel(DEFAULT_MODEL).engine == "native"
        monkeypatch.setenv(ENGINE_VARIABLE, "onnxruntime")
        assert AttackModel(DEFAULT_MODEL).engine == "onnxruntime"
    assert "native engine (fused C kernel)" in caplog.text and "onnxruntime engine (requested)" in caplog.text
    monkeypatch.setenv(ENGINE_VARIABLE, "fast")
    with pytest.raises(ModelError, match=ENGINE_VARIABLE):
        AttackModel(DEFAULT_MODEL)


def edited_model(tmp_path, edit) -> object:
    return edited_copy(DEFAULT_MODEL, tmp_path, edit)


def nonzero_row_zero(graph):
    (table,) = [t for t in graph.initializer if t.name == "table"]
    values = np.frombuffer(table.raw_data, dtype="<f4").copy()
    values[:4] = 0.5
    table.raw_data = values.tobytes()


def transposed_gemm(graph):
    (gemm,) = [n for n in graph.node if n.op_type == "Gemm" and n.input[1] == "w2"]
    gemm.attribute.add(name="transB", i=1, type=2)


def extra_node(graph):
    graph.node.add(op_type="Identity", input=["probabilities"], output=["copy"])


def weighted_orders(graph):
    (ones,) = [t for t in graph.initializer if t.name == "ones"]
    ones.raw_data = np.array([1, 1, 1, 1, 2], dtype="<f4").tobytes()


@pytest.mark.parametrize(("edit", "reason"), [
    (nonzero_row_zero, "row 0"),
    (transposed_gemm, "nodes"),
    (extra_node, "nodes"),
    (weighted_orders, "'ones'"),
])
def test_refuses_a_graph_it_does_not_implement(tmp_path, caplog, edit, reason):
    path = edited_model(tmp_path, edit)
    spec = FeatureSpec()
    with pytest.raises(Unsupported, match=reason):
        read_weights(path, spec, len(AttackModel(DEFAULT_MODEL).heads))
    with pytest.raises(ModelError, match="cannot run this graph"):
        AttackModel(path, engine="native")
    if edit is nonzero_row_zero:  # still a valid attack model: served by onnxruntime
        with caplog.at_level(logging.INFO, logger="extproc.attack.model"):
            assert AttackModel(path).engine == "onnxruntime"
        assert "row 0" in caplog.text


def test_the_unedited_copy_is_accepted(tmp_path):
    assert AttackModel(edited_model(tmp_path, lambda graph: None)).engine == "native"


def test_weights_beyond_the_kernels_limits_are_unsupported(monkeypatch):
    import extproc.attack.native as native_module

    spec = FeatureSpec()
    rows = 2 ** spec.bits + 1
    odd_width = {"table": np.zeros((rows, 6), np.float32), "w1": np.zeros((6, 8), np.float32),
                 "b1": np.zeros(8, np.float32), "w2": np.zeros((8, 12), np.float32), "b2": np.zeros(12, np.float32)}
    monkeypatch.setattr(native_module, "read_weights", lambda *args: odd_width)
    with pytest.raises(Unsupported, match="weight shapes"):  # 6 dimensions: not a multiple of 4
        native_module.NativeEngine(DEFAULT_MODEL, spec, 12)


def test_damaged_weights_are_refused_by_the_native_engine_not_a_crash(tmp_path):
    def odd_table(graph):
        (table,) = [t for t in graph.initializer if t.name == "table"]
        table.raw_data = table.raw_data[:-1]  # not a whole number of float32s

    path = edited_model(tmp_path, odd_table)
    with pytest.raises(ModelError, match="cannot run this graph: unreadable weights"):
        AttackModel(path, engine="native")
    # auto: the native engine steps aside and onnxruntime, the reference, judges the file itself.
    with pytest.raises(ModelError, match="cannot load the ONNX model"):
        AttackModel(path)
