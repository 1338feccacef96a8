"""models/prompt-injection.md from the model's metadata: what it is, what it was trained on, and
how it does on sources it never saw, per source and length band."""
from __future__ import annotations

from extproc_lab.ai.corpus import BANDS

COLUMNS = ["all", *(name for name, _, _ in BANDS)]


def model_card(meta: dict) -> str:
    training, calibration, metrics = meta["training"], meta["calibration"], meta["metrics"]
    settings = training["settings"]
    lines = [
        "# Prompt-injection scorer", "",
        "Scores user and tool messages 1-99 (low = injection): logistic regression over hashed tokens, token pairs, "
        f"4-byte runs inside words and word classes (2^{meta['bits']} weights), read in windows of two blocks of "
        f"{meta['block']} tokens, each feature counted once per block. A text scores as its most injection-like "
        "window, so a long document is judged by its worst passage, not by its length.", "",
        *_classes(meta.get("word_classes", [])),
        f"Trained with NumPy by `python -m extproc_lab.ai.train_injection ../shared/data/llm` on "
        f"{training['data']['texts']:,} texts (data SHA-256 `{training['data']['sha256'][:16]}...`, seed "
        f"{training['seed']}): the real prompts of `../shared/data/llm` and the generated look-alikes of "
        "`extproc_lab/ai/prompts.py` (source `generated`). Same data, code and seed, same bytes.", "",
        _sources(training["data"]["sources"], settings), "",
        f"Operating point: logit >= {calibration['threshold_logit']} (probability "
        f"{calibration['threshold_probability']}) maps to score {calibration['default_threshold_score']}. It is set "
        f"on {settings['calibration_share']:.0%} of the benign texts, held out of fitting, so that each benign "
        f"source and length band with at least 50 of them is flagged at most {settings['target_fp']:.1%} of the "
        "time: long documents, read as many windows, set the cut as much as short prompts do.", "",
    ]
    if metrics:
        lines += _held_out(metrics)
    return "\n".join(lines)


def _classes(classes: list[list[str]]) -> list[str]:
    if not classes:
        return []
    return [f"Word classes ({len(classes)}, from `extproc_lab/ai/word_classes.py`; {sum(map(len, classes))} words in "
            "English, German, French, Spanish and Italian): a word in a class also counts as its class, and as the "
            "pair of its class with the nearest classed word up to 4 tokens before, so what is learnt of \"ignore the "
            "previous instructions\" carries to \"vergiss die bisherigen Anweisungen\". Only ASCII letters are "
            "lower-cased: a capitalised non-ASCII first letter (\"Über\") misses its class.", ""]


def _sources(sources: dict, settings: dict) -> str:
    not_learnt = {(source, label) for source, label in settings["not_learnt"]}
    rows = ["| source | injections | benign |", "|---|---:|---:|"]
    for name, counts in sources.items():
        injection = f"{counts['injection']:,}" + (" (evaluated, not learnt)" if (name, 1) in not_learnt else "")
        rows.append(f"| {name} | {injection} | {counts['benign']:,} |")
    return "\n".join(rows)


def _held_out(metrics: dict) -> list[str]:
    lines = [
        "## Quality on sources never seen", "",
        f"Leave one source out: for each real source and each seed ({', '.join(map(str, metrics['seeds']))}), a model "
        "trained by the shipped recipe on every other source flags the held-out source's texts at its own cut. "
        "Mean over the seeds, with the range when the seeds disagree. Bands are text lengths in characters. "
        "*Kinds learnt* leaves out the injections of a kind never learnt (BIPIA's, evaluated only).", "",
        "Injections detected:", "",
        *_table(metrics, "detected"), "",
        "Benign texts flagged:", "",
        *_table(metrics, "benign_flagged"), "",
    ]
    if metrics.get("inside_documents"):
        lines += [
            "Each held-out injection of up to 500 characters placed at a paragraph break in the middle of a long "
            "benign document (PEPs and Rust RFCs, documents the model may have learnt from): detected",
            "", "| held-out source | detected inside a document |", "|---|---:|",
            *(f"| {name} | {_cell(figure)} |" for name, figure in metrics["inside_documents"].items()), "",
        ]
    return lines


def _table(metrics: dict, key: str) -> list[str]:
    rows = [f"| held-out source | {' | '.join(COLUMNS)} |", "|---|" + "---:|" * len(COLUMNS)]
    pooled = [("**pooled**", metrics["pooled"]), ("**pooled, kinds learnt**", metrics["pooled_learnt_kinds"])]
    for name, figures in [*metrics["sources"].items(), *pooled]:
        cells = [_cell(figures.get(column, {}).get(key)) for column in COLUMNS]
        if any(cell != "" for cell in cells):
            rows.append(f"| {name} | {' | '.join(cells)} |")
    return rows


def _cell(figure: dict | None) -> str:
    if not figure:
        return ""
    text = f"{figure['mean']:.1%}"
    if figure["max"] - figure["min"] >= 0.0005:
        text += f" ({figure['min']:.1%}-{figure['max']:.1%})"
    return f"{text} of {figure['n']:,}"
