"""ModSecurity v3 + OWASP CRS on labelled request records: detection, false positives, CPU.

    python extproc_lab/bench/modsec/run.py FILE.jsonl [FILE.jsonl ...] [--limit N | --sample N]
                               [--jobs J] [--json summary.json] [--out per-record.jsonl]

Each record (see /work/shared/data/README.md) is sent through extproc_lab/bench/modsec/modsec_eval
(libmodsecurity + extproc_lab/bench/modsec/modsec.conf: CRS 3.3.4, paranoia level 1, inbound anomaly
threshold 5), one transaction per request. The summary gives the detection rate per attack
family, the false-positive rate (blocked benign requests, also per source), the CPU time
spent in libmodsecurity per request (p50/p90/p99/mean/max, microseconds) and requests/s.

--limit N and --sample N apply to each input file separately (first N records, or a
seeded random sample of N). Build the C program first with extproc_lab/bench/modsec/build.sh (this
script runs it if the binary is missing).
"""
from __future__ import annotations

import argparse
import base64
import collections
import json
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_BIN = HERE / "modsec_eval"
DEFAULT_CONF = HERE / "modsec.conf"
DEFAULT_HOST = "www.example.org"


# --------------------------------------------------------------------------- input

def load_records(paths: list[str], limit: int | None, sample: int | None, seed: int) -> list[dict]:
    out: list[dict] = []
    for p in paths:
        recs = []
        with open(p, "rb") as f:
            for raw in f:
                raw = raw.strip()
                if not raw:
                    continue
                recs.append(json.loads(raw))
                if limit is not None and sample is None and len(recs) >= limit:
                    break
        if sample is not None and sample < len(recs):
            recs = random.Random(f"{seed}:{Path(p).name}").sample(recs, sample)
        out.extend(recs)
    return out


def _b(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    return base64.b64encode(data).decode("ascii")


def request_bytes(rec: dict) -> tuple[bytes, bytes, bytes, bytes, list[tuple[bytes, bytes]]]:
    """(method, uri, http_version, body, headers) as bytes, as a proxy would see them."""
    req = rec.get("request") or {}
    method = str(req.get("method") or "GET")
    path = str(req.get("path") or "/")
    query = req.get("query")
    uri = path + ("?" + str(query) if query else "")
    if "body_b64" in req and req["body_b64"] is not None:
        body = base64.b64decode(req["body_b64"])
    else:
        body = str(req.get("body") or "").encode("utf-8", "surrogatepass")
    headers: list[tuple[bytes, bytes]] = []
    names = set()
    for pair in req.get("headers") or []:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            continue
        n, v = str(pair[0]), str(pair[1])
        names.add(n.lower())
        headers.append((n.encode("utf-8", "surrogatepass"), v.encode("utf-8", "surrogatepass")))
    if "host" not in names:
        headers.insert(0, (b"Host", DEFAULT_HOST.encode()))
    if body and "content-length" not in names and "transfer-encoding" not in names:
        headers.append((b"Content-Length", str(len(body)).encode()))
    version = "1.1"
    hv = (rec.get("expect") or {}).get("http_version") if isinstance(rec.get("expect"), dict) else None
    if isinstance(hv, str) and hv.upper().startswith("HTTP/"):
        version = hv[5:]
    return (method.encode("utf-8", "surrogatepass"), uri.encode("utf-8", "surrogatepass"),
            version.encode(), body, headers)


def encode_line(rec: dict) -> str:
    method, uri, version, body, headers = request_bytes(rec)
    fields = [_b(str(rec.get("id", ""))), _b(method), _b(uri), _b(version), _b(body)]
    for n, v in headers:
        fields += [_b(n), _b(v)]
    return "\t".join(fields) + "\n"


# --------------------------------------------------------------------------- engine

def parse_result(line: str) -> dict:
    parts = line.rstrip("\n").split("\t")
    if len(parts) < 7:
        return {"status": -1, "blocked": False, "score": None, "cpu_us": None, "rules": [],
                "detail": "bad-output", "error": "bad-output"}
    rid, status, blocked, score, cpu_ns, rules, detail = parts[:7]
    res = {
        "status": int(status),
        "blocked": blocked == "1",
        "score": int(score) if int(score) >= 0 else None,
        "cpu_us": int(cpu_ns) / 1000.0,
        "rules": [int(x) for x in rules.split(",")] if rules != "-" else [],
        "detail": None if detail == "-" else detail,
        "_id": rid,
    }
    if res["status"] == -1:
        res["error"] = detail
        res["cpu_us"] = None
    return res


def run_engine(lines: list[str], binary: Path, confs: list[Path], no_logging: bool,
               log=sys.stderr) -> tuple[list[dict], float]:
    """Run lines through one modsec_eval process (restarted after a crash).

    Returns (results in input order, wall seconds spent processing after rule loading)."""
    results: list[dict] = []
    busy = 0.0
    start = 0
    while start < len(lines):
        cmd = [str(binary)] + [a for c in confs for a in ("-c", str(c))]
        if no_logging:
            cmd.append("-n")
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, encoding="utf-8",
                                errors="surrogateescape", bufsize=1 << 16)
        # rule loading: wait for the banner on stderr before timing
        loaded = ""
        while True:
            l = proc.stderr.readline()
            if not l:
                break
            loaded += l
            if l.startswith("# loaded"):
                break
        if proc.poll() is not None and "# loaded" not in loaded:
            raise SystemExit(f"modsec_eval failed to start: {loaded}{proc.stderr.read()}")
        if start == 0:
            print(loaded.strip(), file=log)
        err_chunks: list[str] = []
        threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True).start()
        batch = lines[start:]

        def feed():
            try:
                for l in batch:
                    proc.stdin.write(l)
                proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass

        t0 = time.perf_counter()
        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        got = 0
        for out in proc.stdout:
            results.append(parse_result(out))
            got += 1
        proc.wait()
        feeder.join(timeout=5)
        busy += time.perf_counter() - t0
        start += got
        if start < len(lines):
            # the process died on lines[start]: record it and continue after it
            print(f"modsec_eval exited with {proc.returncode} on input line {start}; "
                  f"restarting after it. stderr: {''.join(err_chunks)[-500:]}", file=log)
            results.append({"status": -1, "blocked": False, "score": None, "cpu_us": None,
                            "rules": [], "detail": None, "error": f"crash rc={proc.returncode}"})
            start += 1
    return results, busy


