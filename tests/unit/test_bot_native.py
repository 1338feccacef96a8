"""The bot model's native engine (extproc/bot/_trees.c) against onnxruntime, the reference.

The C extension is built by `pip install -e .`; these tests fail, not skip, when it is missing, so a
broken build is not mistaken for a passing one.
"""
from __future__ import annotations

import logging
import random
import sys
from pathlib import Path

import numpy as np
import pytest

import extproc.bot
from extproc.core.durable import DURABLE
from extproc.bot.features import FEATURE_NAMES
from extproc.bot.model import DEFAULT_MODEL, ENGINE_VARIABLE, ModelError, open_model
from extproc.bot.native import Unsupported, read_trees
from extproc.config.compile import parse_policy
from extproc.core.records import read_records, request_from_record
from tests.support import SHARED_DATA
from tests.support.bot_requests import (
    CHROME_UA,
    GOOGLEBOT_IP,
    GOOGLEBOT_UA,
    GPTBOT_UA,
    OPENAI_IP,
    SAFARI_UA,
    chrome_navigation,
    crawler,
    library,
    safari_navigation,
)
from tests.support.onnx_edit import edited_copy

EXTENSION = "extproc.bot._trees"
SHARED_BOT_DATA = SHARED_DATA / "bot" / "train.jsonl"
TOOLS = ["python-requests/2.31.0", "curl/8.5.0", "Go-http-client/1.1", "okhttp/4.11.0", "Wget/1.21.4", "node"]
WIDTH = len(FEATURE_NAMES)


@pytest.fixture(scope="module")
def native():
    return open_model(DEFAULT_MODEL, engine="native")


@pytest.fixture(scope="module")
def reference():
    return open_model(DEFAULT_MODEL, engine="onnxruntime")


def replayed_requests(rng: random.Random) -> list:
    """Browser, library and crawler sessions in time order, several clients each; with ../shared
    present, also the first labelled sessions of the bot data set."""
    requests = []
    t = 1_000.0
    for client in range(60):
        ip = f"198.51.100.{client + 1}"
        kind = client % 6
        for n in range(rng.randrange(3, 30)):
            t += rng.choice([0.05, 0.4, 2.0, 11.0])
            if kind == 0:
                request = chrome_navigation(f"/p/{n}", ip, t=t)
            elif kind == 1:
                request = safari_navigation(f"/p/{n}", ip)
            elif kind in (2, 3):
                ua = rng.choice(TOOLS + [CHROME_UA, SAFARI_UA])
                request = library(ua, f"/api/{n % 7}", ip.replace("198.51.100", "203.0.113"), t=t)
            elif kind == 4:
                request = crawler(GOOGLEBOT_UA, GOOGLEBOT_IP if n % 2 else ip, path=f"/p/{n}")
            else:
                request = crawler(GPTBOT_UA, OPENAI_IP if n % 2 else ip, path="/robots.txt" if n == 0 else f"/p/{n}")
            requests.append(request)
    if SHARED_BOT_DATA.exists():
        requests += [request_from_record(r)[0] for _, r in zip(range(4000), read_records(SHARED_BOT_DATA))]
    return requests


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    """Feature vectors of replayed requests, random ones within each feature's observed range, the
    values the walk branches on (every threshold and its float32 neighbours) and non-finite ones."""
    rng = random.Random(17)
    DURABLE.clear("bot_clients")
    layer = parse_policy("version: 1\ndefaults: {layers: {bot: {action: log}}}\n", "test").default.slots[0].layer
    replayed = np.concatenate([layer.featurizer.facts(r).vector for r in replayed_requests(rng)])
    DURABLE.clear("bot_clients")
    low, high = replayed.min(axis=0), replayed.max(axis=0)
    nprng = np.random.default_rng(17)
    uniform = (low + (high - low) * nprng.random((2000, WIDTH))).astype(np.float32)
    # Mostly replayed vectors with one feature moved onto a branch's threshold or next to it.
    trees = read_trees(DEFAULT_MODEL)
    branches = np.flatnonzero(trees["modes"] != 0)
    base = replayed[nprng.integers(0, len(replayed), size=3 * len(branches))]
    for row, (node, step) in enumerate((node, step) for node in branches for step in (-1, 0, 1)):
        threshold = trees["values"][node]
        toward = {-1: -np.inf, 0: threshold, 1: np.inf}[step]
        base[row, trees["features"][node]] = np.nextafter(threshold, np.float32(toward), dtype=np.float32)
    specials = np.array([np.nan, np.inf, -np.inf, np.finfo(np.float32).max, -np.finfo(np.float32).max,
                         np.finfo(np.float32).tiny, -0.0, 1e-45, -1e-45, 1e30, -1e30], dtype=np.float32)
    odd = replayed[nprng.integers(0, len(replayed), size=2000)].copy()
    mask = nprng.random(odd.shape) < 0.1
    odd[mask] = nprng.choice(specials, size=mask.sum())
    whole = np.repeat(specials[:, None], WIDTH, axis=1)
    return np.ascontiguousarray(np.concatenate([replayed, uniform, base, odd, whole]), dtype=np.float32)


