"""Hot reload under traffic: the policy file changes (and is briefly broken) while allowed
requests keep flowing; none of them may fail, and each valid policy takes effect."""
from __future__ import annotations

import threading
import time

import pytest
from e2e_support import (
    echo_values,
    get,
    started_stack,
    wait_for,
    write_policy,
)


def policy(version: str, denied: list[str]) -> str:
    """A valid policy: denies the given paths, tags /tagged with the version, allows the rest."""
    deny_rules = "".join(
        f"""
        - id: deny-{name}
          match: {{path: {{exact: /{name}}}}}
          action: deny"""
        for name in denied
    )
    return f"""
version: 1
defaults:
  layers:
    rules:
      rules:{deny_rules}
        - id: version-tag
          match: {{path: {{prefix: /tagged}}}}
          action: tag
          tags: [{version}]
"""


POLICY_A = policy("v-a", ["deny-a"])
POLICY_B = policy("v-b", ["deny-a", "deny-b"])
POLICY_C = policy("v-c", ["deny-c"])
INVALID_YAML = "version: 1\ndefaults: {layers: [unclosed\n"
# Well-formed YAML the schema rejects; applied, it would deny everything.
INVALID_SCHEMA = """
version: 1
defaults:
  layers:
    rules:
      rules:
        - id: deny-everything
          match: {path: {prefix: /}}
          action: deny-all
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with started_stack("reload stack", POLICY_A, tmp_path_factory.mktemp("reload"),
                       sidecar_args=["--reload-interval", "0.1", "--drain-seconds", "1"]) as s:
        yield s


class Traffic(threading.Thread):
    """Sends allowed requests back to back and records every one that does not get a 200."""

    def __init__(self, port: int) -> None:
        super().__init__(name="reload-traffic", daemon=True)
        self.port = port
        self.stopping = threading.Event()
        self.sent = 0
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            self.sent += 1
            try:
                resp = get(self.port, f"/allowed/{self.sent}", timeout=5)
                if resp.status != 200:
                    self.failures.append(f"#{self.sent}: {resp!r}")
            except Exception as exc:  # noqa: BLE001 - any failure counts
                self.failures.append(f"#{self.sent}: {exc!r}")

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


def status(stack, path: str) -> int:
    return get(stack.listen_port, path).status


def version_tag(stack) -> list[str]:
    return echo_values(get(stack.listen_port, "/tagged").json(), "x-extproc-tags")


def test_reload_under_traffic_never_fails_a_request_and_applies_each_valid_policy(stack):
    path = stack.policy
    assert status(stack, "/deny-a") == 403
    assert status(stack, "/deny-b") == 200
    assert version_tag(stack) == ["v-a"]

    traffic = Traffic(stack.listen_port)
    traffic.start()
    try:
        time.sleep(0.3)

        write_policy(path, POLICY_B)  # atomic rename, as a ConfigMap update does
        wait_for(lambda: status(stack, "/deny-b") == 403, 10, what="policy B to deny /deny-b")
        assert version_tag(stack) == ["v-b"]

        for broken in (INVALID_YAML, INVALID_SCHEMA):
            errors_before = stack.sidecar.log_text().count("policy reload failed")
            path.write_text(broken, encoding="utf-8")  # in place, as an editor would
            wait_for(lambda: stack.sidecar.log_text().count("policy reload failed") > errors_before, 10,
                     what="the broken policy to be rejected")
            time.sleep(0.3)  # several more reload intervals with the broken file in place
            # The last good policy (B) keeps serving.
            assert status(stack, "/deny-b") == 403
            assert status(stack, "/deny-a") == 403
            assert version_tag(stack) == ["v-b"]

        path.write_text(POLICY_C, encoding="utf-8")  # valid again, written in place
        wait_for(lambda: status(stack, "/deny-c") == 403, 10, what="policy C to deny /deny-c")
        assert status(stack, "/deny-b") == 200
        assert status(stack, "/deny-a") == 200
        assert version_tag(stack) == ["v-c"]

        write_policy(path, POLICY_A)
        wait_for(lambda: version_tag(stack) == ["v-a"], 10, what="policy A again")
        assert status(stack, "/deny-c") == 200
        time.sleep(0.3)
    finally:
        traffic.stop()

    assert traffic.failures == [], f"{len(traffic.failures)} of {traffic.sent} requests failed"
    assert traffic.sent >= 20, f"only {traffic.sent} requests were sent during the reloads"
    assert stack.sidecar.process.poll() is None
    log = stack.sidecar.log_text()
    assert log.count("policy reloaded") >= 3, log[-3000:]
