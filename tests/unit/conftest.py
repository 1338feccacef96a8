"""Unit tier only: a test here that opens a socket or starts a process fails, so it cannot hide in
the fast tier; it belongs in tests/component (or tests/e2e with a real Envoy)."""
from __future__ import annotations

import socket
import subprocess

import pytest


def _refused(what: str):
    def refuse(*_args, **_kwargs):
        raise AssertionError(f"a unit test {what}: move it to tests/component or tests/e2e")
    return refuse


@pytest.fixture(autouse=True)
def no_sockets_or_processes(monkeypatch):
    for method in ("bind", "connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, method, _refused(f"called socket.{method}"))
    monkeypatch.setattr(subprocess.Popen, "__init__", _refused("started a process"))
    yield
