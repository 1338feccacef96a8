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


def test_the_shipped_model_calibrates_paths_and_still_stops_hostile_ones():
    meta = json.loads(metadata_path(DEFAULT_MODEL).read_text())["calibration"]["locations"]["path"]
    assert meta["logit_offset"] < 0 and meta["held_out_fp_after"] < meta["held_out_fp_before"]
    policy = policy_with()
    assert all(allowed(policy, path) for path in ORDINARY)
    assert not any(allowed(policy, path) for path in HOSTILE)


def test_without_the_path_calibration_ordinary_paths_are_judged_as_values(tmp_path):
    """What the calibration is for: the same model without it flags paths of tools and languages."""
    model = tmp_path / "attack.onnx"
    shutil.copy(DEFAULT_MODEL, model)
    meta = json.loads(metadata_path(DEFAULT_MODEL).read_text())
    del meta["calibration"]["locations"]
    metadata_path(model).write_text(json.dumps(meta))
    assert not load_model(model).info.location_offsets
    uncalibrated = policy_with(model)
    assert not all(allowed(uncalibrated, path) for path in ORDINARY)
    assert not any(allowed(uncalibrated, path) for path in HOSTILE)


@pytest.mark.parametrize("path", ORDINARY)
def test_a_calibrated_path_still_counts_in_a_request_with_a_hostile_value(path):
    decision = Transaction(policy_with(), Request("GET", f"{path}?q=%27%20UNION%20SELECT%20password%20FROM%20users--")).on_headers()
    assert not decision.allowed and "attack:worst=query:q" in decision.reasons
