"""Every tier: state a process keeps across policies starts empty for each test."""
from __future__ import annotations

import pytest

from extproc.access.service_tokens import LOCKOUT


@pytest.fixture(autouse=True)
def no_locked_out_sources():
    """Service-token lockouts outlive policy reloads by design; one test's guessing must not lock
    the next test's requests out."""
    LOCKOUT.sources.clear()
    yield
    LOCKOUT.sources.clear()
