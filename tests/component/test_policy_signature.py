"""Signed policies (extproc/config/signature.py), the store's watched files (extproc/config/store.py) and
the Envoy readiness gate's reading of a config dump (extproc/wire/envoy_gate.py)."""
from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import time
from pathlib import Path

import pytest

from extproc import cli

from extproc.wire import envoy_gate
from extproc.config.compile import ConfigError, load_policy
from extproc.config.store import PolicyStore

POLICY = """version: 1
defaults:
  layers:
    rules:
      rules:
        - {id: deny-x, match: {path: {prefix: /x}}, action: deny}
"""
OTHER = POLICY.replace("deny-x", "deny-y").replace("/x}", "/y}")


@pytest.fixture
def keys(tmp_path):
    """Two key pairs made now (never a committed key): (private, public) paths each."""
    pairs = []
    for name in ("old", "new"):
        assert cli.main(["policy", "keygen", "--out", str(tmp_path / name)]) == 0
        pairs.append((tmp_path / name / "policy.key", tmp_path / name / "policy.pub"))
    assert oct((tmp_path / "old" / "policy.key").stat().st_mode & 0o777) == "0o600"
    return pairs


def signed(path: Path, text: str, private: Path) -> Path:
    path.write_text(text)
    assert cli.main(["policy", "sign", str(path), "--key", str(private)]) == 0
    return path


