"""Hot reload under traffic: the policy file changes (and is briefly broken) while allowed
requests keep flowing; none of them may fail, and each valid policy takes effect."""
from __future__ import annotations

import os
import shutil
import threading
import time
from collections import Counter

import pytest
from tests.support.e2e_support import (
    echo_values,
    get,
    started_stack,
    wait_for,
    write_policy,
)

# Fault paths: every test here once through each transport (tests/e2e/conftest.py); the stack
# fixtures take `transport` too, so each transport gets stacks of its own.
pytestmark = pytest.mark.usefixtures("transport")


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
def stack(transport, tmp_path_factory):
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
        self.late: list[str] = []

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


# -- a kubelet ConfigMap update: timestamped directory + `..data` symlink swap ----------------


class ConfigMapVolume:
    """A directory laid out as the kubelet mounts a ConfigMap, updated as the kubelet does.

    ``<dir>/..<timestamp>/policy.yaml`` holds the data, ``..data`` points at the current timestamped
    directory and ``policy.yaml`` is a symlink to ``..data/policy.yaml``. An update writes a new
    timestamped directory, points a new symlink at it and renames it over ``..data`` (one atomic
    rename), then removes the old directory.
    """

    def __init__(self, directory, key: str = "policy.yaml") -> None:
        self.directory = directory
        self.key = key
        self.updates = 0
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def path(self):
        return self.directory / self.key

    def update(self, text: str) -> None:
        self.updates += 1
        stamp = self.directory / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{self.updates:09d}"
        stamp.mkdir()
        (stamp / self.key).write_text(text, encoding="utf-8")
        data = self.directory / "..data"
        old = os.readlink(data) if data.is_symlink() else None
        tmp = self.directory / "..data_tmp"
        os.symlink(stamp.name, tmp)
        os.replace(tmp, data)
        if not self.path.is_symlink():
            os.symlink(f"..data/{self.key}", self.path)
        if old is not None:
            shutil.rmtree(self.directory / old)


def routed_policy(version: str, api_denies: list[str]) -> str:
    """Per-route: /api/ denies the listed paths; every other route denies /blocked."""
    api_rules = "".join(f"""
          - id: api-deny-{name}
            match: {{path: {{exact: /api/{name}}}}}
            action: deny""" for name in api_denies)
    return f"""
version: 1
defaults:
  layers:
    rules:
      rules:
        - id: deny-blocked
          match: {{path: {{prefix: /blocked}}}}
          action: deny
        - id: version
          match: {{path: {{prefix: /}}}}
          action: tag
          tags: [{version}]
routes:
  - name: api
    match: {{path_prefix: /api/}}
    layers:
      rules:
        rules:{api_rules}
          - id: version
            match: {{path: {{prefix: /}}}}
            action: tag
            tags: [{version}]
"""


# Requests whose answer is the same under every policy below: any other answer is a misjudgment.
STEADY = [("/api/admin", 403), ("/api/items", 200), ("/blocked/x", 403), ("/fine", 200)]


class JudgedTraffic(Traffic):
    """Sends the STEADY requests in turn and records every wrong answer or failure."""

    def run(self) -> None:
        while not self.stopping.is_set():
            path, expected = STEADY[self.sent % len(STEADY)]
            self.sent += 1
            try:
                got = get(self.port, f"{path}?n={self.sent}", timeout=5).status
                if got != expected:
                    self.failures.append(f"#{self.sent} {path}: {got}, expected {expected}")
            except Exception as exc:  # noqa: BLE001 - any failure counts
                self.failures.append(f"#{self.sent} {path}: {exc!r}")