def run_parallel(lines: list[str], jobs: int, **kw) -> tuple[list[dict], float]:
    if jobs <= 1:
        return run_engine(lines, **kw)
    chunks = [lines[i::jobs] for i in range(jobs)]
    outs: list = [None] * jobs
    t0 = time.perf_counter()

    def work(i):
        outs[i] = run_engine(chunks[i], **kw)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(jobs)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    results: list = [None] * len(lines)
    for i in range(jobs):
        for k, r in enumerate(outs[i][0]):
            results[i + k * jobs] = r
    return results, wall


# --------------------------------------------------------------------------- summary

def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summarize(records: list[dict], results: list[dict], busy_s: float, jobs: int,
              thresholds: list[int], confs: list[Path]) -> dict:
    fam = collections.defaultdict(lambda: [0, 0])          # family -> [n, blocked]
    src_att = collections.defaultdict(lambda: [0, 0])      # source -> [n attacks, blocked]
    src_ben = collections.defaultdict(lambda: [0, 0])      # source -> [n benign, blocked]
    by_rule_block = collections.Counter()
    fp_rules = collections.Counter()
    statuses = collections.Counter()
    errors = 0
    cpu = []
    score_hits = {t: {"attack": 0, "benign": 0} for t in thresholds}
    n_att = n_ben = blocked_att = blocked_ben = 0
    for rec, res in zip(records, results):
        if res.get("error"):
            errors += 1
        if res.get("cpu_us") is not None:
            cpu.append(res["cpu_us"])
        statuses[res["status"]] += 1
        label = rec.get("label")
        src = rec.get("source") or "?"
        b = bool(res["blocked"])
        if b:
            disruptive = [r for r in res["rules"] if r in (949110,) or 200000 <= r < 201000]
            by_rule_block[disruptive[-1] if disruptive else "other"] += 1
        sc = res.get("score")
        if label == "attack":
            n_att += 1
            blocked_att += b
            fam[rec.get("family") or "?"][0] += 1
            fam[rec.get("family") or "?"][1] += b
            src_att[src][0] += 1
            src_att[src][1] += b
        else:
            n_ben += 1
            blocked_ben += b
            src_ben[src][0] += 1
            src_ben[src][1] += b
            if b:
                for r in res["rules"]:
                    if r != 949110:
                        fp_rules[r] += 1
        for t in thresholds:
            if sc is not None and sc >= t:
                score_hits[t]["attack" if label == "attack" else "benign"] += 1

    def rate(a, n):
        return round(a / n, 4) if n else None

    n = len(records)
    cpu_stats = {
        "n": len(cpu),
        "p50_us": round(pct(cpu, 0.50), 1),
        "p90_us": round(pct(cpu, 0.90), 1),
        "p99_us": round(pct(cpu, 0.99), 1),
        "mean_us": round(statistics.fmean(cpu), 1) if cpu else None,
        "max_us": round(max(cpu), 1) if cpu else None,
    }
    return {
        "engine": "libmodsecurity 3.0.9 + OWASP CRS 3.3.4 (Debian), paranoia level 1, inbound threshold 5",
        "rules_files": [str(c) for c in confs],
        "records": n,
        "attacks": n_att,
        "benign": n_ben,
        "errors": errors,
        "detection_rate": rate(blocked_att, n_att),
        "detected": blocked_att,
        "false_positive_rate": rate(blocked_ben, n_ben),
        "false_positives": blocked_ben,
        "per_family": {f: {"n": v[0], "detected": v[1], "rate": rate(v[1], v[0])}
                       for f, v in sorted(fam.items(), key=lambda kv: -kv[1][0])},
        "attacks_per_source": {s: {"n": v[0], "detected": v[1], "rate": rate(v[1], v[0])}
                               for s, v in sorted(src_att.items())},
        "benign_per_source": {s: {"n": v[0], "blocked": v[1], "fp_rate": rate(v[1], v[0])}
                              for s, v in sorted(src_ben.items())},
        "blocked_by_rule": {str(k): v for k, v in by_rule_block.most_common()},
        "status_counts": {str(k): v for k, v in sorted(statuses.items())},
        "top_rules_in_false_positives": {str(k): v for k, v in fp_rules.most_common(15)},
        "score_thresholds": {str(t): {"detection_rate": rate(v["attack"], n_att),
                                      "false_positive_rate": rate(v["benign"], n_ben)}
                             for t, v in score_hits.items()},
        "cpu_per_request": cpu_stats,
        "jobs": jobs,
        "wall_seconds": round(busy_s, 3),
        "requests_per_second": round(n / busy_s, 1) if busy_s > 0 else None,
        "requests_per_cpu_second": round(1e6 / cpu_stats["mean_us"], 1) if cpu_stats["mean_us"] else None,
    }


