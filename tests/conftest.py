"""Every tier: state a worker keeps across policy reloads starts empty for each test."""
from __future__ import annotations

import pytest

from extproc.core.durable import DURABLE

# Kept across reloads by design (extproc/core/durable.py); one test's callers must not spend the next
# test's allowance, lock its requests out or make its clients look like bots by their history.
PER_TEST = ("service_token_lockout", "rate_limiters", "ai_budgets", "bot_clients")


@pytest.fixture(autouse=True)
def fresh_allowances():
    for kind in PER_TEST:
        DURABLE.clear(kind)
    yield