def test_kubelet_configmap_swap_applies_a_per_route_policy_within_seconds(tmp_path):
    from tests.support.e2e_support import metric_value, register_stack, require_envoy, scrape, unregister

    from extproc.local.envoy import free_port
    from extproc.local.stack import Stack

    require_envoy()
    volume = ConfigMapVolume(tmp_path / "etc-extproc")
    volume.update(routed_policy("v1", ["admin"]))
    metrics_port = free_port()
    stack = Stack(volume.path, workdir=tmp_path, sidecar_args=[
        "--reload-interval", "0.5", "--drain-seconds", "1", "--metrics-address", f"127.0.0.1:{metrics_port}"])
    register_stack("configmap stack", stack)
    traffic = JudgedTraffic(stack.listen_port)
    try:
        stack.start()
        assert status(stack, "/api/export") == 200
        traffic.start()
        time.sleep(0.5)

        volume.update(routed_policy("v2", ["admin", "export"]))
        started = time.monotonic()
        wait_for(lambda: status(stack, "/api/export") == 403, 5, what="the new api route policy")
        took = time.monotonic() - started
        assert status(stack, "/export") == 200  # the default route did not change
        assert echo_values(get(stack.listen_port, "/api/items").json(), "x-extproc-tags") == ["v2"]

        errors = metric_value(scrape(metrics_port), "extproc_config_reloads_total", result="error")
        volume.update("version: 1\nroutes: [{name: api, match: {path_prefix: /api/}, layers: {rules: {rules: [")
        wait_for(lambda: metric_value(scrape(metrics_port), "extproc_config_reloads_total", result="error")
                 > errors, 10, what="the broken update to be counted")
        assert "policy reload failed" in stack.sidecar.log_text()
        assert status(stack, "/api/export") == 403  # the last good policy (v2) keeps serving
        assert echo_values(get(stack.listen_port, "/api/items").json(), "x-extproc-tags") == ["v2"]

        volume.update(routed_policy("v3", ["admin"]))
        wait_for(lambda: status(stack, "/api/export") == 200, 5, what="the fixed update")
        time.sleep(0.5)
    finally:
        if traffic.ident is not None:
            traffic.stop()
        stack.stop()
        unregister(stack)

    assert traffic.failures == [], f"{len(traffic.failures)} of {traffic.sent} requests failed or were misjudged"
    assert traffic.sent >= 40, f"only {traffic.sent} requests were sent"
    assert took < 5


# -- a file churning under a steady load: a reload never changes a decision ----------------------


def churn_policy(version: str, patches: int = 150) -> str:
    """A policy that takes about 100 ms to compile (``patches`` indexed virtual patches, each with a
    regex and a CEL expression), with a 25 ms deadline per phase, whose answers to CHURN_REQUESTS
    are the same in every version. Its last rule denies /late-blocked, so the file cut before that
    rule is a valid policy that would let /late-blocked through.

    The deadline is a tenth of what a compile holding the GIL costs a request on the wall clock,
    and over ten times the layers' own work here: at 2 ms, one request in a few thousand was
    skipped on a busy machine (a stall of the whole process, charged to the thread), which says
    nothing about reloads. That a compile in another thread spends nothing from a deadline is held
    exactly by tests/unit/test_pipeline.py."""
    rules = "".join(f"""
        - id: patch-{i:04d}
          when: {{methods: [POST], path_prefixes: [/app{i}/]}}
          match: {{path: {{regex: '^/app{i}/(export|import)/[a-z]+\\\\.(php|jsp)$'}}}}
          expr: 'arg("file").contains("..") || header("x-patch-{i}") == "on"'
          action: deny""" for i in range(patches))
    return f"""version: 1
defaults:
  deadline_ms: 25
  layers:
    rules:
      rules:
        - id: deny-blocked
          match: {{path: {{prefix: /blocked/}}}}
          action: deny
        - id: version
          match: {{path: {{prefix: /}}}}
          action: tag
          tags: [{version}]{rules}
        - id: deny-late-blocked
          match: {{path: {{prefix: /late-blocked/}}}}
          action: deny
    bot: {{action: log}}
    attack: {{}}
"""


JSON = (("content-type", "application/json"),)
# (method, path, body, expected status): the same answer under every policy churn_policy writes.
CHURN_REQUESTS = [("GET", "/allowed/item", None, 200), ("GET", "/blocked/item", None, 403),
                  ("GET", "/late-blocked/item", None, 403),
                  ("POST", "/api/items", b'{"name": "widget", "qty": 1, "note": "blue, large"}', 200)]


def served_version(stack) -> list[str] | None:
    response = get(stack.listen_port, "/tagged")
    return echo_values(response.json(), "x-extproc-tags") if response.status == 200 else None


class SteadyLoad(threading.Thread):
    """``rate`` requests/s on one keep-alive connection, paced (never a burst to catch up), each
    answer judged against CHURN_REQUESTS. Answers that say the request could not be judged in time
    (503 for a spent deadline, 504 for Envoy's message timeout) are kept apart from wrong ones."""

    def __init__(self, port: int, rate: float, offset: int) -> None:
        super().__init__(name=f"steady-load-{offset}", daemon=True)
        self.port, self.interval, self.offset = port, 1.0 / rate, offset
        self.stopping = threading.Event()
        self.sent = 0
        self.failures: list[str] = []
        self.late: list[str] = []

    def run(self) -> None:
        import http.client

        connection, due = None, time.monotonic()
        while not self.stopping.is_set():
            due = max(due + self.interval, time.monotonic())
            self.stopping.wait(max(0.0, due - time.monotonic()))
            method, path, body, expected = CHURN_REQUESTS[(self.sent + self.offset) % len(CHURN_REQUESTS)]
            self.sent += 1
            try:
                connection = connection or http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                connection.request(method, f"{path}?n={self.sent}", body=body, headers=dict(JSON) if body else {})
                response = connection.getresponse()
                response.read()
                if response.status in (503, 504):
                    self.late.append(f"{method} {path}: {response.status}")
                elif response.status != expected:
                    self.failures.append(f"{method} {path}: {response.status}, expected {expected}")
            except Exception as exc:  # noqa: BLE001 - any failure counts
                self.failures.append(f"{method} {path}: {exc!r}")
                connection = None

    def stop(self) -> None:
        self.stopping.set()
        self.join(15)