def probabilities(model, vectors: np.ndarray) -> np.ndarray:
    """One call per vector, as the layer calls the model."""
    return np.array([model.probability(vectors[i:i + 1]) for i in range(len(vectors))])


def test_enough_vectors_and_edge_cases(vectors):
    assert len(vectors) >= 10_000
    assert np.isnan(vectors).any() and np.isposinf(vectors).any() and np.isneginf(vectors).any()


def test_native_and_onnxruntime_agree(native, reference, vectors):
    assert native.engine == "native" and native.session is None and reference.engine == "onnxruntime"
    got, expected = probabilities(native, vectors), probabilities(reference, vectors)
    assert np.abs(got - expected).max() <= 1e-6
    assert [native.score(p) for p in got] == [reference.score(p) for p in expected]
    assert len({native.score(p) for p in got}) > 50  # the vectors reach most of the score range


def test_batch_is_one_vector_at_a_time(native, vectors):
    out = np.empty(len(vectors), dtype=np.float32)
    native.native.__self__.probabilities(vectors, out)
    assert np.array_equal(out, probabilities(native, vectors).astype(np.float32))


def test_bad_input(native):
    trees = native.native.__self__
    with pytest.raises(TypeError, match="format 'f'"):
        native.probability(np.zeros((1, WIDTH), dtype=np.float64))
    with pytest.raises(ValueError, match=f"{WIDTH} float32 features"):
        native.probability(np.zeros((1, WIDTH + 1), dtype=np.float32))
    with pytest.raises(ValueError, match="out float32"):
        trees.probabilities(np.zeros((2, WIDTH), dtype=np.float32), np.empty(3, dtype=np.float32))


def test_the_walk_only_moves_forward():
    from extproc.bot._trees import Trees

    def arrays(next_false, modes=(1, 0, 0)):  # one branch and two leaves
        return dict(features=np.zeros(3, np.int32), values=np.array([0.5, -1, 1], np.float32),
                    modes=np.array(modes, np.uint8), missing_true=np.zeros(3, np.uint8),
                    next_false=np.array([next_false, 0, 0], np.int32), roots=np.array([0], np.int32), n_features=1)

    trees = Trees(**arrays(2))
    assert trees.probability(np.array([0.0], np.float32)) == pytest.approx(1 / (1 + np.e))  # x <= 0.5: -1
    assert trees.probability(np.array([0.75], np.float32)) == pytest.approx(1 / (1 + np.exp(-1)))
    with pytest.raises(ValueError, match="after their parent"):
        Trees(**arrays(0))  # a branch back to itself would never end
    with pytest.raises(ValueError, match="after their parent"):
        Trees(**arrays(2, modes=(1, 0, 1)))  # a branch as the last node has no true child
    with pytest.raises(ValueError, match="feature or child"):
        Trees(**{**arrays(2), "features": np.array([1, 0, 0], np.int32)})


# -- graphs the engine implements or refuses -----------------------------------------------------


def edited_model(tmp_path, edit) -> Path:
    return edited_copy(DEFAULT_MODEL, tmp_path, edit)


def attribute(graph, name):
    (found,) = [a for a in graph.node[0].attribute if a.name == name]
    return found


def set_modes(mode: bytes):
    def edit(graph):
        modes = attribute(graph, "nodes_modes").strings
        modes[:] = [m if m == b"LEAF" else mode for m in modes]
    return edit


def missing_tracks(value: int):
    def edit(graph):
        flags = attribute(graph, "nodes_missing_value_tracks_true").ints
        flags[:] = [value] * len(flags)
    return edit


@pytest.mark.parametrize("edit", [set_modes(b"BRANCH_LT"), set_modes(b"BRANCH_GTE"), set_modes(b"BRANCH_GT"),
                                  set_modes(b"BRANCH_EQ"), set_modes(b"BRANCH_NEQ"), missing_tracks(0),
                                  missing_tracks(1)],
                         ids=["LT", "GTE", "GT", "EQ", "NEQ", "missing-false", "missing-true"])
def test_other_modes_and_missing_value_tracks_agree_with_onnxruntime(tmp_path, vectors, edit):
    path = edited_model(tmp_path, edit)
    native, reference = open_model(path, engine="native"), open_model(path, engine="onnxruntime")
    sample = vectors[::3]  # every third: still every threshold, one neighbour of it or another
    assert np.abs(probabilities(native, sample) - probabilities(reference, sample)).max() <= 1e-6


