"""The grammar-based payload generator: counts, distinctness, determinism, evasions, speed."""
from __future__ import annotations

import hashlib
import html
import json
import os
import random
import re
import subprocess
import sys
import time
from urllib.parse import unquote

import pytest

from extproc.attack.normalize import normalize
from extproc_lab.attack import payload_data, payloads
from extproc_lab.attack.payloads import FAMILIES, benign_lookalikes, evade, generate, generate_all
from tests.support import REPO

N = 2000


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[str]]:
    return {family: generate(family, N, seed=11) for family in FAMILIES}


def test_families_are_the_fourteen_classes():
    assert FAMILIES == ("sqli", "xss", "rce", "lfi", "ssti", "ssrf", "xxe", "nosqli", "ldapi", "crlf", "xpathi",
                        "open-redirect", "prototype-pollution", "ssi")


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_gives_the_requested_count_of_distinct_usable_values(corpus, family):
    values = corpus[family]
    assert len(values) == N
    assert len(set(values)) == N  # generate() never repeats itself (>= 95% was the bar)
    for value in values:
        assert isinstance(value, str) and value.strip()
        assert len(value) <= payloads.MAX_CHARS
        assert not payloads.SAFE_VALUE.match(value), value  # the extractor would skip it unscored
        assert not payloads.SAFE_VALUE.match(normalize(value)[0]), value


@pytest.mark.parametrize("family", FAMILIES)
def test_payloads_stay_diverse_once_normalised(corpus, family):
    # Evasions that normalize() undoes do not count as diversity: the canonical forms must differ too.
    canonical = {normalize(value)[0] for value in corpus[family]}
    assert len(canonical) >= 0.85 * N, (family, len(canonical))


MARKERS = {
    "sqli": r"select|union|\bor\b|\band\b|sleep|order by|group by|having|waitfor|benchmark|xp_|exec|drop|insert|update|"
            r"delete|case when|shutdown|revoke|'|\"|--|#|\d\s*[-*/^|&]",
    "xss": r"<[a-z!?/]|javascript:|on[a-z]+=|\{\{|alert|prompt|confirm|data:|vbscript:|\$\{|'[;+-]|\"[;+-]|\]\(|\*/|document",
    "rce": r"[;|&`$\n]|[<>]\(|\(\)|system|exec|popen|import|require|runtime|process|jndi|\bid\b|whoami|cat |powershell|certutil|"
           r"cmd|type |dir |net |ipconfig|systeminfo|tasklist|calc|ver|wmic|reg |sc |schtasks|mshta|regsvr32",
    "lfi": r"\.\.|/etc/|php://|file:|c:|\\|/proc/|web-inf|meta-inf|\.env|zip://|phar://|expect://|data:|https?://|win\.ini|"
           r"boot\.ini|%|^/",
    "ssti": r"\{\{|\$\{|<%|#\{|\{%|#set|@\(|@\{|@system|@environment|\*\{|\{\$|\[\[|\{[a-z]|__|\$class|#foreach|\[=|\{php\}|\[\(|"
            r"\{\w+\*|^- |^#|\$[a-z]+\.",
    "ssrf": r"://|^//|\[::|localhost|127\.|169\.254|metadata|^[\d.:\[\]]+|\.local|\.internal|svc|:\d+",
    "xxe": r"<!doctype|<!entity|xinclude|<svg|<\?xml",
    "nosqli": r"\$[a-z]+|\|\||&&|sleep|this\.|return|db\.|function|while|process|\[\$?ne\]|'",
    "ldapi": r"\*|\)\(|\(\||\(&|%00|\\00|\\2a|\)",
    "xpathi": r"'|\"|//|count\(|name\(|\bor\b|\band\b|\||text\(\)|node\(\)|/ |^/",
    "open-redirect": r"//|\\|https?:|javascript:|data:|@|%2f|%5c|/",
    "prototype-pollution": r"__proto__|constructor|prototype|__pro",
    "ssi": r"<!--#|<esi:|<!--esi|<!--\s*#",
}


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "crlf"])
def test_payloads_carry_their_family_markers(corpus, family):
    # Looked for in the canonical form, or in the decoded value (normalize() folds "\n" separators into spaces).
    marker = re.compile(MARKERS[family], re.I)
    missing = [v for v in corpus[family] if not marker.search(normalize(v)[0]) and not marker.search(_decoded(v))]
    assert len(missing) <= 0.03 * N, (family, len(missing), missing[:5])


def _decoded(value: str) -> str:
    """Percent- and entity-decoded, but with the whitespace normalize() would collapse."""
    for _ in range(3):
        value = unquote(value)
    return html.unescape(html.unescape(value))


def test_crlf_payloads_carry_a_newline_in_some_encoding(corpus):
    newline = re.compile(r"\r|\n|%u000[da]|\\r|\\n|\u560a|\u560d|\u010d|\u010a", re.I)
    missing = [v for v in corpus["crlf"] if not newline.search(_decoded(v))]
    assert len(missing) <= 0.03 * N, missing[:5]


