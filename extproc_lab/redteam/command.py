"""``extproc redteam replay | mutate | smuggle | reach``: the red-team harness as CI commands.

Exit status: 0 when everything held, 1 on a regression against the baseline, a failed reach
check or a forged identity that reached the app, 2 when the run could not be made (bad arguments, policy, records, unreachable target).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from extproc_lab.redteam import baseline, report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="redteam_command", required=True)

    replay = commands.add_parser("replay", help="send request records (JSONL) in-process or through Envoy")
    replay.add_argument("records", help="request records, one JSON object per line")
    _target_arguments(replay)
    _report_arguments(replay)

    mutate = commands.add_parser("mutate", help="generated payloads under named evasions: which slip through")
    mutate.add_argument("--families", help="comma-separated attack families (default: all)")
    mutate.add_argument("--mutations", help="comma-separated mutation names (default: all)")
    mutate.add_argument("--per-family", type=int, default=20, help="base payloads per family")
    mutate.add_argument("--seed", type=int, default=1)
    mutate.add_argument("--records-out", help="also write the generated records (JSONL) here")
    _target_arguments(mutate)
    _report_arguments(mutate)

    smuggle = commands.add_parser("smuggle", help="raw-socket header smuggling attempts against Envoy")
    smuggle.add_argument("--target", required=True, help="Envoy's listener, http://HOST:PORT")
    smuggle.add_argument("--timeout", type=float, default=2.0, help="seconds of silence that end a probe")
    smuggle.add_argument("--protected", metavar="PATH",
                         help="a path the access layer protects: also send forged-identity probes (exit 1 if one passes)")
    smuggle.add_argument("--sidecar", metavar="ADDRESS",
                         help="the sidecar's ext_proc address (host:port, unix:/path) as seen from here: try a direct "
                              "call claiming a client certificate (exit 1 if it is answered)")
    smuggle.add_argument("--json", help="write the JSON report here")
    smuggle.add_argument("--html", help="write the HTML report here")

    learned = commands.add_parser("learned", help="learn an OpenAPI document from part of a traffic file; report "
                                  "what it stops of the rest and of anomalies made from it")
    learned.add_argument("records", help="the application's request records (JSONL); records labelled attack are "
                         "held out, never learned from")
    learned.add_argument("--holdout", type=float, default=0.2, help="share of normal requests held out (default 0.2)")
    learned.add_argument("--strictness", choices=["loose", "balanced", "strict"], default="balanced")
    learned.add_argument("--base-path", default="", help="API prefix, as for extproc learn")
    learned.add_argument("--per-family", type=int, default=20, help="generated anomalies per payload family")
    learned.add_argument("--seed", type=int, default=1)
    learned.add_argument("--spec-out", help="keep the learned document here (default: a temporary directory)")
    learned.add_argument("--json", help="write the JSON report here")

    reach = commands.add_parser("reach", help="lateral reach of test identities through Envoy vs the policy")
    reach.add_argument("--config", required=True, help="the policy Envoy's sidecar serves")
    reach.add_argument("--identities", required=True, help="JSONL: {name, token | service_token | claims, expect}")
    reach.add_argument("--target", help="Envoy's listener, http://HOST:PORT (without it: in-process only)")
    reach.add_argument("--routes", help='JSON {"route": "/path"} for routes whose probe path cannot be guessed')
    reach.add_argument("--timeout", type=float, default=10.0)
    reach.add_argument("--json", help="write the JSON report here")
    reach.add_argument("--html", help="write the HTML report here")


def _target_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--config", help="policy YAML, run in-process (default: every layer with its defaults)")
    where.add_argument("--target", help="Envoy's listener, http://HOST:PORT: requests go through Envoy + sidecar")
    parser.add_argument("--layers", help="in-process: only these layers, e.g. attack,rules")
    parser.add_argument("--concurrency", type=int, default=4, help="--target: requests in flight")
    parser.add_argument("--timeout", type=float, default=10.0, help="--target: seconds per request")
    parser.add_argument("--audit", help="--target: the sidecar's --audit-log file, to attribute denials to layers")


def _report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline", help="compare with this saved baseline; exit 1 on regression")
    parser.add_argument("--save-baseline", help="save this run's summary as a baseline")
    parser.add_argument("--tolerance", type=float, default=0.02, help="allowed drop in a detection share")
    parser.add_argument("--fp-tolerance", type=float, default=0.005, help="allowed rise in benign blocked")
    parser.add_argument("--latency-tolerance", type=float,
                        help="allowed relative rise of p99 latency (0.5 = +50%%); default: not compared")
    parser.add_argument("--json", help="write the JSON report here")
    parser.add_argument("--html", help="write the HTML report here")
    parser.add_argument("--quiet", action="store_true", help="no table, no progress")


def run(args: argparse.Namespace) -> int:
    commands = {"replay": _replay, "mutate": _mutate, "smuggle": _smuggle, "reach": _reach, "learned": _learned}
    try:
        return commands[args.redteam_command](args)
    except _Unusable as exc:
        print(f"extproc redteam: {exc}", file=sys.stderr)
        return 2


class _Unusable(Exception):
    """The run cannot be made; the message says why."""


# -- replay and mutate ---------------------------------------------------------------------------


def _replay(args: argparse.Namespace) -> int:
    from extproc.core.records import RecordError, read_records

    try:
        records = list(read_records(args.records))
    except (OSError, RecordError) as exc:
        raise _Unusable(str(exc)) from None
    return _run_records(args, records, "replay")


def _mutate(args: argparse.Namespace) -> int:
    from extproc_lab.attack.payloads import FAMILIES
    from extproc_lab.redteam.mutate import BY_NAME, mutation_records

    families = _names(args.families, FAMILIES, "family")
    mutations = _names(args.mutations, tuple(BY_NAME), "mutation")
    records = list(mutation_records(families, args.per_family, args.seed, mutations))
    if args.records_out:
        Path(args.records_out).write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return _run_records(args, records, "mutate")


def _names(given: str | None, known: tuple[str, ...], what: str) -> tuple[str, ...]:
    if not given:
        return known
    names = tuple(name.strip() for name in given.split(",") if name.strip())
    unknown = [name for name in names if name not in known]
    if unknown:
        raise _Unusable(f"unknown {what} {', '.join(unknown)}; known: {', '.join(known)}")
    return names


def _run_records(args: argparse.Namespace, records: list[dict], kind: str) -> int:
    from extproc_lab.redteam.replay import attribute_from_audit, replay
    from extproc_lab.redteam.results import summarize

    sender, target = _sender(args)
    progress = None if args.quiet else report.Progress(kind)
    outcomes = replay(records, sender, progress)
    if args.audit:
        attribute_from_audit(outcomes, Path(args.audit))
    summary = summarize(outcomes)
    regressions = _against_baseline(args, summary)
    if not args.quiet:
        report.print_replay(summary, target)
    if regressions is not None:  # the CI signal: shown even with --quiet
        report.print_regressions(regressions)
    _write_reports(args, report.document(kind, target, summary, [o.to_dict() for o in outcomes], regressions))
    if args.save_baseline:
        baseline.save(summary, args.save_baseline)
    return 1 if regressions else 0


def _sender(args: argparse.Namespace):
    from extproc_lab.redteam.replay import InProcess, Remote

    if args.target:
        try:
            return Remote(args.target, args.timeout, args.concurrency), args.target
        except ValueError as exc:
            raise _Unusable(str(exc)) from None
    # A layer that raises is counted in the report; its traceback on every request would bury the table.
    logging.getLogger("extproc.core.transaction").setLevel(logging.CRITICAL)
    policy = _policy(args.config) if args.config else _default_policy()
    if args.layers:
        policy = policy.only_layers({name.strip() for name in args.layers.split(",") if name.strip()})
    return InProcess(policy), f"in-process {args.config or 'default policy'}"


def _policy(path: str):
    from extproc.config.compile import ConfigError, load_policy

    try:
        return load_policy(path)
    except ConfigError as exc:
        raise _Unusable(str(exc)) from None


def _default_policy():
    from extproc.commands.score import default_policy

    return default_policy()


def _against_baseline(args: argparse.Namespace, summary: dict) -> list[str] | None:
    if not args.baseline:
        return None
    try:
        saved = baseline.load(args.baseline)
    except (OSError, ValueError) as exc:
        raise _Unusable(f"--baseline: {exc}") from None
    tolerances = baseline.Tolerances(args.tolerance, args.fp_tolerance, args.latency_tolerance)
    regressions, notes = baseline.compare(saved, summary, tolerances)
    for note in notes:
        print(f"baseline note: {note}", file=sys.stderr)
    return regressions


def _write_reports(args: argparse.Namespace, doc: dict) -> None:
    if args.json:
        report.write_json(doc, args.json)
    if args.html:
        report.write_html(doc, args.html)


def _learned(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from extproc.api_shield.shapes import STRICTNESS
    from extproc.core.records import RecordError, read_records
    from extproc_lab.redteam import learned

    if not 0.0 < args.holdout < 1.0:
        raise _Unusable("--holdout must be between 0 and 1")
    try:
        records = list(read_records(args.records))
    except (OSError, RecordError) as exc:
        raise _Unusable(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="extproc-learned-") as scratch:
        summary = learned.evaluate(records, STRICTNESS[args.strictness], Path(scratch), args.holdout, args.seed,
                                   args.per_family, args.base_path)
        if args.spec_out:
            shutil.copyfile(summary["spec"], args.spec_out)
            summary["spec"] = args.spec_out
    report.print_learned(summary)
    if args.json:
        report.write_json(report.document("learned", args.records, summary, []), args.json)
    return 0


# -- smuggling and reach ------------------------------------------------------------------------


def _smuggle(args: argparse.Namespace) -> int:
    from extproc_lab.redteam import smuggle

    host, port = _host_port(args.target)
    rows = smuggle.run_all(host, port, args.timeout, args.protected)
    if args.sidecar:
        from extproc_lab.redteam.direct import probe_sidecar

        rows.append(probe_sidecar(args.sidecar, args.protected or "/", max(args.timeout, 1.0)))
    report.table(["probe", "envoy", "status", "responses", "note"],
                 [[r["name"], r["verdict"], r.get("status"), r.get("responses"), r.get("note", "")] for r in rows],
                 sys.stdout)
    summary = smuggle.summarize(rows)
    _write_reports(args, report.document("smuggle", args.target, summary, rows))
    if summary["identity_bypasses"]:
        print(f"forged identity reached the app: {', '.join(summary['identity_bypasses'])}")
    return 1 if summary["identity_bypasses"] else 0


def _reach(args: argparse.Namespace) -> int:
    from extproc_lab.redteam import reach_check

    policy = _policy(args.config)
    try:
        identities = reach_check.load_identities(args.identities)
        overrides = json.loads(Path(args.routes).read_text()) if args.routes else {}
        probes = reach_check.probes(policy, args.config, overrides)
        summary = reach_check.check(policy, identities, probes, _host_port(args.target) if args.target else None,
                                    args.timeout)
    except (OSError, ValueError) as exc:
        raise _Unusable(str(exc)) from None
    target = args.target or "in-process (no --target)"
    report.print_reach(summary, target)
    _write_reports(args, report.document("reach", target, summary, summary["checks"]))
    return 1 if summary["failures"] else 0


def _host_port(url: str) -> tuple[str, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise _Unusable(f"--target must be http://HOST:PORT, not {url!r}")
    return parts.hostname, parts.port or 80