def unknown_mode(graph):
    modes = attribute(graph, "nodes_modes").strings
    modes[0] = b"BRANCH_SOMETIMES"


def missing_attribute(graph):
    graph.node[0].attribute.remove(attribute(graph, "nodes_values"))


def no_logistic(graph):
    attribute(graph, "post_transform").s = b"NONE"


def base_values(graph):
    graph.node[0].attribute.add(name="base_values", floats=[0.1, 0.2], type=6)


def positive_weights(graph):
    weights = attribute(graph, "class_weights").floats
    weights[:] = [abs(w) for w in weights]


def second_class_weight(graph):
    ids = attribute(graph, "class_ids").ints
    ids[0] = 1


def cycle(graph):
    attribute(graph, "nodes_truenodeids").ints[1] = 0  # node 1 of tree 0 branches back to its root


def orphan(graph):
    """A leaf of tree 0, with its weight, that no branch leads to."""
    for name, value in (("nodes_treeids", 0), ("nodes_nodeids", 999), ("nodes_featureids", 0),
                        ("nodes_truenodeids", 0), ("nodes_falsenodeids", 0), ("nodes_missing_value_tracks_true", 0),
                        ("class_treeids", 0), ("class_nodeids", 999), ("class_ids", 0)):
        attribute(graph, name).ints.append(value)
    for name in ("nodes_values", "nodes_hitrates", "class_weights"):
        attribute(graph, name).floats.append(0.5)
    attribute(graph, "nodes_modes").strings.append(b"LEAF")


def extra_node(graph):
    graph.node.add(op_type="Identity", input=["probabilities"], output=["copy"])


def scaled_output(graph):
    (one,) = graph.initializer
    one.float_data[:] = [2.0]


@pytest.mark.parametrize(("edit", "reason"), [
    (unknown_mode, "node modes"),
    (missing_attribute, "missing \\['nodes_values'\\]"),
    (no_logistic, "post_transform"),
    (base_values, "unknown \\['base_values'\\]"),
    (positive_weights, "positive"),
    (second_class_weight, "class 0"),
    (cycle, "twice"),
    (orphan, "no branch leads to"),
    (extra_node, "nodes"),
    (scaled_output, "'one'"),
])
def test_refuses_a_graph_it_does_not_implement(tmp_path, caplog, edit, reason):
    path = edited_model(tmp_path, edit)
    with pytest.raises(Unsupported, match=reason):
        read_trees(path)
    with pytest.raises(ModelError, match="cannot run this graph"):
        open_model(path, engine="native")
    if edit in (no_logistic, scaled_output):  # still models onnxruntime runs: served by it
        with caplog.at_level(logging.INFO, logger="extproc.bot.model"):
            assert open_model(path).engine == "onnxruntime"
        assert "onnxruntime engine, the native tree walker cannot run this graph" in caplog.text


def test_the_unedited_copy_is_accepted(tmp_path):
    assert open_model(edited_model(tmp_path, lambda graph: None)).engine == "native"


# -- engine selection --------------------------------------------------------------------------


def test_falls_back_to_onnxruntime_without_the_extension(monkeypatch, caplog):
    # The import fails as if the extension was never built.
    monkeypatch.setitem(sys.modules, EXTENSION, None)
    monkeypatch.delattr(extproc.bot, "_trees", raising=False)
    monkeypatch.delenv(ENGINE_VARIABLE, raising=False)
    with caplog.at_level(logging.INFO, logger="extproc.bot.model"):
        model = open_model(DEFAULT_MODEL)
    assert model.engine == "onnxruntime"
    assert "onnxruntime engine, the native tree walker is not built" in caplog.text
    assert 0 <= model.probability(np.zeros((1, WIDTH), dtype=np.float32)) <= 1
    with pytest.raises(ModelError, match="not built"):
        open_model(DEFAULT_MODEL, engine="native")


def test_environment_chooses_the_engine(monkeypatch, caplog):
    monkeypatch.delenv(ENGINE_VARIABLE, raising=False)
    with caplog.at_level(logging.INFO, logger="extproc.bot.model"):
        assert open_model(DEFAULT_MODEL).engine == "native"
        monkeypatch.setenv(ENGINE_VARIABLE, "onnxruntime")
        assert open_model(DEFAULT_MODEL).engine == "onnxruntime"
    assert "native engine (C tree walker)" in caplog.text and "onnxruntime engine (requested)" in caplog.text
    monkeypatch.setenv(ENGINE_VARIABLE, "fast")
    with pytest.raises(ModelError, match=ENGINE_VARIABLE):
        open_model(DEFAULT_MODEL)
