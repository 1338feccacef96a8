"""Reports of a red-team run: a table for the terminal (progress on stderr), JSON for machines,
and one self-contained HTML file with inline SVG charts (no scripts, nothing fetched)."""
from __future__ import annotations

import html
import json
import sys
import time
from pathlib import Path
from typing import IO

SCHEMA = "extproc-redteam/1"


class Progress:
    """`done/total` on stderr: rewritten in place on a terminal, a line per tenth otherwise."""

    def __init__(self, what: str, stream: IO[str] | None = None, interval_s: float = 0.2) -> None:
        self.what, self.stream, self.interval_s = what, stream or sys.stderr, interval_s
        self.tty = self.stream.isatty()
        self.last, self.last_tenth, self.start = 0.0, -1, time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self.tty and (now - self.last >= self.interval_s or done == total):
            self.last = now
            self.stream.write(f"\r{self.what}: {done}/{total} ({self._rate(done, now)}/s)")
            if done == total:
                self.stream.write("\n")
            self.stream.flush()
        elif not self.tty and total and done * 10 // total > self.last_tenth:
            self.last_tenth = done * 10 // total
            print(f"{self.what}: {done}/{total}", file=self.stream, flush=True)

    def _rate(self, done: int, now: float) -> str:
        return f"{done / max(now - self.start, 1e-6):.0f}"


# -- JSON -------------------------------------------------------------------------------------


def document(kind: str, target: str, summary: dict, rows: list[dict], regressions: list[str] | None = None) -> dict:
    """The machine-readable report: schema, what ran against what, the summary, every row."""
    doc = {"schema": SCHEMA, "kind": kind, "target": target, "summary": summary, "rows": rows}
    if regressions is not None:
        doc["regressions"] = regressions
    return doc


def write_json(doc: dict, path: str) -> None:
    Path(path).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


# -- terminal ---------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list], out: IO[str]) -> None:
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    line = "  ".join(f"{h:<{w}}" if i == 0 else f"{h:>{w}}" for i, (h, w) in enumerate(zip(headers, widths)))
    print(line, file=out)
    print("-" * len(line), file=out)
    for row in cells:
        print("  ".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(row, widths))), file=out)
    print(file=out)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.1%}"
    return "-" if value is None else str(value)


def print_replay(summary: dict, target: str, out: IO[str] | None = None) -> None:
    out = out or sys.stdout  # looked up per call: tests capture it
    attacks, benign, latency = summary["attacks"], summary["benign"], summary["latency_us"]
    print(f"{summary['total']} requests against {target}", file=out)
    print(f"attacks stopped: {attacks['stopped']}/{attacks['total']} ({_cell(attacks['rate'])})   "
          f"benign blocked: {benign['blocked']}/{benign['total']} ({_cell(benign['rate'])})   "
          f"rejected by Envoy: {summary['rejected_by_envoy']}   errors: {summary['errors']}", file=out)
    if latency:
        print("latency (us): " + "  ".join(f"{k} {v:.0f}" for k, v in latency.items()), file=out)
    if summary["layer_faults"]:
        print(f"layer faults (on_error decided): {summary['layer_faults']}  e.g. {summary['fault_examples'][:3]}",
              file=out)
    print(file=out)
    if summary["by_family"]:
        table(["family", "attacks", "stopped", "rate"],
              [[f, r["total"], r["stopped"], r["rate"]] for f, r in summary["by_family"].items()], out)
    if summary["by_layer"]:
        table(["stopped by", "requests"], [[layer, n] for layer, n in summary["by_layer"].items()], out)
    if summary["by_mutation"]:
        rows = sorted(summary["by_mutation"].items(), key=lambda item: -(item[1]["slip_rate"] or 0))
        table(["mutation", "class", "requests", "stopped", "caught plain", "slipped", "slip rate"],
              [[m, r["class"], r["total"], r["rate"], r["caught_plain"], r["slipped"], r["slip_rate"]] for m, r in rows],
              out)


