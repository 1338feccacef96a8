"""Sensitive data in prompts: e-mail addresses, payment card numbers (Luhn-checked), API keys and
cloud credentials, private keys. Found with RE2 (linear time); redaction replaces the match."""
from __future__ import annotations

from dataclasses import dataclass

from extproc.rules.signatures import compile_regex

PATTERNS = {
    "email": r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}",
    "card": r"\b(?:\d[ -]?){12,18}\d\b",
    "aws_access_key": r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    "github_token": r"\b(?:ghp|gho|ghs|ghu|github_pat)_[A-Za-z0-9_]{20,255}\b",
    "openai_key": r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}\b",
    "slack_token": r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b",
    "google_api_key": r"\bAIza[0-9A-Za-z_-]{35}\b",
    "private_key": r"-----BEGIN (?:RSA |EC |OPENSSH |DSA |ENCRYPTED )?PRIVATE KEY-----",
}
KINDS = tuple(PATTERNS)
_COMPILED = {kind: compile_regex(pattern) for kind, pattern in PATTERNS.items()}


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int


def find(text: str, kinds: frozenset[str]) -> list[Finding]:
    findings = []
    for kind in kinds:
        for match in _COMPILED[kind].finditer(text):
            if kind == "card" and not luhn_valid(match.group(0)):
                continue
            findings.append(Finding(kind, match.start(), match.end()))
    return findings


def luhn_valid(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def redact(text: str, findings: list[Finding]) -> str:
    for finding in sorted(findings, key=lambda f: f.start, reverse=True):
        text = text[:finding.start] + f"[REDACTED:{finding.kind}]" + text[finding.end:]
    return text


def redact_json(value: object, kinds: frozenset[str]) -> tuple[object, int]:
    """Every string in a JSON document with its findings replaced; (new value, replacements)."""
    if isinstance(value, str):
        findings = find(value, kinds)
        return (redact(value, findings), len(findings)) if findings else (value, 0)
    if isinstance(value, list):
        pairs = [redact_json(item, kinds) for item in value]
        return [item for item, _ in pairs], sum(count for _, count in pairs)
    if isinstance(value, dict):
        by_key = {key: redact_json(item, kinds) for key, item in value.items()}
        return {key: item for key, (item, _) in by_key.items()}, sum(count for _, count in by_key.values())
    return value, 0