def test_xxe_values_are_xml():
    for value in generate("xxe", 300, seed=2):
        text = normalize(value)[0]
        assert text.startswith("<"), value


def test_generate_is_deterministic_and_seed_dependent():
    for family in FAMILIES:
        first = generate(family, 300, seed=5)
        assert first == generate(family, 300, seed=5)
        other = generate(family, 300, seed=6)
        assert len(set(first) & set(other)) < 0.2 * 300, family


def test_shorter_list_is_a_prefix_of_a_longer_one():
    assert generate("sqli", 50, seed=9) == generate("sqli", 500, seed=9)[:50]


def test_families_draw_from_independent_streams():
    assert generate("xss", 20, seed=1) != generate("xss", 20, seed=2)
    assert set(generate("sqli", 200, seed=1)).isdisjoint(generate("xss", 200, seed=1))


def test_output_does_not_depend_on_string_hashing():
    # Seeds come from seed*1000 + family index, never hash(): other hash seeds give the same payloads.
    code = ("import hashlib;from extproc_lab.attack.payloads import generate_all, benign_lookalikes;"
            "d=hashlib.sha256(repr((generate_all(40, 3), benign_lookalikes(100, 3))).encode()).hexdigest();print(d)")
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                              cwd=REPO)
        digests.add(done.stdout.strip())
    local = hashlib.sha256(repr((generate_all(40, 3), benign_lookalikes(100, 3))).encode()).hexdigest()
    assert digests == {local}


def test_generate_all_counts_labels_and_no_duplicates():
    pairs = generate_all(100, seed=4)
    assert len(pairs) == 100 * len(FAMILIES)
    assert [f for _, f in pairs] == [f for f in FAMILIES for _ in range(100)]
    assert len({v for v, _ in pairs}) == len(pairs)
    assert [v for v, f in pairs if f == "sqli"] == generate("sqli", 100, seed=4)  # first family: same stream

    some = generate_all({"xss": 30, "ssi": 5}, seed=4)
    assert sorted({f for _, f in some}) == ["ssi", "xss"]
    assert len(some) == 35
    with pytest.raises(ValueError):
        generate_all({"sql": 3}, seed=1)
    with pytest.raises(ValueError):
        generate("sql", 3, seed=1)


def test_generate_speed():
    start = time.perf_counter()
    for family in FAMILIES:
        generate(family, N, seed=123)
    assert time.perf_counter() - start < 10


# ------------------------------------------------------------------------------------------ evade

ROUND_TRIP = [
    "' union select password from users--",
    "1' or '1'='1' -- ",
    "<svg onload=alert(document.domain)>",
    "\"><img src=x onerror=prompt(1)>",
    "../../../../etc/passwd",
    "; cat /etc/passwd && id",
    "{{config.__class__.__init__.__globals__['os'].popen('id').read()}}",
    "http://169.254.169.254/latest/meta-data/",
    "*)(uid=*))(|(uid=*",
    "<!--#exec cmd=\"ls -la\" -->",
    "{\"username\": {\"$ne\": null}}",
    "__proto__[isAdmin]=true",
]


@pytest.mark.parametrize("value", ROUND_TRIP)
@pytest.mark.parametrize("mode", ["special", "some", "all", "double", "iis"])
def test_url_encoding_normalises_back(value, mode):
    rng = random.Random(7)
    encoded = payloads._ev_url(value, rng, mode)
    assert encoded != value
    assert normalize(encoded)[0] == normalize(value)[0]


@pytest.mark.parametrize("value", ROUND_TRIP)
@pytest.mark.parametrize("mode", ["special", "some", "all"])
def test_html_entities_normalise_back(value, mode):
    for seed in range(5):  # decimal, hex, padded, named, with and without ';'
        encoded = payloads._ev_html(value, random.Random(seed), mode)
        assert encoded != value
        assert normalize(encoded)[0] == normalize(value)[0], encoded


@pytest.mark.parametrize("value", ROUND_TRIP)
def test_escapes_and_fullwidth_normalise_back(value):
    for seed in range(4):
        rng = random.Random(seed)
        for style in ("x", "u", "ub", "oct"):
            assert normalize(payloads._ev_backslash(value, rng, style))[0] == normalize(value)[0]
        assert normalize(payloads._ev_fullwidth(value, rng))[0] == normalize(value)[0]


def test_stacked_encodings_normalise_back():
    value = "<script>alert(1)</script>"
    rng = random.Random(3)
    layered = payloads._ev_url(payloads._ev_html(payloads._ev_fullwidth(value, rng), rng, "special"), rng, "special")
    assert normalize(layered)[0] == normalize(value)[0]


