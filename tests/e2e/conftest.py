"""End-to-end tier: every test talks HTTP to a real Envoy in front of the real sidecar process."""
from __future__ import annotations

import pytest

from tests.support import e2e_support
from tests.support.transports import TRANSPORTS, using


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    # A failing setup or test gets the logs of every process that was running for it.
    if report.failed and call.when in ("setup", "call"):
        for title, text in e2e_support.log_sections():
            report.sections.append((title, text))


@pytest.fixture(scope="module")
def idp():
    """An identity provider for the module: an RSA signing key and its JWKS served on loopback."""
    from extproc_lab.keys import JwksServer, jwks, new_key

    key = new_key("rsa", "corp-2026")
    server = JwksServer(jwks(key))
    yield key, server
    server.close()


@pytest.fixture(scope="module", params=TRANSPORTS)
def transport(request):
    """The sidecar's transport for a module's stacks: modules of fault paths use it (``pytestmark``)
    and run once per transport; the others serve with the default, the native front when built."""
    with using(request.param):
        yield request.param