def print_learned(summary: dict, out: IO[str] | None = None) -> None:
    """The report of ``redteam learned``: normal requests flagged, then each kind of anomaly stopped."""
    out = out or sys.stdout  # looked up per call: tests capture it
    normal = summary["normal"]
    print(f"learned from {summary['learned_from']} requests ({summary['operations']} operations, strictness "
          f"{summary['strictness']}), document {summary['spec']}", file=out)
    print(f"held-out normal requests flagged: {normal['flagged_both']}/{normal['total']} ({_cell(normal['rate'])})"
          f"   api_shield alone {normal['flagged_api_shield']}, attack alone {normal['flagged_attack']}", file=out)
    for example in normal["examples"][:5]:
        print(f"  flagged: {example}", file=out)
    faults = {name: found for name, found in summary["layer_faults"].items() if found}
    print(f"layer faults: {faults or 'none'}", file=out)
    print(file=out)
    table(["anomalies (kind/family)", "requests", "stopped", "api_shield alone", "attack alone"],
          [[key, row["total"], row["rate"], row["api_shield_alone"], row["attack_alone"]]
           for key, row in summary["anomalies"]["by_kind"].items()], out)


def print_reach(summary: dict, target: str, out: IO[str] | None = None) -> None:
    out = out or sys.stdout  # looked up per call: tests capture it
    print(f"lateral reach against {target}: {summary['checked']} checks, {summary['failures']} failure(s), "
          f"{summary['skipped']} skipped", file=out)
    table(["identity", "route", "policy says", "Envoy did", "expected", "verdict", "why"],
          [[c["identity"], c["route"], _yes(c["computed"]), _yes(c.get("observed")), _yes(c.get("expected")),
            c["verdict"], "; ".join(c.get("problems", ())) or c.get("note") or c["why"]] for c in summary["checks"]],
          out)


def _yes(value: bool | None) -> str | None:
    return None if value is None else ("reach" if value else "no")


def print_regressions(regressions: list[str], out: IO[str] | None = None) -> None:
    out = out or sys.stdout  # looked up per call: tests capture it
    if not regressions:
        print("baseline: no regression", file=out)
        return
    print(f"baseline: {len(regressions)} regression(s)", file=out)
    for line in regressions:
        print(f"  REGRESSION {line}", file=out)


# -- HTML -------------------------------------------------------------------------------------

