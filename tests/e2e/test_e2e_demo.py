"""``extproc demo --check``: the one-command demo brings up its own stack and verifies itself."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from e2e_support import require_envoy

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not (REPO / "extproc" / "demo.py").exists(), reason="extproc/demo.py does not exist yet")
def test_demo_check_exits_zero(tmp_path):
    require_envoy()
    result = subprocess.run(
        [sys.executable, "-m", "extproc", "demo", "--check"],
        cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "FAIL" not in result.stdout, result.stdout
