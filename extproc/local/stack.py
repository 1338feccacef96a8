"""A whole local stack on loopback: demo upstream, the sidecar as a real process, a real Envoy.

Started upstream -> sidecar -> Envoy (each waits for the one before it to be ready) and stopped
in reverse. Used by ``extproc demo`` and by the end-to-end tests.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Sequence
from typing import TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from extproc.local.envoy import (
    EXTPROC_SERVER_NAME,
    ClientCA,
    EnvoyProcess,
    free_port,
    render_envoy_config,
    use_extproc_mtls,
    use_extproc_unix_socket,
    use_opentelemetry_tracing,
    write_client_ca,
)
from extproc.local.observed_routes import Observed, observe_watched_routes
from extproc.local.upstream import EchoUpstream

REPO = Path(__file__).resolve().parents[2]
DEMO_POLICY = REPO / "deploy" / "policy" / "demo.yaml"


class SidecarProcess:
    """``python -m extproc serve`` in a child process, ready once its gRPC health says SERVING.

    By default ext_proc and health share 127.0.0.1:port. With ``listen`` (a Unix socket, or a TLS
    port: pass the TLS flags in extra_args) ext_proc goes there and 127.0.0.1:port serves health only.
    """

    def __init__(self, config: Path, *, workdir: Path, port: int | None = None, extra_args: Sequence[str] = (),
                 env: dict[str, str] | None = None, listen: str | None = None) -> None:
        self.config = Path(config)
        self.env = {**os.environ, **(env or {})}
        self.port = port or free_port()
        self.log_path = workdir / "sidecar.log"
        self.extra_args = list(extra_args)
        self.listen = listen
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        """Where ext_proc listens."""
        return self.listen or self.health_address

    @property
    def health_address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        health = ["--health-address", self.health_address] if self.listen else []
        return [sys.executable, "-m", "extproc", "serve", "--address", self.address, *health,
                "--config", str(self.config), *self.extra_args]

    def start(self, timeout: float = 20.0) -> "SidecarProcess":
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(self.command(), stdout=log_file, stderr=subprocess.STDOUT, env=self.env)
        self._wait_serving(self.process, timeout)
        return self

    def _wait_serving(self, process: subprocess.Popen, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.health_address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise RuntimeError(f"sidecar exited with {process.returncode}:\n{self.log_text()[-4000:]}")
                try:
                    # types-grpcio-health-checking leaves the generated stub's methods out
                    check = stub.Check  # type: ignore[attr-defined]
                    reply = check(health_pb2.HealthCheckRequest(), timeout=0.5)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sidecar not serving after {timeout}s:\n{self.log_text()[-4000:]}")

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (graceful drain), then SIGKILL after the timeout; returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass(frozen=True)
class SidecarTls:
    """Mutual TLS between Envoy and the sidecar: one throwaway CA issues both certificates."""

    ca: ClientCA
    server_cert: Path
    server_key: Path
    client_cert: Path  # Envoy's
    client_key: Path

    @classmethod
    def create(cls, directory: Path) -> "SidecarTls":
        directory.mkdir(parents=True, exist_ok=True)
        ca = write_client_ca(directory, name="extproc sidecar test CA")
        server = ca.issue(directory, "sidecar", dns_names=(EXTPROC_SERVER_NAME,), server=True)
        client = ca.issue(directory, "envoy")
        return cls(ca, *server, *client)

    def sidecar_args(self) -> list[str]:
        return ["--tls-cert", str(self.server_cert), "--tls-key", str(self.server_key),
                "--client-ca", str(self.ca.cert_path)]


SIDECAR_TRANSPORTS = ("tcp", "unix", "mtls")


class Stack:
    """Upstream + sidecar + Envoy. Use as a context manager.

    Envoy listens for HTTP on listen_port and for HTTPS (self-signed, see envoy.cert_path) on tls_port.
    HTTPS clients may present a certificate from client_ca (client_ca.issue makes one).
    Envoy reaches the sidecar by sidecar_transport: "tcp" (127.0.0.1, plaintext), "unix" (a Unix
    socket in workdir) or "mtls" (127.0.0.1 with mutual TLS; sidecar_tls holds the certificates).
    """

    def __init__(self, policy: Path = DEMO_POLICY, *, listen_port: int = 0, tls_port: int = 0,
                 workdir: Path | None = None, sidecar_args: Sequence[str] = (),
                 message_timeout: float | None = None, request_timeout: float | None = None,
                 sidecar_env: dict[str, str] | None = None,
                 otlp_port: int | None = None, upstream_port: int | None = None,
                 envoy_changes: Callable[[dict], None] | None = None, sidecar_transport: str = "tcp") -> None:
        if sidecar_transport not in SIDECAR_TRANSPORTS:
            raise ValueError(f"sidecar_transport must be one of {SIDECAR_TRANSPORTS}")
        self.sidecar_transport = sidecar_transport
        self.sidecar_tls: SidecarTls | None = None
        self._own_workdir = workdir is None  # a temporary one is removed on stop()
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="extproc-"))
        self.policy = Path(policy)
        self.listen_port = listen_port or free_port()
        self.tls_port = tls_port or free_port()
        self.sidecar_args = list(sidecar_args)
        self.message_timeout = message_timeout
        self.request_timeout = request_timeout
        self.sidecar_env = sidecar_env
        self.otlp_port = otlp_port  # Envoy traces every request to an OTLP/gRPC receiver here
        self.upstream_port = upstream_port  # an app the caller runs; None: the echo upstream
        self.envoy_changes = envoy_changes  # edits the rendered Envoy config before Envoy starts
        self.upstream: EchoUpstream | None = None
        self.sidecar: SidecarProcess | None = None
        self.envoy: EnvoyProcess | None = None
        self.observed: Observed | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listen_port}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.tls_port}"

    @property
    def client_ca(self) -> ClientCA:
        """The CA Envoy's TLS listener trusts for client certificates (exists once started)."""
        return _started(_started(self.envoy, "Envoy").client_ca, "Envoy's client CA")

    def start(self) -> "Stack":
        try:
            upstream_port = self.upstream_port
            if upstream_port is None:
                self.upstream = EchoUpstream().start()
                upstream_port = self.upstream.port
            sidecar = self.sidecar = self._sidecar().start()
            config = render_envoy_config(
                listen_port=self.listen_port, tls_port=self.tls_port, admin_port=free_port(),
                extproc_port=self._extproc_port(sidecar), upstream_port=upstream_port,
                message_timeout=self.message_timeout, request_timeout=self.request_timeout,
            )
            # Routes whose answers only watching layers read get the answer reader.
            self.observed = observe_watched_routes(config, self.policy)
            self._connect_envoy_to_sidecar(config, sidecar)
            if self.otlp_port is not None:
                use_opentelemetry_tracing(config, "127.0.0.1", self.otlp_port)
            if self.envoy_changes is not None:
                self.envoy_changes(config)
            self.envoy = EnvoyProcess(config, workdir=self.workdir).start()
        except BaseException:
            self.stop()
            raise
        return self

    def _sidecar(self) -> SidecarProcess:
        listen, args = None, list(self.sidecar_args)
        if self.sidecar_transport == "unix":
            listen = f"unix:{self.workdir / 'extproc.sock'}"
        elif self.sidecar_transport == "mtls":
            self.sidecar_tls = SidecarTls.create(self.workdir / "sidecar-tls")
            listen, args = f"127.0.0.1:{free_port()}", args + self.sidecar_tls.sidecar_args()
        return SidecarProcess(self.policy, workdir=self.workdir, extra_args=args, env=self.sidecar_env,
                              listen=listen)

    def _connect_envoy_to_sidecar(self, config: dict, sidecar: SidecarProcess) -> None:
        if self.sidecar_transport == "unix":
            use_extproc_unix_socket(config, sidecar.address.removeprefix("unix:"))
        elif self.sidecar_transport == "mtls":
            tls = _started(self.sidecar_tls, "sidecar's TLS")
            use_extproc_mtls(config, tls.client_cert, tls.client_key, tls.ca.cert_path)

    def _extproc_port(self, sidecar: SidecarProcess) -> int:
        """The sidecar's ext_proc TCP port (a Unix socket replaces it in _connect_envoy_to_sidecar)."""
        if self.sidecar_transport == "mtls":
            return int(sidecar.address.rpartition(":")[2])
        return sidecar.port

    def stop(self) -> None:
        for part in (self.envoy, self.sidecar, self.upstream):
            if part is not None:
                part.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "Stack":
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()


Part = TypeVar("Part")


def _started(part: Part | None, name: str) -> Part:
    if part is None:
        raise RuntimeError(f"the stack's {name} is not running: start() the stack first")
    return part
