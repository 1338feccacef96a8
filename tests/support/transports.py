"""Both transports for the tests that run a real server: grpc.aio (the reference) and the native
front (extproc/wire/native/), skipped with its reason where it was not built at install.

A test or fixture selects one through EXTPROC_TRANSPORT, which ``extproc serve --transport``
and ServeOptions read as their default, so servers started in-process and as child processes
(tests/support/e2e_support.py, extproc/local/stack.py) both follow it.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from extproc.wire import native_front

TRANSPORTS = [
    pytest.param("python", id="python"),
    pytest.param("native", id="native", marks=pytest.mark.skipif(
        not native_front.available(), reason=f"native front not built: {native_front.why_not()}")),
]


@contextmanager
def using(transport: str) -> Iterator[str]:
    before = os.environ.get("EXTPROC_TRANSPORT")
    os.environ["EXTPROC_TRANSPORT"] = transport
    try:
        yield transport
    finally:
        if before is None:
            os.environ.pop("EXTPROC_TRANSPORT", None)
        else:
            os.environ["EXTPROC_TRANSPORT"] = before
