"""The attack model's token-class channel: what the lexer sees, one lexer in C and Python, and a
model trained with the channel served the same by both engines."""
from __future__ import annotations

import json
import random
from dataclasses import replace

import numpy as np
import pytest

from extproc.attack import tokens
from extproc.attack.features import FeatureSpec, frame, with_tokens
from extproc.attack.normalize import normalize
from extproc_lab.attack import datagen, payloads
from extproc_lab.attack.dataset import collect
from extproc_lab.attack.placement import attack_records, benign_value_records

CLASSES = json.loads(tokens.LEXICON_FILE.read_text())["classes"]


def names(text: str) -> list[str]:
    """The token classes of a value as the model sees it (normalised), by name."""
    normalized, _flags = normalize(text)
    out = []
    for byte in tokens.token_classes(normalized.encode("utf-8", "surrogateescape")):
        number = byte - tokens.BASE
        if number < len(CLASSES):
            out.append(CLASSES[number])
        elif number >= tokens.FIRST_PUNCTUATION:
            out.append(chr(tokens.PUNCTUATION[number - tokens.FIRST_PUNCTUATION]))
        elif number >= tokens.FIRST_OPERATOR:
            out.append(tokens.OPERATORS[number - tokens.FIRST_OPERATOR].decode())
        else:
            out.append({tokens.NUMBER: "number", tokens.HEX_NUMBER: "hex", tokens.CONTROL: "control",
                        tokens.LINE_BREAK: "line-break", tokens.NON_ASCII: "non-ascii",
                        tokens.TAG_OPEN: "tag-open"}[number])
    return out


def test_spelling_changes_nothing_structure_does():
    tautology = ["'", "sql", "number", "=", "number", "--"]
    assert names("' or 1=1 --") == tautology
    assert names("'  OR/**/1=1--") == tautology
    assert names("%27%20Or%201%3D1--") == tautology
    assert names("union select") == names("UnIoN/**/SeLeCt") == ["sql", "sql"]
    assert names("<img src=x onerror=alert(1)>") == [
        "tag-open", "html-tag", "script", "=", "word", "html-event", "=", "script", "(", "number", ")", ">"]
    assert names("${jndi:ldap://evil/a}") == ["${", "java", ":", "scheme", "://", "word", "/", "word", "}"]
    assert names(";cat /etc/passwd") == [";", "shell", "/", "file", "/", "file"]
    assert names("../../../etc/passwd").count("../") == 3
    assert names("sleep(5)") == ["sql-function", "(", "number", ")"]
    assert names("myfunc (x)")[0] == "call" and names("myfunc x")[0] == "word"
    assert names("0x41 0x 1.2.3.4") == ["hex", "number", "word", "number"]
    assert names("caf\u00e9 bar") == ["word", "non-ascii", "word"]


def test_ordinary_text_is_words_and_punctuation():
    assert set(names("Hello, my friend! See you at 5.")) <= {"word", ",", "!", "number", ".", "file", "shell"}
    assert names("john.smith@example.com") == ["word", ".", "word", "@", "word", ".", "word"]


def corpus() -> list[bytes]:
    """Normalised values of generated attacks and ordinary traffic, and random bytes."""
    records = [*attack_records(payloads.generate_all(20, seed=3), seed=3),
               *benign_value_records(payloads.benign_lookalikes(400, seed=4), seed=4),
               *datagen.benign_records(300, seed=5)]
    values = [framed[3:-1] for record in collect(records) for framed in record.framed]
    rng = random.Random(9)
    alphabet = b"ab0x9_ .</>-*$(){}#%?|&!'\"\\:\x01\x00\x7f\x80\xc3\xa9" + b"selectunion"
    values += [bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 60))) for _ in range(3000)]
    values += [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300))) for _ in range(500)]
    values += [b"", b"0x", b"0", b"<", b"..", b"../", b"a" * 33 + b"(", b"SELECT", b"x" * 70000]
    return values


