"""The test tiers hold: every test file is in one, helpers are imported as packages (never through
an edited sys.path), and the unit tier refuses sockets and processes."""
from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading

import pytest

from tests.support import REPO

TIERS = {"unit", "component", "e2e"}
PATH_EDIT = re.compile(r"\bsys\.path\s*(\.\s*(insert|append|extend)\b|\[|\+?=)")


def python_files(*folders: str):
    for folder in folders:
        yield from sorted((REPO / folder).rglob("*.py"))


def test_no_code_edits_sys_path():
    edits = [f"{path.relative_to(REPO)}:{n}" for path in python_files("tests", "extproc", "extproc_lab")
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if PATH_EDIT.search(line)]
    assert edits == [], "import helpers as packages (tests.support.*, extproc_lab.*) instead"


def test_the_check_finds_a_path_edit():
    path = "sys." + "path"  # spelled apart so the check above does not find this file
    assert PATH_EDIT.search(path + ".insert(0, str(REPO / 'tests'))")
    assert PATH_EDIT.search(path + "[:0] = [folder]")
    assert not PATH_EDIT.search(f"print({path})")


def test_every_test_file_is_in_a_tier_and_every_folder_is_a_package():
    loose = [path.name for path in (REPO / "tests").glob("test_*.py")]
    assert loose == [], "a test goes in tests/unit, tests/component or tests/e2e"
    folders = {path.parent for path in python_files("tests")}
    assert [str(f.relative_to(REPO)) for f in folders if not (f / "__init__.py").exists()] == []
    assert TIERS <= {f.name for f in folders}


def test_a_unit_test_cannot_open_a_socket_or_start_a_process():
    with socket.socket() as sock, pytest.raises(AssertionError, match="tests/component"):
        sock.bind(("127.0.0.1", 0))
    with pytest.raises(AssertionError, match="started a process"):
        subprocess.run([sys.executable, "-c", "pass"])


def test_a_thread_the_unit_test_starts_is_refused_too():
    refused = []

    def open_socket():
        try:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
        except AssertionError as exc:
            refused.append(str(exc))

    thread = threading.Thread(target=open_socket)
    thread.start()
    thread.join()
    assert refused and "tests/component" in refused[0]
