"""The held-out evaluation as a Markdown table: printed by ``evaluate`` and written into the model
card by ``train`` (its own module so that neither of those two imports the other for it)."""
from __future__ import annotations

MIN_FAMILY_SAMPLES = 30  # below this a family's detection rate is shown but not judged


def _span(values: list[float] | None) -> str:
    """'; a-b%' for a rate's range across seeds; '' for a single run or no spread."""
    if not values or values[0] == values[1]:
        return ""
    return f"; {values[0] * 100:.0f}-{values[1] * 100:.0f}%"


def _family_cell(name: str, f: dict) -> str:
    cell = f"{name} {f['detected']}/{f['total']} ({f['rate']:.1%}{_span(f.get('rate_range'))})"
    cell += "" if f["total"] >= MIN_FAMILY_SAMPLES else "*"
    return cell + (f" [{f['payload_not_scored']} not scored]" if f.get("payload_not_scored") else "")


def render(report: dict) -> str:
    lines = ["| held-out source | benign | false positives | FP rate | attack families: detected/total (rate) |",
             "|---|---:|---:|---:|---|"]
    for fold in report["folds"]:
        families = "; ".join(_family_cell(name, f) for name, f in fold["families"].items()) or "-"
        rate = "-" if fold["fp_rate"] is None else f"{fold['fp_rate']:.2%}"
        if fold.get("fp_rate_range"):
            low, high = fold["fp_rate_range"]
            rate += f" ({low:.2%}-{high:.2%})"
        lines.append(f"| {fold['held_out']} | {fold['benign']} | {fold['false_positives']} | {rate} | {families} |")
    roc = report["roc"]
    if roc:
        lines.append("")
        lines.append("ROC over all held-out requests: AUC {auc}; detection at 0.1% / 0.5% / 1% FP: "
                     "{a:.1%} / {b:.1%} / {c:.1%}".format(auc=roc["auc"], a=roc["detection_at_fp_0.001"],
                                                         b=roc["detection_at_fp_0.005"], c=roc["detection_at_fp_0.01"]))
        if report.get("roc_range"):
            seeds = ", ".join(map(str, report["config"]["seed"]))
            spans = report["roc_range"]
            lines.append(f"(seeds {seeds}: counts pooled, rates in brackets range across seeds; AUC and the "
                         "detection figures are means, ranging "
                         + " / ".join(f"{spans[k][0]:.1%}-{spans[k][1]:.1%}" for k in
                                      ("detection_at_fp_0.001", "detection_at_fp_0.005", "detection_at_fp_0.01"))
                         + f"; AUC {spans['auc'][0]}-{spans['auc'][1]})")
    lines += _group_tables(report)
    lines.append(f"(* fewer than {MIN_FAMILY_SAMPLES} samples; not scored: the payload is a bare word or name, such "
                 "as an event-handler name, which the layer skips as unable to carry an injection)")
    return "\n".join(lines)


def _roc_cells(entry: dict | None) -> str:
    if not entry:
        return "- | - | -"
    def cell(key: str, percent: bool) -> str:
        value, span = entry[key], entry.get(key + "_range")
        text = f"{value:.1%}" if percent else f"{value:.3f}"
        if span and span[0] != span[1]:
            text += f" ({span[0]:.1%}-{span[1]:.1%})" if percent else f" ({span[0]:.3f}-{span[1]:.3f})"
        return text
    return " | ".join((cell("auc", False), cell("detection_at_fp_0.001", True), cell("detection_at_fp_0.01", True)))


def _group_tables(report: dict) -> list[str]:
    """Per held-out source and per family: ROC AUC and detection at 0.1% / 1% false positives."""
    if not report.get("roc_by_source"):
        return []
    lines = ["", "Per held-out source (an attack source ranked against every held-out benign request, a benign "
             "source against every held-out attack; ranges across seeds in brackets):", "",
             "| held-out source | side | n | ROC AUC | detection at 0.1% FP | detection at 1% FP |",
             "|---|---|---:|---:|---:|---:|"]
    for source, entry in report["roc_by_source"].items():
        for side, label in (("attacks_vs_all_benign", "attacks"), ("benign_vs_all_attacks", "benign")):
            if entry.get(side):
                lines.append(f"| {source} | {label} | {entry[side]['n']} | {_roc_cells(entry[side])} |")
    lines += ["", "Per attack family, over all held-out sources, against every held-out benign request:", "",
              "| family | n | ROC AUC | detection at 0.1% FP | detection at 1% FP |", "|---|---:|---:|---:|---:|"]
    for family, entry in report["roc_by_family"].items():
        if entry:
            lines.append(f"| {family} | {entry['n']} | {_roc_cells(entry)} |")
    return lines