def print_summary(s: dict, out=sys.stdout) -> None:
    p = lambda *a: print(*a, file=out)
    p(f"engine: {s['engine']}")
    p(f"rules files: {' '.join(s['rules_files'])}")
    p(f"records: {s['records']} (attack {s['attacks']}, benign {s['benign']}, errors {s['errors']})")
    if s["attacks"]:
        p(f"detection (blocked attacks): {s['detected']}/{s['attacks']} = {100 * s['detection_rate']:.2f}%")
        p("  per family:")
        for f, v in s["per_family"].items():
            p(f"    {f:<22} {v['detected']:>6}/{v['n']:<6} {100 * v['rate']:6.2f}%")
        if len(s["attacks_per_source"]) > 1:
            p("  per source:")
            for f, v in s["attacks_per_source"].items():
                p(f"    {f:<22} {v['detected']:>6}/{v['n']:<6} {100 * v['rate']:6.2f}%")
    if s["benign"]:
        p(f"false positives (blocked benign): {s['false_positives']}/{s['benign']} = "
          f"{100 * s['false_positive_rate']:.2f}%")
        for f, v in s["benign_per_source"].items():
            p(f"    {f:<22} {v['blocked']:>6}/{v['n']:<6} {100 * v['fp_rate']:6.2f}%")
        if s["top_rules_in_false_positives"]:
            p("  rules most often matched in false positives: " +
              ", ".join(f"{k}×{v}" for k, v in list(s["top_rules_in_false_positives"].items())[:10]))
    p("blocked by: " + ", ".join(f"{k}×{v}" for k, v in s["blocked_by_rule"].items()))
    if s["score_thresholds"]:
        p("by anomaly score (score >= T):")
        for t, v in s["score_thresholds"].items():
            d = "-" if v["detection_rate"] is None else f"{100 * v['detection_rate']:.2f}%"
            f = "-" if v["false_positive_rate"] is None else f"{100 * v['false_positive_rate']:.2f}%"
            p(f"    T={t:<4} detection {d:>8}   FP {f:>8}")
    c = s["cpu_per_request"]
    p(f"CPU in libmodsecurity per request (us): p50 {c['p50_us']}  p90 {c['p90_us']}  "
      f"p99 {c['p99_us']}  mean {c['mean_us']}  max {c['max_us']}  (n={c['n']})")
    p(f"throughput: {s['requests_per_second']} req/s wall with {s['jobs']} process(es) "
      f"({s['wall_seconds']} s); {s['requests_per_cpu_second']} req/s per CPU core from mean CPU")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", help="JSONL request records")
    ap.add_argument("--limit", type=int, help="first N records of each file")
    ap.add_argument("--sample", type=int, help="random sample of N records of each file (seeded)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1,
                    help="parallel modsec_eval processes (default 1; CPU/request is per thread either way)")
    ap.add_argument("--json", help="write the summary as JSON to this file")
    ap.add_argument("--out", help="write per-record results as JSONL to this file")
    ap.add_argument("--conf", action="append", default=None,
                    help=f"rules file(s) to load instead of {DEFAULT_CONF.name} (repeatable)")
    ap.add_argument("--pre-conf", action="append", default=[],
                    help="rules file(s) loaded BEFORE the main one: CRS settings that REQUEST-901 must "
                         "see, e.g. extproc_lab/bench/modsec/tuning-accept-charset.conf (repeatable)")
    ap.add_argument("--extra-conf", action="append", default=[],
                    help="rules file(s) loaded after the main one, e.g. SecRuleRemoveById (repeatable)")
    ap.add_argument("--binary", default=str(DEFAULT_BIN))
    ap.add_argument("--no-logging-phase", action="store_true",
                    help="skip msc_process_logging (phase 5); by default it runs, as connectors do")
    ap.add_argument("--thresholds", default="5,10,15,20",
                    help="also report detection/FP for anomaly score >= T (comma list; '' for none)")
    args = ap.parse_args(argv)

    binary = Path(args.binary)
    if not binary.exists() and binary == DEFAULT_BIN:
        subprocess.run(["sh", str(HERE / "build.sh")], check=True, stdout=sys.stderr)
    confs = ([Path(c) for c in args.pre_conf] + [Path(c) for c in (args.conf or [DEFAULT_CONF])]
             + [Path(c) for c in args.extra_conf])

    t0 = time.perf_counter()
    records = load_records(args.files, args.limit, args.sample, args.seed)
    lines = [encode_line(r) for r in records]
    print(f"# {len(records)} records from {', '.join(args.files)} prepared in "
          f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)

    results, busy = run_parallel(lines, max(1, args.jobs), binary=binary, confs=confs,
                                 no_logging=args.no_logging_phase)
    if len(results) != len(records):
        raise SystemExit(f"internal error: {len(results)} results for {len(records)} records")
    mismatched = 0
    for rec, res in zip(records, results):
        rid = res.pop("_id", None)
        want = "".join(" " if c in "\t\r\n\0" else c for c in str(rec.get("id", "")))
        if rid is not None and res.get("status", 0) != -1 and rid != want:
            mismatched += 1
    if mismatched:
        raise SystemExit(f"internal error: {mismatched} results out of order")

    thresholds = [int(t) for t in args.thresholds.split(",") if t.strip()]
    summary = summarize(records, results, busy, max(1, args.jobs), thresholds, confs)
    print_summary(summary)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    if args.out:
        with open(args.out, "w") as f:
            for rec, res in zip(records, results):
                row = {"id": rec.get("id"), "source": rec.get("source"), "family": rec.get("family"),
                       "label": rec.get("label"), **res}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
