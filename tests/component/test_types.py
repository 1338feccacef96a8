"""The serving package type-checks: mypy, configured by [tool.mypy] in pyproject.toml, finds no
error in extproc/. mypy comes with the dev extra, so this runs wherever the tests do."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import REPO as ROOT


def test_serving_package_type_checks(tmp_path: Path) -> None:
    # A fresh cache: a stale one can hide an error that a clean clone would report.
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy-cache")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, f"mypy found errors:\n{run.stdout}{run.stderr}"
    assert "Success: no issues found" in run.stdout
