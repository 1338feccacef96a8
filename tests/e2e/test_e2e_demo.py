"""``extproc demo --check``: the one-command demo brings up its own stack and verifies itself."""
from __future__ import annotations

import subprocess
import sys

from tests.support.e2e_support import require_envoy



def test_demo_check_exits_zero(tmp_path):
    require_envoy()
    result = subprocess.run(
        [sys.executable, "-m", "extproc", "demo", "--check"],
        cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "FAIL" not in result.stdout, result.stdout


def test_the_demo_api_route_keeps_the_default_rules_through_envoy(tmp_path):
    """Issue 18: the api route's own rules used to replace the defaults, so /api/.git/config passed."""
    from tests.support.e2e_support import get, metric_value, register_stack, scrape, unregister

    from extproc.local.envoy import free_port
    from extproc.local.stack import DEMO_POLICY, Stack

    require_envoy()
    metrics_port = free_port()
    stack = Stack(DEMO_POLICY, workdir=tmp_path, sidecar_args=["--metrics-address", f"127.0.0.1:{metrics_port}"])
    register_stack("demo stack", stack)
    try:
        stack.start()
        tool = (("user-agent", "curl/8.5.0"), ("accept", "*/*"))  # automation: logged and tagged, not denied
        assert get(stack.listen_port, "/api/orders", headers=tool).status == 200  # the route serves
        assert get(stack.listen_port, "/api/.git/config", headers=tool).status == 403
        scanner = (("user-agent", "sqlmap/1.7.2#stable (https://sqlmap.org)"), ("accept", "*/*"))
        assert get(stack.listen_port, "/api/orders?id=7", headers=scanner).status == 403
        metrics = scrape(metrics_port)
    finally:
        stack.stop()
        unregister(stack)
    # Denied on the api route, by the default rules it inherits (not by another layer).
    assert metric_value(metrics, "extproc_decisions_total", route="api", action="deny") == 2
    assert metric_value(metrics, "extproc_rule_hits_total", rule="block-dotfiles", mode="enforce") == 1
    assert metric_value(metrics, "extproc_rule_hits_total", rule="block-scanners", mode="enforce") == 1