STYLE = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em}table{border-collapse:collapse;margin:.5em 0}
td,th{padding:2px 10px;border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child{text-align:left}
.fail{color:#b00020;font-weight:bold}.ok{color:#176117}svg text{font:11px system-ui,sans-serif}"""


def write_html(doc: dict, path: str) -> None:
    Path(path).write_text(render_html(doc), encoding="utf-8")


def render_html(doc: dict) -> str:
    summary = doc["summary"]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>extproc red team: {_e(doc['kind'])}</title>",
             f"<style>{STYLE}</style></head><body>",
             f"<h1>extproc red team: {_e(doc['kind'])}</h1><p>Target: <code>{_e(doc['target'])}</code></p>"]
    if "regressions" in doc:
        parts.append(_regressions_html(doc["regressions"]))
    if doc["kind"] == "reach":
        parts.append(_reach_html(summary))
    elif doc["kind"] == "smuggle":
        parts.append(_rows_table(["probe", "envoy", "status", "responses", "note"],
                                 [[r["name"], r["verdict"], r.get("status"), r.get("responses"), r.get("note", "")]
                                  for r in doc["rows"]]))
    else:
        parts.append(_replay_html(summary))
    parts.append("</body></html>\n")
    return "".join(parts)


def _replay_html(summary: dict) -> str:
    attacks, benign = summary["attacks"], summary["benign"]
    parts = [f"<p>{summary['total']} requests. Attacks stopped: <b>{attacks['stopped']}/{attacks['total']}</b> "
             f"({_cell(attacks['rate'])}). Benign blocked: <b>{benign['blocked']}/{benign['total']}</b> "
             f"({_cell(benign['rate'])}). Rejected by Envoy: {summary['rejected_by_envoy']}. "
             f"Errors: {summary['errors']}.</p>"]
    if summary["latency_us"]:
        parts.append("<p>Latency (µs): " + ", ".join(f"{k} {v:.0f}" for k, v in summary["latency_us"].items()) + "</p>")
    if summary["layer_faults"]:
        parts.append(f"<p class='fail'>Layer faults: {_e(json.dumps(summary['layer_faults']))}</p>")
    families = summary["by_family"]
    if families:
        parts.append("<h2>Detection by family</h2>")
        parts.append(bar_chart([(f, r["rate"] or 0.0) for f, r in families.items()], "detection-by-family"))
    mutations = summary["by_mutation"]
    if mutations:
        ranked = sorted(mutations.items(), key=lambda item: -(item[1]["slip_rate"] or 0))
        parts.append("<h2>Mutations that slip through (share of payloads caught plain)</h2>")
        parts.append(bar_chart([(m, r["slip_rate"] or 0.0) for m, r in ranked], "slip-by-mutation", color="#c0392b"))
        parts.append(_rows_table(["mutation", "class", "requests", "stopped", "caught plain", "slipped", "slip rate"],
                                 [[m, r["class"], r["total"], r["rate"], r["caught_plain"], r["slipped"], r["slip_rate"]]
                                  for m, r in ranked]))
    parts.append("<h2>Attack score distribution</h2>")
    parts.append(histogram(summary["scores"]))
    if summary["by_layer"]:
        parts.append("<h2>Stopped by layer</h2>")
        parts.append(_rows_table(["layer", "requests"], [[k, v] for k, v in summary["by_layer"].items()]))
    if benign["examples"]:
        parts.append("<h2>Benign requests blocked (first ones)</h2><p>" + ", ".join(map(_e, benign["examples"])) + "</p>")
    return "".join(parts)


def _reach_html(summary: dict) -> str:
    rows = [[c["identity"], c["route"], c["computed"], c.get("observed"), c.get("expected"), c["verdict"],
             "; ".join(c.get("problems", ())) or c.get("note") or c["why"]] for c in summary["checks"]]
    head = (f"<p>{summary['checked']} checks, <span class='{'fail' if summary['failures'] else 'ok'}'>"
            f"{summary['failures']} failure(s)</span>, {summary['skipped']} skipped.</p>")
    return head + _rows_table(["identity", "route", "policy says", "Envoy did", "expected", "verdict", "why"], rows)


def _regressions_html(regressions: list[str]) -> str:
    if not regressions:
        return "<p class='ok'>Baseline: no regression.</p>"
    items = "".join(f"<li>{_e(line)}</li>" for line in regressions)
    return f"<p class='fail'>Baseline: {len(regressions)} regression(s)</p><ul>{items}</ul>"


def _rows_table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(_cell(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def bar_chart(items: list[tuple[str, float]], chart_id: str, color: str = "#2e86c1") -> str:
    """Horizontal bars, one per (label, share 0..1)."""
    label_w, bar_w, row_h = 170, 420, 18
    height = row_h * len(items) + 10
    rows = []
    for i, (label, share) in enumerate(items):
        y = 5 + i * row_h
        width = max(0.0, min(1.0, share)) * bar_w
        rows.append(f"<text x='{label_w - 6}' y='{y + 12}' text-anchor='end'>{_e(label)}</text>"
                    f"<rect x='{label_w}' y='{y + 2}' width='{width:.1f}' height='{row_h - 5}' fill='{color}'/>"
                    f"<text x='{label_w + width + 4:.1f}' y='{y + 12}'>{share:.1%}</text>")
    return (f"<svg id='{chart_id}' xmlns='http://www.w3.org/2000/svg' width='{label_w + bar_w + 60}' "
            f"height='{height}' role='img'>{''.join(rows)}</svg>")


def histogram(scores: dict[str, list[int]]) -> str:
    """Attack-score bins (1 = attack ... 99 = clean), attacks and benign side by side, each series
    scaled to its own total so that both shapes show."""
    colors = {"attack": "#c0392b", "benign": "#27ae60"}
    bins = len(next(iter(scores.values())))
    bin_w, plot_h, left = 28, 160, 30
    bars = []
    for s_index, (series, counts) in enumerate(scores.items()):
        total = sum(counts) or 1
        for b, count in enumerate(counts):
            h = count / total * plot_h
            x = left + b * bin_w + s_index * (bin_w // 2 - 1)
            bars.append(f"<rect x='{x}' y='{10 + plot_h - h:.1f}' width='{bin_w // 2 - 2}' height='{h:.1f}' "
                        f"fill='{colors.get(series, '#888')}'><title>{_e(series)}: {count}</title></rect>")
    ticks = "".join(f"<text x='{left + b * bin_w}' y='{plot_h + 24}'>{b * 99 // bins + 1}</text>"
                    for b in range(0, bins, 2))
    legend = "".join(f"<rect x='{left + i * 110}' y='{plot_h + 34}' width='10' height='10' fill='{colors.get(s, '#888')}'/>"
                     f"<text x='{left + i * 110 + 14}' y='{plot_h + 43}'>{_e(s)} ({sum(c)})</text>"
                     for i, (s, c) in enumerate(scores.items()))
    return (f"<svg id='score-distribution' xmlns='http://www.w3.org/2000/svg' width='{left + bins * bin_w + 20}' "
            f"height='{plot_h + 52}' role='img'>{''.join(bars)}{ticks}{legend}</svg>")


def _e(value) -> str:
    return html.escape(str(value), quote=True)
