"""Command line: ``extproc serve | check-config | score | reach | learn | audit | rules | policy | jwks |
service-token | demo``, plus the tooling's ``redteam | bench | train`` when it is installed.
``main(argv) -> int`` runs in tests too."""
from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

from extproc.observability import logs
from extproc.config.compile import ConfigError, load_policy, load_policy_or_report

log = logging.getLogger("extproc")

# Commands of the tooling package (extproc_lab), added through the entry point group below when it is
# installed: the serving package never imports it. Without it, each name answers with what to install.
TOOLING_COMMANDS = {"redteam": "the red team", "bench": "benchmarks", "train": "training"}
TOOLING_ENTRY_POINTS = "extproc.commands"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    argv = sys.argv[1:] if argv is None else argv
    missing = _missing_tooling(parser, argv)
    if missing:
        print(f"extproc {argv[0]}: install extproc[dev] (extproc_lab) for {missing}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    return args.run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="extproc", description="Layered-defense ext_proc sidecar for Envoy")
    commands = parser.add_subparsers(dest="command")

    serve = commands.add_parser("serve", help="run the ext_proc gRPC server")
    serve.add_argument("--config", default=os.environ.get("EXTPROC_CONFIG"),
                       help="policy YAML (env EXTPROC_CONFIG); reloaded when it changes")
    serve.add_argument("--address", default=os.environ.get("EXTPROC_ADDRESS", "127.0.0.1:50051"),
                       help="ext_proc gRPC listen address, host:port or unix:/path (env EXTPROC_ADDRESS); "
                            "only loopback or a Unix socket unless mutual TLS or --insecure-address")
    serve.add_argument("--tls-cert", default=os.environ.get("EXTPROC_TLS_CERT"),
                       help="server certificate (PEM) for mutual TLS on --address and --metrics-address "
                            "(env EXTPROC_TLS_CERT); needs --tls-key and --client-ca")
    serve.add_argument("--tls-key", default=os.environ.get("EXTPROC_TLS_KEY"),
                       help="its private key (PEM) (env EXTPROC_TLS_KEY)")
    serve.add_argument("--client-ca", default=os.environ.get("EXTPROC_CLIENT_CA"),
                       help="CA (PEM) that callers' client certificates must chain to; a caller without "
                            "one is refused in the TLS handshake (env EXTPROC_CLIENT_CA)")
    serve.add_argument("--insecure-address", action="store_true",
                       help="allow a non-loopback --address without TLS: anyone who reaches it can mint "
                            "identities and pass any request")
    serve.add_argument("--health-address",
                       default=os.environ.get("EXTPROC_HEALTH_ADDRESS"),
                       help="host:port serving only the gRPC health service, e.g. for kubelet probes "
                            "(env EXTPROC_HEALTH_ADDRESS)")
    serve.add_argument("--workers", type=int, default=int(os.environ.get("EXTPROC_WORKERS", "1")),
                       help="processes sharing the port with SO_REUSEPORT (env EXTPROC_WORKERS)")
    serve.add_argument("--metrics-address", default=os.environ.get("EXTPROC_METRICS_ADDRESS"),
                       help="host:port (or unix:/path) for Prometheus /metrics and the assertion JWKS "
                            "(env EXTPROC_METRICS_ADDRESS); worker i listens on port+i; only loopback "
                            "unless mutual TLS or --public-metrics")
    serve.add_argument("--public-metrics", action="store_true",
                       help="allow a non-loopback --metrics-address without TLS: anyone who reaches it "
                            "reads the metrics and the public JWKS")
    serve.add_argument("--policy-public-key", action="append", metavar="FILE",
                       help="Ed25519 public key file (repeatable, for key rotation; env "
                            "EXTPROC_POLICY_PUBLIC_KEY, comma-separated): the policy must carry a "
                            "detached signature (POLICY.sig) that verifies with one of them, at start "
                            "and at every reload")
    serve.add_argument("--ready-when-envoy-filter", metavar="ADMIN_URL",
                       default=os.environ.get("EXTPROC_READY_WHEN_ENVOY_FILTER"),
                       help="report NOT_SERVING on the health service until the Envoy whose admin is "
                            "at ADMIN_URL (e.g. http://127.0.0.1:15000) runs the ext_proc filter, "
                            "fail closed, on every inbound listener; polled every few seconds (env "
                            "EXTPROC_READY_WHEN_ENVOY_FILTER)")
    serve.add_argument("--transport", choices=("auto", "native", "python"),
                       default=os.environ.get("EXTPROC_TRANSPORT", "auto"),
                       help="auto: the native front when it was built at install, else grpc.aio; "
                            "native: the front or exit 1; python: grpc.aio (default: auto, or EXTPROC_TRANSPORT)")
    serve.add_argument("--reload-interval", type=float, default=1.0, help="seconds between policy file checks")
    serve.add_argument("--drain-seconds", type=float, default=10.0, help="grace period for in-flight streams")
    serve.add_argument("--shutdown-delay", type=float, default=0.0,
                       help="seconds to keep serving, health NOT_SERVING, after SIGTERM before closing")
    serve.add_argument("--log-level", default=os.environ.get("EXTPROC_LOG_LEVEL", "info"))
    serve.add_argument("--trace", action="store_true", default=os.environ.get("EXTPROC_TRACE") == "1",
                       help="export OpenTelemetry traces over OTLP (env EXTPROC_TRACE=1); also on when "
                            "OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_TRACES_EXPORTER=otlp is set")
    serve.add_argument("--audit-log", default=os.environ.get("EXTPROC_AUDIT_LOG"),
                       help="append decision audit records (JSON lines) to this file, '-' for stdout "
                            "(env EXTPROC_AUDIT_LOG)")
    serve.add_argument("--audit-sample-allows", type=float,
                       default=float(os.environ.get("EXTPROC_AUDIT_SAMPLE_ALLOWS", "0")),
                       help="share of allowed requests audited, 0 to 1; every deny is (env EXTPROC_AUDIT_SAMPLE_ALLOWS)")
    serve.add_argument("--capture", default=os.environ.get("EXTPROC_CAPTURE"), metavar="FILE",
                       help="append a sample of whole requests, secrets and personal data redacted, with "
                            "the decision, as request records (JSONL) for extproc learn and training "
                            "(env EXTPROC_CAPTURE); off unless given")
    serve.add_argument("--capture-sample", type=float,
                       default=float(os.environ.get("EXTPROC_CAPTURE_SAMPLE", "0.01")),
                       help="share of requests captured, above 0 and at most 1 (env EXTPROC_CAPTURE_SAMPLE; "
                            "default 0.01)")
    serve.add_argument("--capture-unredacted", action="store_true",
                       help="keep credentials and personal data in the capture (a lab, never production)")
    serve.set_defaults(run=_serve)

    check = commands.add_parser("check-config", help="validate a policy file (exit 1 with its errors)")
    check.add_argument("file")
    check.add_argument("--policy-public-key", action="append", metavar="FILE",
                       help="also verify FILE.sig with this public key (repeatable; env EXTPROC_POLICY_PUBLIC_KEY)")
    check.set_defaults(run=_check_config)

    score = commands.add_parser("score", help="run the pipeline over request records (JSONL) in-process")
    score.add_argument("file", help="request records, one JSON object per line")
    score.add_argument("--config", help="policy YAML (default: every layer with default settings)")
    score.add_argument("--layers", help="comma-separated layers to run, e.g. attack,rules")
    score.set_defaults(run=_score)

    reach = commands.add_parser("reach", help="apps and routes one credential or identity can reach")
    reach.add_argument("--config", required=True, help="policy YAML")
    given = reach.add_mutually_exclusive_group(required=True)
    given.add_argument("--token", help="an IdP token (JWT), verified as a request carrying it would be")
    given.add_argument("--service-token", help="CLIENT_ID:SECRET")
    given.add_argument("--claims", help='identity claims as JSON: {"email", "groups", "idp", "amr", ...}')
    given.add_argument("--identities", help="JSONL of identities (claims plus a 'name'), one per line")
    reach.add_argument("--matrix", action="store_true", help="one row per identity, one column per route")
    reach.add_argument("--json", action="store_true", help="machine-readable output")
    reach.set_defaults(run=_reach)

    learn = commands.add_parser("learn", help="propose an OpenAPI document from traffic, widen one, or diff with one")
    learn.add_argument("file", help="request records (JSONL), e.g. a capture (serve --capture)")
    learn.add_argument("--config", help="policy: requests its layers (except api_shield) deny are left out")
    learn.add_argument("--base-path", default="", help="API prefix to strip, e.g. /api/v1")
    learn.add_argument("--strictness", choices=["loose", "balanced", "strict"], default="balanced",
                       help="how much is read into the values seen: support before a shape, margins around it")
    against = learn.add_mutually_exclusive_group()
    against.add_argument("--diff", metavar="SPEC", help="report what the traffic would change in SPEC (JSON): "
                         "shadow endpoints, undocumented parameters, widened schemas, endpoints not seen")
    against.add_argument("--update", metavar="SPEC", help="widen SPEC where the traffic needs it; the changes "
                         "go to stderr, the document to --out")
    learn.add_argument("--out", help="write the document here (default: stdout)")
    learn.set_defaults(run=_learn)

    audit = commands.add_parser("audit", help="query MCP audit records (JSONL, rotated files included)")
    audit.add_argument("files", nargs="+")
    audit.add_argument("--identity")
    audit.add_argument("--tool", help="tool, resource or prompt")
    audit.add_argument("--server")
    audit.add_argument("--decision", choices=["allow", "deny", "filtered", "withheld"])
    audit.add_argument("--since", help="ISO 8601 time, e.g. 2026-11-26T00:00:00Z")
    audit.add_argument("--until")
    audit.set_defaults(run=_audit)

    from extproc.commands.rules import add_commands as add_rules_commands

    add_rules_commands(commands)

    from extproc.config.signature import add_commands as add_policy_commands

    add_policy_commands(commands)

    jwks = commands.add_parser("jwks", help="print the public JWKS upstreams use to verify identity assertions")
    jwks.add_argument("--config", required=True, help="policy YAML with access.assertion")
    jwks.set_defaults(run=_jwks)

    from extproc.commands import service_token as service_token_command

    service_token = commands.add_parser("service-token", help="make a service token (secret and salted hash)")
    service_token_command.add_arguments(service_token)
    service_token.set_defaults(run=service_token_command.run)

    demo = commands.add_parser("demo", help="run Envoy + sidecar + demo upstream on loopback")
    demo.add_argument("--port", type=int, default=0, help="Envoy listener port (default: a free one)")
    demo.add_argument("--config", help="policy YAML (default: deploy/policy/demo.yaml)")
    demo.add_argument("--check", action="store_true", help="send the demo requests, print results, exit")
    demo.set_defaults(run=_demo)
    _add_tooling_commands(commands)
    return parser


def _add_tooling_commands(commands: argparse._SubParsersAction) -> None:
    for entry in entry_points(group=TOOLING_ENTRY_POINTS):
        try:
            add_commands = entry.load()
        except ImportError:  # registered by this distribution, but the package was left out (the image)
            continue
        add_commands(commands)


def _missing_tooling(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """What a tooling command asked for without the tooling installed is for, else None."""
    if not argv or argv[0] not in TOOLING_COMMANDS:
        return None
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return None if argv[0] in commands.choices else TOOLING_COMMANDS[argv[0]]


def _check_config(args: argparse.Namespace) -> int:
    try:
        policy = _load_policy(args.file, _policy_keys(args))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{args.file}: ok (sha256 {policy.digest[:12]})")
    for line in policy.summary():
        print(f"  {line}")
    return 0


def _policy_keys(args: argparse.Namespace):
    """The public keys the policy's signature must verify with, or None (unsigned policies).
    Raises ConfigError for a key file that cannot be read or holds no Ed25519 key."""
    from extproc.config.signature import PolicyKeys, key_files

    files = key_files(args.policy_public_key)
    return PolicyKeys.from_files(files) if files else None


def _load_policy(path: str, keys):
    """The policy at ``path``; with keys, only when its signature verifies (ConfigError if not)."""
    if keys is None:
        return load_policy(path)
    from extproc.config.compile import parse_policy

    try:
        data, _ = keys.read(Path(path))
    except OSError as exc:
        raise ConfigError(path, [f"cannot read: {exc.strerror or exc}"]) from None
    return parse_policy(data, path)


def _freeze_what_startup_loaded() -> None:
    """Keep the libraries, models and first policy (about 90,000 objects) out of the collector's
    full passes. Those passes hold the GIL throughout and came during reloads, whose compiles
    allocate a lot: 57-140 ms each in tests/e2e/test_e2e_reload.py's churn, 5-30 ms frozen, which
    kept answers within Envoy's 250 ms message timeout. The first policy's few hundred objects in
    reference cycles are never freed once it is replaced; later policies are not frozen."""
    gc.collect()
    gc.freeze()


def _serve(args: argparse.Namespace) -> int:
    logs.setup(args.log_level)
    if not args.config:
        log.error("no policy: pass --config FILE or set EXTPROC_CONFIG")
        return 2
    if args.workers < 1:
        log.error("--workers must be at least 1")
        return 2
    if not 0.0 <= args.audit_sample_allows <= 1.0:
        log.error("--audit-sample-allows must be between 0 and 1")
        return 2
    if args.capture and not 0.0 < args.capture_sample <= 1.0:
        log.error("--capture-sample must be above 0 and at most 1")
        return 2
    problem = _listen_problem(args)
    if problem:
        log.error(problem)
        return 2
    if args.workers > 1:
        return _supervise(args)
    return _serve_one(args, worker_index=int(os.environ.get("EXTPROC_WORKER_INDEX", "0")))


def _listen_problem(args: argparse.Namespace) -> str | None:
    """Why these addresses must not be served (see extproc/wire/listen.py), or None."""
    from extproc.wire.listen import AddressError, parse_address, refusal, tls_files

    try:
        tls = tls_files(args.tls_cert, args.tls_key, args.client_ca)
        address = parse_address(args.address)
        for extra in (args.metrics_address, args.health_address):
            if extra:
                parse_address(extra)
    except AddressError as exc:
        return str(exc)
    if address.is_unix and args.workers > 1:
        return "--workers > 1 needs a TCP --address (workers share a port, not a Unix socket)"
    problem = refusal(address, tls=tls is not None, opted_in=args.insecure_address,
                      opt_in_flag="--insecure-address")
    if problem is None and args.metrics_address:
        problem = refusal(parse_address(args.metrics_address), tls=tls is not None,
                          opted_in=args.public_metrics, opt_in_flag="--public-metrics")
    for opted_in, flag in ((args.insecure_address, "--insecure-address"), (args.public_metrics, "--public-metrics")):
        if opted_in:
            log.warning("%s: a port without authentication may be reachable from other hosts", flag)
    return problem


def _serve_one(args: argparse.Namespace, worker_index: int) -> int:
    from extproc.wire.listen import tls_files
    from extproc.observability.metrics import Metrics
    from extproc.config.store import PolicyStore
    from extproc.wire.server import ServeOptions, serve

    try:
        keys = _policy_keys(args)
        policy = _load_policy(args.config, keys)
    except ConfigError as exc:
        log.error("invalid policy, not starting", extra={"problems": exc.problems, "file": exc.source})
        return 1
    metrics = Metrics()
    metrics.policy_loaded(policy.digest)
    for line in policy.summary():
        log.info(line)  # every route, what runs there, and which ones are public
    store = PolicyStore(policy, Path(args.config), keys)
    _freeze_what_startup_loaded()
    metrics.watch_state(store)
    tls = tls_files(args.tls_cert, args.tls_key, args.client_ca)
    if args.metrics_address:
        from extproc.observability.admin import start_admin

        try:
            start_admin(args.metrics_address, worker_index, metrics, store, tls)
        except OSError as exc:
            log.error("cannot serve metrics: %s", exc)
            return 1
    options = ServeOptions(
        address=args.address, reload_interval=args.reload_interval, drain_seconds=args.drain_seconds,
        shutdown_delay=args.shutdown_delay, tls=tls, health_address=args.health_address,
        ready_when_envoy_filter=args.ready_when_envoy_filter, transport=args.transport,
    )
    return asyncio.run(serve(store, metrics, options, observers=_observers(args)))


def _observers(args: argparse.Namespace):
    from extproc.observability import tracing
    from extproc.wire.server import Observers

    audit = None
    if args.audit_log or args.capture:
        from extproc.observability.audit import AuditWriter
        from extproc.observability.capture import CaptureWriter

        capture = CaptureWriter(args.capture, args.capture_sample, redact=not args.capture_unredacted) \
            if args.capture else None
        audit = AuditWriter(args.audit_log or None, args.audit_sample_allows, capture=capture)
    return Observers(tracing=tracing.configure(force=args.trace), audit=audit)


def _supervise(args: argparse.Namespace) -> int:
    """Run N single-worker processes on one port; restart a worker that dies; drain on SIGTERM."""
    try:
        _load_policy(args.config, _policy_keys(args))  # fail fast, once, with a readable error
    except ConfigError as exc:
        log.error("invalid policy, not starting", extra={"problems": exc.problems, "file": exc.source})
        return 1
    if args.address.endswith(":0"):
        log.error("--workers > 1 needs a fixed port, not :0")
        return 2
    stopping = False

    def stop(_signum, _frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    workers = {i: _spawn_worker(args, i) for i in range(args.workers)}
    while not stopping:
        time.sleep(0.2)
        for index, process in list(workers.items()):
            if process.poll() is not None and not stopping:
                log.error("worker exited, restarting", extra={"worker": index, "code": process.returncode})
                time.sleep(1.0)
                workers[index] = _spawn_worker(args, index)
    for process in workers.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + args.drain_seconds + 5
    for process in workers.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
    return 0


def _spawn_worker(args: argparse.Namespace, index: int) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "extproc", "serve", "--workers", "1",
        "--config", args.config, "--address", args.address,
        "--reload-interval", str(args.reload_interval), "--drain-seconds", str(args.drain_seconds),
        "--shutdown-delay", str(args.shutdown_delay),
        "--log-level", args.log_level, "--transport", args.transport,
    ]
    if args.metrics_address:
        command += ["--metrics-address", args.metrics_address]
    if args.health_address:
        command += ["--health-address", args.health_address]
    if args.tls_cert:
        command += ["--tls-cert", args.tls_cert, "--tls-key", args.tls_key, "--client-ca", args.client_ca]
    command += [flag for flag, on in (("--insecure-address", args.insecure_address),
                                      ("--public-metrics", args.public_metrics)) if on]
    for key in args.policy_public_key or ():
        command += ["--policy-public-key", key]
    if args.ready_when_envoy_filter:
        command += ["--ready-when-envoy-filter", args.ready_when_envoy_filter]
    if args.trace:
        command.append("--trace")
    if args.audit_log:  # workers append to one file: each writes whole lines with O_APPEND
        command += ["--audit-log", args.audit_log, "--audit-sample-allows", str(args.audit_sample_allows)]
    if args.capture:  # the same: whole lines, one file
        command += ["--capture", args.capture, "--capture-sample", str(args.capture_sample)]
        command += ["--capture-unredacted"] if args.capture_unredacted else []
    return subprocess.Popen(command, env={**os.environ, "EXTPROC_WORKER_INDEX": str(index)})


def _score(args: argparse.Namespace) -> int:
    from extproc.commands import score

    return score.run(args.file, args.config, args.layers)


def _reach(args: argparse.Namespace) -> int:
    from extproc.commands import reach

    return reach.run(args.config, args.token, args.service_token, args.claims, args.identities, args.matrix,
                     args.json)


def _audit(args: argparse.Namespace) -> int:
    import orjson

    from extproc.mcp.audit import query

    try:
        for record in query(args.files, args.identity, args.tool, args.decision, args.server, args.since, args.until):
            sys.stdout.buffer.write(orjson.dumps(record) + b"\n")
    except OSError as exc:
        print(f"cannot read: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    return 0


def _learn(args: argparse.Namespace) -> int:
    from extproc.commands import learn as learn_cli

    return learn_cli.run(args.file, args.config, args.base_path, args.diff, args.out, args.strictness, args.update)


def _jwks(args: argparse.Namespace) -> int:
    import json

    policy = load_policy_or_report(args.config)
    if policy is None:
        return 2
    if policy.access is None or policy.access.signer is None:
        print(f"{args.config}: no access.assertion key configured", file=sys.stderr)
        return 2
    print(json.dumps(policy.access.signer.jwks(), indent=2))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from extproc.local import demo

    return demo.run(port=args.port, config=args.config, check=args.check)
