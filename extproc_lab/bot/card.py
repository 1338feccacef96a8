"""The bot model's card, written from its metadata so the figures are the measured ones."""
from __future__ import annotations


def model_card(metadata: dict) -> str:
    training, calibration, metrics = metadata["training"], metadata["calibration"], metadata.get("metrics") or {}
    config = training["config"]
    files = ", ".join(f"`{f['file']}`" for f in training["data"]["files"])
    lines = [
        "# Bot score model",
        "",
        f"Scores each request 1-99 (1 = automated, 99 = human) from {len(metadata['features'])} features: the "
        "user-agent's claims against the wire (HTTP/2 pseudo-header order, header set, order and values, "
        "Chromium client hints, JA3/JA4 when Envoy passes them) and the client's behaviour so far (rate, "
        "timing regularity, think times between pages and before requests, page/asset mix, path breadth, "
        "cookie reuse, user-agent changes), kept per client "
        f"key ({' + '.join(metadata['client_key'])}).",
        "",
        "## Model",
        f"- Gradient-boosted trees (LightGBM, {config['iterations']} trees of "
        f"{config['max_leaf_nodes']} leaves, learning rate {config['learning_rate']}), exported to ONNX.",
        f"- Operating point: P(automated) >= {calibration['threshold_probability']} maps to score "
        f"{calibration['default_threshold_score']}, the default threshold; chosen for "
        f"{calibration['target_validation_fp']:.1%} of human requests flagged on validation user agents held out "
        "of fitting.",
        "",
        "## Training data",
        f"- Files: {files} (digest `{training['data']['sha256']}`); classes: "
        + ", ".join(f"{k} {v}" for k, v in sorted(training["classes"].items())) + ".",
        f"- Seed {config['seed']}; `python -m extproc_lab.bot.train FILE.jsonl` reproduces it from the same data.",
        "",
    ]
    if metrics:
        lines += [
            "## Quality: held-out user agents",
            "",
            f"{config['folds']} folds; each holds out whole user-agent groups (a browser family at one major "
            "version, or a tool or crawler with all its versions), and its threshold is set without them.",
            "",
            f"- ROC AUC {metrics['roc_auc']}; human requests flagged {metrics['human_flagged_rate']:.2%}; "
            f"automation tools and spoofed browsers caught {metrics['automation_and_spoofed_caught_rate']:.2%} "
            "of their requests.",
        ]
        if "automated_sessions_caught_rate" in metrics:
            lines.append(
                f"- Per client session: {metrics['automated_sessions_caught_rate']:.2%} of automated sessions have at "
                "least one request flagged (half of them by request "
                f"{metrics['automated_sessions_first_flag_median']}, counting from 0); "
                f"{metrics['human_sessions_flagged_rate']:.2%} of human sessions have at least one.")
        if metrics.get("automated_missed_before_second_page") is not None:
            lines.append(
                f"- Of the {metrics['automated_missed']} automated requests missed, "
                f"{metrics['automated_missed_before_second_page']} came before their client's second page "
                "(clients keyed as in serving), when there is at most one page of behaviour to judge.")
        lines += [
            "",
            "| class or source | flagged as automated | requests | sessions caught |",
            "|---|---|---|---|",
        ]
        for name, row in {**metrics["per_class"], **metrics["per_source"]}.items():
            sessions = f"{row['sessions_caught']} of {row['sessions']}" if "sessions" in row else ""
            lines.append(f"| {name} | {row['rate']:.2%} | {row['total']} | {sessions} |")
        lines.append("")
    return "\n".join(lines)