def test_the_c_lexer_is_the_python_lexer():
    lexer = tokens.native_lexer()
    if lexer is None:
        pytest.skip("the C extension is not built")
    values = corpus()
    assert len(values) > 4000
    mismatched = [v for v in values if lexer.classes(v) != tokens.token_classes(v)]
    assert mismatched == []


def test_a_lexicon_with_a_word_twice_or_upper_case_is_refused(tmp_path):
    data = json.loads(tokens.LEXICON_FILE.read_text())
    twice = {**data, "words": {**data["words"], "nosql": [*data["words"]["nosql"], "select"]}}
    upper = {**data, "words": {**data["words"], "nosql": ["Where"]}}
    for broken in (twice, upper):
        path = tmp_path / "lexicon.json"
        path.write_text(json.dumps(broken))
        with pytest.raises(ValueError):
            tokens.Lexicon(path)


def test_framed_values_carry_their_classes_after_the_marker():
    framed = frame(*normalize("' or 1=1"), "query:q")
    extended = with_tokens(framed)
    assert extended.startswith(framed + b"\x04") and len(extended) == len(framed) + 1 + 5
    assert with_tokens(b"x") == b"x\x04"  # shorter than a frame: no text, no classes


@pytest.fixture(scope="module")
def token_model(tmp_path_factory):
    pytest.importorskip("onnx")
    from extproc_lab.attack.train import TrainConfig, fit, save, split_validation

    values = collect([*attack_records(payloads.generate_all(40, seed=1), seed=1),
                      *benign_value_records(payloads.benign_lookalikes(600, seed=2), seed=2)])
    config = replace(TrainConfig(), epochs=1, target_fp=0.05, spec=FeatureSpec(tokens=tokens.VERSION))
    train, validation = split_validation(values, 0.2, config.seed)
    out = tmp_path_factory.mktemp("tokens") / "attack.onnx"
    save(fit(train, validation, config, log=lambda _m: None), out, {"files": [], "generated": "test", "sha256": "0" * 64})
    return out, [r.framed for r in validation if r.framed]


def test_a_token_model_scores_the_same_on_both_engines(token_model):
    from extproc.attack.model import AttackModel

    path, requests = token_model
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["feature_spec"]["tokens"] == tokens.VERSION
    assert meta["feature_spec"]["lexicon_sha256"] == tokens.lexicon().digest
    reference = AttackModel(path, engine="onnxruntime")
    if tokens.native_lexer() is None:
        pytest.skip("the C extension is not built")
    native = AttackModel(path, engine="native")
    got = np.concatenate([native.probabilities(r) for r in requests])
    expected = np.concatenate([reference.probabilities(r) for r in requests])
    assert np.abs(got - expected).max() <= 1e-4


def test_both_engines_use_the_channel(token_model, tmp_path):
    from extproc.attack.model import AttackModel

    path, requests = token_model
    copy = tmp_path / "attack.onnx"  # the same weights, told there is no token channel
    copy.write_bytes(path.read_bytes())
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["feature_spec"]["tokens"] = 0
    copy.with_suffix(".json").write_text(json.dumps(meta))
    values = [v for request in requests for v in request]
    engines = ["onnxruntime"] + (["native"] if tokens.native_lexer() is not None else [])
    for engine in engines:
        with_channel = AttackModel(path, engine=engine).raw_probabilities(values)
        without = AttackModel(copy, engine=engine).raw_probabilities(values)
        assert np.abs(with_channel - without).max() > 0.05, engine


def test_a_model_trained_with_another_lexicon_is_refused(token_model, tmp_path):
    from extproc.attack.model import AttackModel, ModelError

    path, _ = token_model
    copy = tmp_path / "attack.onnx"
    copy.write_bytes(path.read_bytes())
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["feature_spec"]["lexicon_sha256"] = "0" * 64
    copy.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="another lexicon.json"):
        AttackModel(copy, engine="onnxruntime")