class ConfigMapDir:
    """A kubelet-style volume: ``..data`` -> a timestamped directory holding every key."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.generation = directory, 0
        directory.mkdir()

    def update(self, files: dict[str, bytes]) -> None:
        self.generation += 1
        stamp = self.directory / f"..gen{self.generation}"
        stamp.mkdir()
        for name, data in files.items():
            (stamp / name).write_bytes(data)
            if not (self.directory / name).is_symlink():
                os.symlink(f"..data/{name}", self.directory / name)
        old = os.readlink(self.directory / "..data") if (self.directory / "..data").is_symlink() else None
        os.symlink(stamp.name, self.directory / "..tmp")
        os.replace(self.directory / "..tmp", self.directory / "..data")
        if old:
            shutil.rmtree(self.directory / old)


def settle(store: PolicyStore) -> str | None:
    """What a poll loop would do: wait for a settled change, then reload (None if none)."""
    for _ in range(3):
        if store.changed():
            return store.reload()
    return None


# -- commands ---------------------------------------------------------------------------------


def test_check_config_and_verify_accept_a_signed_policy_and_refuse_a_tampered_one(tmp_path, keys, capsys):
    (private, public), (_, other_public) = keys
    path = signed(tmp_path / "policy.yaml", POLICY, private)
    assert cli.main(["check-config", str(path), "--policy-public-key", str(public)]) == 0
    assert cli.main(["policy", "verify", str(path), "--key", str(public)]) == 0
    # Rotation: any one of the given keys will do.
    assert cli.main(["check-config", str(path), "--policy-public-key", str(other_public),
                     "--policy-public-key", str(public)]) == 0
    assert cli.main(["check-config", str(path), "--policy-public-key", str(other_public)]) == 1
    assert "does not verify" in capsys.readouterr().err
    path.write_text(POLICY + "# one more line\n")  # tampered: the old signature stays
    assert cli.main(["check-config", str(path), "--policy-public-key", str(public)]) == 1
    Path(str(path) + ".sig").unlink()
    assert cli.main(["check-config", str(path), "--policy-public-key", str(public)]) == 1
    assert "unsigned" in capsys.readouterr().err
    assert cli.main(["check-config", str(path)]) == 0  # no key: signatures are not asked for


def test_serve_refuses_to_start_on_an_unsigned_policy_or_an_unusable_key(tmp_path, keys, monkeypatch):
    (private, public), _ = keys
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    base = ["serve", "--config", str(path), "--address", "127.0.0.1:0"]
    assert cli.main([*base, "--policy-public-key", str(public)]) == 1
    monkeypatch.setenv("EXTPROC_POLICY_PUBLIC_KEY", str(public))
    assert cli.main(base) == 1  # the environment variable asks for it as well
    not_a_key = tmp_path / "not-a-key.pub"
    not_a_key.write_text("hello\n")
    signed(path, POLICY, private)
    assert cli.main([*base, "--policy-public-key", str(not_a_key)]) == 1


# -- the store --------------------------------------------------------------------------------


def test_a_reload_without_a_valid_signature_keeps_the_last_good_policy(tmp_path, keys):
    (private, public), ((other_private, _)) = keys
    from extproc.config.signature import PolicyKeys

    volume = ConfigMapDir(tmp_path / "policy")
    first = signed(tmp_path / "a.yaml", POLICY, private)
    volume.update({"policy.yaml": first.read_bytes(), "policy.yaml.sig": Path(f"{first}.sig").read_bytes()})
    path = volume.directory / "policy.yaml"
    store = PolicyStore(load_policy(path), path, PolicyKeys.from_files([str(public)]))
    serving = store.current

    refused = {
        "unsigned": {"policy.yaml": OTHER.encode()},
        "the old signature": {"policy.yaml": OTHER.encode(), "policy.yaml.sig": Path(f"{first}.sig").read_bytes()},
        "another key": {"policy.yaml": OTHER.encode(),
                        "policy.yaml.sig": Path(f"{signed(tmp_path / 'b.yaml', OTHER, other_private)}.sig").read_bytes()},
    }
    for what, files in refused.items():
        volume.update(files)
        with pytest.raises(ConfigError):
            settle(store)
        assert store.current is serving, what
        assert settle(store) is None, f"{what}: retried without a change"

    good = signed(tmp_path / "c.yaml", OTHER, private)
    volume.update({"policy.yaml": good.read_bytes(), "policy.yaml.sig": Path(f"{good}.sig").read_bytes()})
    assert settle(store) == "ok"
    assert store.current.digest != serving.digest


def test_a_signature_arriving_after_its_policy_is_accepted_then(tmp_path, keys):
    """Plain files, written one after the other: the policy first is refused (unsigned for a
    moment); once its signature lands, the pair is read again and accepted."""
    (private, public), _ = keys
    from extproc.config.signature import PolicyKeys

    path = signed(tmp_path / "policy.yaml", POLICY, private)
    store = PolicyStore(load_policy(path), path, PolicyKeys.from_files([str(public)]))
    elsewhere = signed(tmp_path / "next.yaml", OTHER, private)
    path.write_text(OTHER)
    with pytest.raises(ConfigError):
        settle(store)
    shutil.copy(f"{elsewhere}.sig", f"{path}.sig")
    assert settle(store) == "ok"
    assert store.current.digest == hashlib.sha256(OTHER.encode()).hexdigest()


def test_a_changed_key_file_the_policy_read_triggers_a_recompile(tmp_path):
    """A rotated Secret: the policy file is the same, a file its access block read is not."""
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    secret = tmp_path / "token.hash"
    secret.write_text("one\n")

    @dataclasses.dataclass(frozen=True)
    class Access:
        files: tuple[str, ...]

    policy = dataclasses.replace(load_policy(path), access=Access((str(secret),)))
    store = PolicyStore(policy, path)
    assert settle(store) is None
    time.sleep(0.01)
    secret.write_text("two, rotated\n")
    assert settle(store) == "ok"  # same policy bytes, compiled again to read the new file
    assert store.current is not policy


# -- the Envoy gate's reading of listeners ----------------------------------------------------


def manager(*filters: dict) -> dict:
    return {"filters": [{"name": envoy_gate.HCM_FILTER, "typed_config": {"http_filters": list(filters)}}]}


EXT_PROC = {"name": envoy_gate.EXTPROC_FILTER,
            "typed_config": {"grpc_service": {"envoy_grpc": {"cluster_name": "extproc"}}, "failure_mode_allow": False}}
ROUTER = {"name": envoy_gate.ROUTER_FILTER}


def test_the_gate_wants_the_filter_on_every_inbound_http_chain_and_ignores_outbound():
    inbound = {"name": "virtualInbound", "traffic_direction": "INBOUND",
               "filter_chains": [manager(EXT_PROC, ROUTER), {"filters": [{"name": "envoy.filters.network.tcp_proxy"}]}]}
    outbound = {"name": "virtualOutbound", "traffic_direction": "OUTBOUND", "filter_chains": [manager(ROUTER)]}
    assert envoy_gate.listeners_problem([inbound, outbound]) is None
    catch_all = dict(inbound, default_filter_chain=manager(ROUTER))
    assert "no envoy.filters.http.ext_proc" in envoy_gate.listeners_problem([catch_all, outbound])
    assert envoy_gate.listeners_problem([outbound]) == "no inbound HTTP listener"
    assert "after the router" in envoy_gate.listeners_problem([dict(inbound, filter_chains=[manager(ROUTER, EXT_PROC)])])
    fails_open = {**EXT_PROC, "typed_config": {**EXT_PROC["typed_config"], "failure_mode_allow": True}}
    assert "fails open" in envoy_gate.listeners_problem([dict(inbound, filter_chains=[manager(fails_open, ROUTER)])])
    elsewhere = {**EXT_PROC, "typed_config": {"grpc_service": {"envoy_grpc": {"cluster_name": "other"}}}}
    assert "'other'" in envoy_gate.listeners_problem([dict(inbound, filter_chains=[manager(elsewhere, ROUTER)])])


def test_the_gate_is_not_ready_when_the_admin_answers_nonsense(tmp_path):
    import http.server
    import threading

    class Nonsense(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            body = b"[1, 2" if "static" in self.path else b"x" * 2048
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Nonsense)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert envoy_gate.problem(url) is not None  # not JSON
        assert "larger than" in envoy_gate.problem(url, max_bytes=1)
    finally:
        server.shutdown()
    assert envoy_gate.problem("file:///etc/passwd") is not None
