"""Unit tier only: a test here that opens a socket or starts a process fails, so it cannot hide in
the fast tier; it belongs in tests/component (or tests/e2e with a real Envoy)."""
from __future__ import annotations

import socket
import subprocess
import threading

import pytest


def _refused(original, exempt: set[threading.Thread], what: str):
    def refuse(*args, **kwargs):
        # Threads older than the test (a JWKS refresher a policy of an earlier test started) are not its doing.
        if threading.current_thread() in exempt:
            return original(*args, **kwargs)
        raise AssertionError(f"a unit test {what}: move it to tests/component or tests/e2e")
    return refuse


@pytest.fixture(autouse=True)
def no_sockets_or_processes(monkeypatch):
    earlier = {thread for thread in threading.enumerate() if thread is not threading.current_thread()}
    for method in ("bind", "connect", "connect_ex"):
        original = getattr(socket.socket, method)
        monkeypatch.setattr(socket.socket, method, _refused(original, earlier, f"called socket.{method}"))
    monkeypatch.setattr(subprocess.Popen, "__init__", _refused(subprocess.Popen.__init__, earlier, "started a process"))
    yield
