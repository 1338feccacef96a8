"""Who may connect to the sidecar's ports: the listen-address policy and the TLS credentials.

The sidecar trusts what arrives on its ext_proc port (Envoy's attributes: the client's verified
certificate, the route): whoever can call it can mint identities. So by default it listens only
where nothing but its own Envoy can reach it: a loopback address or a Unix socket inside the pod.
Elsewhere it needs TLS with a required client certificate (mTLS between Envoy and sidecar), or an
explicit opt-in that says what it gives away.
"""
from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

UNIX_PREFIX = "unix:"
LOCAL_HOST_NAMES = frozenset({"localhost"})


@dataclass(frozen=True)
class ListenAddress:
    """A parsed listen address: a Unix socket path, or a TCP host and port."""

    text: str
    unix_path: str | None = None
    host: str = ""
    port: int = 0

    @property
    def is_unix(self) -> bool:
        return self.unix_path is not None

    @property
    def is_local(self) -> bool:
        """Reachable only from this host (this pod): a Unix socket or a loopback address."""
        return self.is_unix or _is_loopback(self.host)


class AddressError(ValueError):
    pass


def parse_address(text: str) -> ListenAddress:
    """``unix:/path`` (or ``unix:///path``), ``host:port`` or ``[v6]:port``."""
    if text.startswith(UNIX_PREFIX):
        path = text[len(UNIX_PREFIX):]
        if path.startswith("//"):
            path = path[2:]
        if not path.startswith("/"):
            raise AddressError(f"{text!r}: a Unix socket address needs an absolute path (unix:/run/x.sock)")
        return ListenAddress(text, unix_path=path)
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise AddressError(f"{text!r}: expected host:port or unix:/path")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return ListenAddress(text, host=host, port=int(port))


def _is_loopback(host: str) -> bool:
    if host.lower() in LOCAL_HOST_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name, or '' (all addresses): reachable from elsewhere


@dataclass(frozen=True)
class TlsFiles:
    """The server's certificate and key, and the CA its clients' certificates must chain to."""

    cert: Path
    key: Path
    client_ca: Path

    def read(self) -> tuple[bytes, bytes, bytes]:
        return self.cert.read_bytes(), self.key.read_bytes(), self.client_ca.read_bytes()

    def server_context(self) -> ssl.SSLContext:
        """For the admin HTTP server: TLS 1.2+, a client certificate from client_ca required."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert, self.key)
        context.load_verify_locations(cafile=str(self.client_ca))
        context.verify_mode = ssl.CERT_REQUIRED
        return context


def tls_files(cert: str | None, key: str | None, client_ca: str | None) -> TlsFiles | None:
    """All three or none: a server certificate without a required client certificate would let
    anyone who reaches the port call it, so TLS here always means mutual TLS."""
    given = [value for value in (cert, key, client_ca) if value]
    if not given:
        return None
    if not (cert and key and client_ca):
        raise AddressError("--tls-cert, --tls-key and --client-ca go together (TLS here is always mutual)")
    files = TlsFiles(Path(cert), Path(key), Path(client_ca))
    for path in (files.cert, files.key, files.client_ca):
        if not path.is_file():
            raise AddressError(f"{path}: no such file")
    return files


def refusal(address: ListenAddress, *, tls: bool, opted_in: bool, opt_in_flag: str) -> str | None:
    """Why the sidecar must not listen there, or None when it may."""
    if address.is_local or tls or opted_in:
        return None
    return (f"{address.text} is reachable from other hosts and has no TLS client authentication: anyone who "
            f"connects could call it. Listen on 127.0.0.1 or unix:/path, give --tls-cert, --tls-key and "
            f"--client-ca, or pass {opt_in_flag} to accept that.")
