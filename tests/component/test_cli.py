"""The command line as an operator meets it: refusing to start on a bad policy, and help."""
from __future__ import annotations

import json
import subprocess
import sys


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "extproc", *args], capture_output=True, text=True, timeout=timeout)


def test_serve_refuses_an_invalid_policy_with_the_yaml_path(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nroutes:\n  - name: api\n    match: {grups: [a]}\n")
    result = run("serve", "--config", str(policy), "--address", "127.0.0.1:0")
    assert result.returncode == 1
    logged = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    problems = [p for entry in logged for p in entry.get("problems", [])]
    assert "routes[0].match: unknown key 'grups'" in problems


def test_serve_without_a_policy_says_how_to_give_one():
    result = run("serve", "--address", "127.0.0.1:0")
    assert result.returncode == 2
    assert "--config" in result.stderr


def test_serve_refuses_a_missing_policy_file(tmp_path):
    result = run("serve", "--config", str(tmp_path / "absent.yaml"), "--address", "127.0.0.1:0")
    assert result.returncode == 1
    assert "cannot read" in result.stderr


def test_no_command_prints_help():
    result = run()
    assert result.returncode == 2
    assert "serve" in result.stderr and "check-config" in result.stderr and "score" in result.stderr