def test_evade_always_changes_the_value():
    rng = random.Random(1)
    for family in FAMILIES:
        for value in generate(family, 150, seed=8):
            assert evade(value, rng, family) != value
    for value in ROUND_TRIP + ["plain words only"]:
        assert evade(value, rng) != value  # family guessed from the value


def test_evade_is_deterministic_for_a_generator_state():
    value = "' union select null,version()-- "
    assert evade(value, random.Random(4), "sqli") == evade(value, random.Random(4), "sqli")


def test_attacker_evasions_keep_the_payload_recognisable():
    # Rewrites (comments, case, concatenation, traversal spellings) change the text but keep its substance.
    rng = random.Random(2)
    sql = [evade("' union select username,password from users-- ", rng, "sqli") for _ in range(200)]
    assert any("/**/" in v or "/*!" in v for v in sql)
    assert any(re.search(r"SeLeCt|SELECT|UnIoN|UNION|Select", v) for v in sql)
    assert any("%27" in v or "%2527" in v for v in sql)
    xss = [evade("<svg onload=alert(1)>", rng, "xss") for _ in range(200)]
    assert any(re.search(r"<s[Vv][Gg]|<SVG|<Svg", v) for v in xss)
    assert any("&#" in v or "&lt" in v for v in xss)
    lfi = [evade("../../../etc/passwd", rng, "lfi") for _ in range(200)]
    assert any("..%2f" in v.lower() or "%2e%2e" in v.lower() or "....//" in v or "..%c0%af" in v.lower() for v in lfi)
    assert any("%00" in v for v in lfi)
    rce = [evade("; cat /etc/passwd", rng, "rce") for _ in range(200)]
    assert any("${IFS}" in v or "$IFS" in v for v in rce)
    assert any(re.search(r"c['\"\\$]", v) for v in rce)


def test_sql_concatenation_rewrites_only_real_literals():
    rng = random.Random(0)
    value = "admin' and 57=57 && 'admin'='admin"
    for _ in range(20):
        out = payloads._ev_sql_concat(value, rng)
        assert out.startswith("admin' and 57=57 && ")  # the closing quote and the tautology are untouched


# --------------------------------------------------------------------------------------- benign

def test_benign_lookalikes_are_distinct_usable_and_deterministic():
    values = benign_lookalikes(5000, seed=1)
    assert len(values) == len(set(values)) == 5000
    assert values == benign_lookalikes(5000, seed=1)
    assert values[:100] == benign_lookalikes(100, seed=1)
    assert values != benign_lookalikes(5000, seed=2)
    for value in values:
        assert value.strip() and not payloads.SAFE_VALUE.match(value)


def test_benign_lookalikes_share_the_characters_of_attacks():
    values = benign_lookalikes(5000, seed=3)
    share = lambda pattern: sum(bool(re.search(pattern, v, re.I)) for v in values) / len(values)  # noqa: E731
    assert share(r"'") > 0.05
    assert share(r"[<>]") > 0.02
    assert share(r"&") > 0.05
    assert share(r"\b(select|drop|union|update|insert|delete|order|group|where|from|join|sleep|exec)\b") > 0.01
    assert share(r"/") > 0.2
    assert share(r"[^\x00-\x7f]") > 0.1  # multilingual
    assert share(r"https?://|www\.") > 0.03


def test_benign_lookalikes_do_not_collide_with_attacks():
    attacks = {v for v, _ in generate_all(1000, seed=5)}
    assert attacks.isdisjoint(benign_lookalikes(10000, seed=5))


def test_the_grammar_data_still_writes_what_the_committed_model_was_trained_on():
    # sha256 of the output of the grammar as Python literals (before its data moved to
    # extproc_lab/data/payloads/*.json): the same seed must give the same training data, or
    # models/attack.onnx no longer reproduces. Editing a data file on purpose means retraining.
    digest = lambda value: hashlib.sha256(json.dumps(value, ensure_ascii=False).encode()).hexdigest()  # noqa: E731
    assert digest(generate_all(40, 7)) == "125af54c5f2db03d8e1ba8f0cb6e58fc5d560b07fbb3b5f7b1231d17141b532c"
    assert digest(benign_lookalikes(400, 7)) == "87453a4358e8bdbab3c5db76b2d220d78ed25ff773e42926b5e63e0646797eb0"


def test_a_slot_defined_in_two_data_files_is_refused(tmp_path, monkeypatch):
    (tmp_path / "a.json").write_text(json.dumps({"slots": {"greeting": ["hi"]}}))
    (tmp_path / "b.json").write_text(json.dumps({"slots": {"greeting": [[2, "hello"]]}}))
    monkeypatch.setattr(payload_data, "DATA_DIR", tmp_path)
    payload_data._section.cache_clear()
    try:
        with pytest.raises(ValueError, match="b.json: slot 'greeting' is defined twice"):
            payload_data.slots()
    finally:
        payload_data._section.cache_clear()