class Churn:
    """Rewrites the policy every step the ways files change under a running sidecar."""

    def __init__(self, volume: ConfigMapVolume) -> None:
        self.volume = volume
        self.versions = 0

    def next_policy(self) -> str:
        self.versions += 1
        return churn_policy(f"v{self.versions}")

    def step(self, index: int) -> None:
        kind = ("kubelet_swap", "partial_in_place", "truncated", "invalid", "rename")[index % 5]
        getattr(self, kind)()

    def kubelet_swap(self) -> None:
        self.volume.update(self.next_policy())

    def partial_in_place(self) -> None:
        """Written in place in two parts: for a moment the file is valid but lacks its last rule."""
        text = self.next_policy()
        cut = text.index("        - id: deny-late-blocked")
        with open(self.volume.path, "w", encoding="utf-8") as handle:
            handle.write(text[:cut])
            handle.flush()
            time.sleep(0.01)  # far under the 0.3 s the sidecar waits for a file to settle, even when
            handle.write(text[cut:])  # this thread is kept off the CPU for a while on a busy machine

    def truncated(self) -> None:
        """Cut inside a quoted expression: invalid YAML, left in place for a whole step."""
        text = self.next_policy()
        self.volume.path.write_text(text[: text.index("expr: ", len(text) // 2) + 12], encoding="utf-8")

    def invalid(self) -> None:
        self.volume.path.write_text(INVALID_SCHEMA, encoding="utf-8")

    def rename(self) -> None:
        target = self.volume.path.resolve()
        write_policy(target, self.next_policy())


def test_a_churning_policy_file_under_steady_load_never_changes_a_decision(tmp_path):
    """Issue 18 item 9: compiling a new policy held the GIL while a request's deadline ran out.

    About 160 requests/s while the file changes every 0.7 s for 21 s: kubelet symlink swaps,
    in-place writes in two parts, truncated and invalid documents, renames. Every answer must be
    the one every version gives, and no layer may be skipped for a spent deadline."""
    from tests.support.e2e_support import metric_value, register_stack, require_envoy, scrape, unregister

    from extproc.local.envoy import free_port
    from extproc.local.stack import Stack

    require_envoy()
    volume = ConfigMapVolume(tmp_path / "etc-extproc")
    churn = Churn(volume)
    volume.update(churn.next_policy())
    metrics_port = free_port()
    # onnxruntime (the models' reference engine) lets go of the GIL for each inference, so a compile
    # waiting for it takes it in the middle of a request's phase: what the load met once
    # in 13,215 requests, here some 20 times in 1,700 before the fix (the C kernels let go only
    # for microseconds).
    stack = Stack(volume.path, workdir=tmp_path, sidecar_args=[
        "--reload-interval", "0.3", "--drain-seconds", "1", "--metrics-address", f"127.0.0.1:{metrics_port}"],
        sidecar_env={"EXTPROC_BOT_ENGINE": "onnxruntime", "EXTPROC_ATTACK_ENGINE": "onnxruntime"})
    register_stack("churn stack", stack)
    load = [SteadyLoad(stack.listen_port, rate=40, offset=i) for i in range(4)]
    try:
        stack.start()
        for thread in load:
            thread.start()
        for index in range(30):
            churn.step(index)
            time.sleep(0.7)  # over two 0.3 s polls, the settling time: every version gets its verdict
        volume.update(churn.next_policy())  # end on a valid version
        final = f"v{churn.versions}"
        wait_for(lambda: served_version(stack) == [final], 10, what=f"the last version ({final})")
        for thread in load:
            thread.stop()
        metrics = scrape(metrics_port)
        envoy_5xx = [line for line in stack.envoy.log_text().splitlines() if '"response_code":5' in line]
    finally:
        for thread in load:
            if thread.ident is not None:
                thread.stop()
        stack.stop()
        unregister(stack)

    failures = Counter(failure for thread in load for failure in thread.failures)
    late = Counter(answer for thread in load for answer in thread.late)
    sent = sum(thread.sent for thread in load)
    assert not failures, (f"{failures.total()} of {sent} requests failed or were misjudged: {dict(failures)}; "
                          f"Envoy's 5xx: {envoy_5xx[:5]}")
    assert sent >= 1000, f"only {sent} requests were sent"
    # A stall of the whole machine (seen as 250 ms with nothing logged while other jobs ran) can
    # spend a deadline or Envoy's message timeout whatever the sidecar does; a compile that held
    # the GIL met some 20 requests in 1,700, and one in every reload would meet hundreds.
    tolerated = max(2, sent // 500)
    assert late.total() <= tolerated, (f"{late.total()} of {sent} requests not judged in time: {dict(late)}; "
                                       f"Envoy's 5xx: {envoy_5xx[:5]}")
    assert metric_value(metrics, "extproc_layer_faults_total", outcome="skipped") <= tolerated  # fault:deadline
    assert metric_value(metrics, "extproc_layer_faults_total", outcome="error") == 0
    assert metric_value(metrics, "extproc_config_reloads_total", result="ok") >= 10
    assert metric_value(metrics, "extproc_config_reloads_total", result="error") >= 5


# -- a signed policy: only a correctly signed update serves ----------------------------------------


class SignedConfigMapVolume(ConfigMapVolume):
    """The ConfigMap holds policy.yaml and policy.yaml.sig: one ``..data`` swap updates both."""

    def update_pair(self, text: str, signature: bytes | None) -> None:
        self.updates += 1
        stamp = self.directory / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{self.updates:09d}"
        stamp.mkdir()
        files = {self.key: text.encode(), f"{self.key}.sig": signature}
        for name, data in files.items():
            if data is not None:
                (stamp / name).write_bytes(data)
            if not (self.directory / name).is_symlink():
                os.symlink(f"..data/{name}", self.directory / name)
        data_link = self.directory / "..data"
        old = os.readlink(data_link) if data_link.is_symlink() else None
        os.symlink(stamp.name, self.directory / "..data_tmp")
        os.replace(self.directory / "..data_tmp", data_link)
        if old is not None:
            shutil.rmtree(self.directory / old)


def test_a_signed_policy_reloads_only_with_a_valid_signature(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from tests.support.e2e_support import metric_value, register_stack, require_envoy, scrape, unregister

    from extproc import cli
    from extproc.local.envoy import free_port
    from extproc.rules.bundle import sign
    from extproc.local.stack import Stack

    require_envoy()
    assert cli.main(["policy", "keygen", "--out", str(tmp_path / "keys")]) == 0  # made now, never committed
    key = serialization.load_pem_private_key((tmp_path / "keys" / "policy.key").read_bytes(), password=None)
    attacker = Ed25519PrivateKey.generate()
    volume = SignedConfigMapVolume(tmp_path / "etc-extproc")
    v1 = routed_policy("v1", ["admin"])
    volume.update_pair(v1, sign(v1.encode(), key))
    metrics_port = free_port()
    stack = Stack(volume.path, workdir=tmp_path, sidecar_args=[
        "--reload-interval", "0.2", "--drain-seconds", "1", "--metrics-address", f"127.0.0.1:{metrics_port}",
        "--policy-public-key", str(tmp_path / "keys" / "policy.pub")])
    register_stack("signed policy stack", stack)
    try:
        stack.start()
        assert status(stack, "/api/export") == 200

        v2 = routed_policy("v2", ["admin", "export"])
        volume.update_pair(v2, sign(v2.encode(), key))
        wait_for(lambda: status(stack, "/api/export") == 403, 10, what="the signed update to serve")

        # Each would open /api/export again; none may serve.
        opened = routed_policy("evil", ["admin"])
        refused = [("unsigned", opened, None),
                   ("tampered (policy changed, old signature)", opened, sign(v2.encode(), key)),
                   ("signed by another key", opened, sign(opened.encode(), attacker))]
        for what, text, signature in refused:
            errors = metric_value(scrape(metrics_port), "extproc_config_reloads_total", result="error")
            volume.update_pair(text, signature)
            wait_for(lambda: metric_value(scrape(metrics_port), "extproc_config_reloads_total", result="error")
                     > errors, 10, what=f"the {what} update to be refused and counted")
            assert status(stack, "/api/export") == 403, what  # the last good policy (v2) keeps serving
            assert echo_values(get(stack.listen_port, "/api/items").json(), "x-extproc-tags") == ["v2"], what
        assert "signature" in stack.sidecar.log_text()

        v3 = routed_policy("v3", ["admin"])
        volume.update_pair(v3, sign(v3.encode(), key))
        wait_for(lambda: status(stack, "/api/export") == 200, 10, what="the next signed update")
        assert echo_values(get(stack.listen_port, "/api/items").json(), "x-extproc-tags") == ["v3"]
        assert stack.sidecar.process.poll() is None
    finally:
        stack.stop()
        unregister(stack)
