"""URL paths have their own operating point (issue 21, item 4): plain paths (ordinary path
characters, nothing decoded) are judged against a point set on real paths, so paths naming tools,
languages or files pass; a path with injection metacharacters or a decoded payload is judged as any
value. The offset comes from the model's metadata (extproc_lab/attack/calibrate_paths.py)."""
from __future__ import annotations

import json
import shutil

import pytest

from extproc.attack.features import frame
from extproc.attack.model import DEFAULT_MODEL, load_model, metadata_path, plain_path
from extproc.attack.normalize import normalize
from extproc.config.compile import parse_policy
from extproc.core.request import Request
from extproc.core.transaction import Transaction

ORDINARY = ("/scripts/python/setup.py", "/files/logstash/", "/downloads/report,2024,final.pdf",
            "/bin/bash-5.2.tar.gz", "/cgi-bin/test.cgi")
HOSTILE = ("/x/<script>alert(1)</script>", "/a/;cat%20/etc/passwd", "/search/' or 1=1--",
           "/files/PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg")


def policy_with(model_path=None):
    model = f", model: {model_path}" if model_path else ""
    return parse_policy(f"version: 1\ndefaults: {{layers: {{attack: {{memo_entries: 0{model}}}}}}}\n")


def allowed(policy, path) -> bool:
    return Transaction(policy, Request("GET", path)).on_headers().allowed


def test_plain_paths_are_told_from_paths_with_metacharacters_or_decodings():
    def framed(text):
        return frame(*normalize(text), "path")

    assert all(plain_path(framed(path)) for path in ORDINARY)
    assert not any(plain_path(framed(path)) for path in ("/x/<b>", "/a;b", "/q'", "/%2561", "/$(id)"))


def test_the_shipped_model_passes_real_paths_and_stops_hostile_ones():
    meta = json.loads(metadata_path(DEFAULT_MODEL).read_text())["calibration"]["locations"]["path"]
    # Measured on the paths of hosts the model never trained on (the held-out half of the real URLs).
    assert meta["logit_offset"] <= 0 and meta["held_out_fp_after"] <= 0.001
    policy = policy_with()
    assert all(allowed(policy, path) for path in ORDINARY)
    assert not any(allowed(policy, path) for path in HOSTILE + TRAVERSAL)


TRAVERSAL = ("/etc/shadow", "/static/..%2f..%2f..%2fetc/shadow")  # plain characters, then not


def test_the_paths_offset_applies_to_plain_paths_only(tmp_path):
    """A path made of ordinary characters is judged at the paths' point; one with metacharacters or a
    decoded payload never is, however lenient that point."""
    model = tmp_path / "attack.onnx"
    shutil.copy(DEFAULT_MODEL, model)
    meta = json.loads(metadata_path(DEFAULT_MODEL).read_text())
    meta["calibration"]["locations"]["path"]["logit_offset"] = -50.0
    metadata_path(model).write_text(json.dumps(meta))
    lenient = policy_with(model)
    assert allowed(lenient, TRAVERSAL[0])  # plain characters: the (absurd) offset applies
    assert not any(allowed(lenient, path) for path in HOSTILE + TRAVERSAL[1:])


@pytest.mark.parametrize("path", ORDINARY)
def test_a_calibrated_path_still_counts_in_a_request_with_a_hostile_value(path):
    decision = Transaction(policy_with(), Request("GET", f"{path}?q=%27%20UNION%20SELECT%20password%20FROM%20users--")).on_headers()
    assert not decision.allowed and "attack:worst=query:q" in decision.reasons
