"""The bot layer's challenge: an interstitial page for navigations of clients without a clearance,
the answer to the page's report, and the clearance check on every request.

The page (``challenge.js`` inline) looks at the browser, solves a proof of work and posts its
report, in the ``x-extproc-challenge`` header, to the page's own URL; the sidecar answers that
POST itself (the upstream never sees it): a clearance cookie when the report holds, a 403 when it
does not. Neither answer, nor the page, says anything of the score or of what failed.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import orjson
from pydantic import Field, SecretStr, model_validator

from extproc.bot import probe
from extproc.bot.clearance import KeyRingError, KeyRing, Signer, UsedNonces, binding, parse_keys, proof_holds
from extproc.core.durable import DURABLE
from extproc.core.strict import StrictModel
from extproc.core.verdict import Reply

PROBE_HEADER = "x-extproc-challenge"  # x-extproc-*: never passed upstream
COOKIE_NAME = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
PAGE_TYPE = "text/html; charset=utf-8"
SCRIPT = (Path(__file__).with_name("challenge.js")).read_text(encoding="utf-8")
PASSED = "passed"
FAILED = "failed"


class ChallengeSettings(StrictModel):
    """``layers.bot.challenge``: how the challenge is signed and how hard it is. Which requests
    get it is the bot layer's ``action``/``classes`` (``challenge``) and ``score_at_or_below``."""

    key: SecretStr | None = None  # signs; at least 32 characters. Prefer key_file (a mounted Secret)
    old_keys: list[SecretStr] = []  # still accepted: rotation without logging everyone out
    key_file: str | None = None  # one key a line, the first signs; re-read when it changes
    score_at_or_below: int = Field(default=0, ge=0, le=99)  # human-class navigations at or below: challenged
    difficulty: int = Field(default=12, ge=0, le=24)  # proof of work: leading zero bits of SHA-256
    clearance_ttl_s: int = Field(default=3600, ge=60, le=7 * 86_400)
    nonce_ttl_s: int = Field(default=300, ge=10, le=3600)  # how long a page may take to report
    cookie: str = Field(default="__extproc_clearance", pattern=COOKIE_NAME)
    cleared_score: int = Field(default=90, ge=1, le=99)  # a valid clearance lifts the score to at least this
    fallback: Literal["allow", "tag", "log", "deny"] = "deny"  # challenged classes, requests that cannot run a page
    max_nonces: int = Field(default=100_000, ge=100, le=10_000_000)  # replay memory per worker

    @model_validator(mode="after")
    def _one_key_source(self) -> "ChallengeSettings":
        if (self.key is None) == (self.key_file is None):
            raise ValueError("challenge: give exactly one of key (with old_keys) or key_file")
        if self.key_file is not None and self.old_keys:
            raise ValueError("challenge: old keys go in key_file, after the signing key")
        try:
            self.key_ring()
        except KeyRingError as exc:
            raise ValueError(str(exc)) from None
        return self

    def key_ring(self) -> KeyRing:
        if self.key_file is not None:
            return KeyRing(path=self.key_file)
        assert self.key is not None  # the validator says so
        keys = [self.key.get_secret_value(), *(k.get_secret_value() for k in self.old_keys)]
        return KeyRing(parse_keys(keys, "challenge key"))


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    passed: bool
    why: tuple[str, ...]  # for the audit record: "stale", "proof-of-work", "webdriver", ...
    reply: Reply


class Challenge:
    """The compiled challenge of one route."""

    def __init__(self, settings: ChallengeSettings, policy_dir: str = ".") -> None:
        self.settings = settings
        self.signer = Signer(settings.key_ring())
        self.used = DURABLE.get("bot_challenge_nonces", settings.max_nonces, lambda: UsedNonces(settings.max_nonces),
                                size=len)
        self.cookie_prefix = settings.cookie + "="

    def clearance_of(self, headers: tuple[tuple[str, str], ...]) -> str | None:
        """The clearance cookie's value, if any (HTTP/2 clients may split cookies over headers)."""
        for header_name, header in headers:
            if header_name != "cookie" or self.cookie_prefix not in header:
                continue
            for part in header.split(";"):
                name, _, value = part.strip().partition("=")
                if name == self.settings.cookie:
                    return value
        return None

    def cleared(self, headers: tuple[tuple[str, str], ...], first: dict[str, str], client: str, now: float) -> bool:
        value = self.clearance_of(headers)
        return value is not None and self.signer.cleared(value, binding(client, first.get("user-agent", "")), now)

    def page(self, first: dict[str, str], client: str, request_id: str) -> Reply:
        """The interstitial, with a nonce bound to this client."""
        settings = self.settings
        nonce = self.signer.nonce(binding(client, first.get("user-agent", "")), settings.difficulty,
                                  settings.nonce_ttl_s)
        conf = orjson.dumps({"n": nonce.token, "d": nonce.difficulty, "h": PROBE_HEADER}).decode()
        body = PAGE_HEAD + html.escape(request_id) + PAGE_MIDDLE + conf + PAGE_TAIL
        return Reply(body.encode(), PAGE_TYPE)

    def answer(self, first: dict[str, str], client: str, request_id: str, secure: bool, now: float) -> ProbeOutcome:
        """The sidecar's answer to a page's report."""
        report = probe.read_report(first.get(PROBE_HEADER, ""))
        if report is None:
            return self._failed(("malformed",), request_id)
        bound_to = binding(client, first.get("user-agent", ""))
        nonce = self.signer.open_nonce(report.nonce, bound_to, now)
        if nonce is None:
            return self._failed(("stale",), request_id)  # forged, expired, or another client's
        if not proof_holds(nonce.token, report.counter, nonce.difficulty):
            return self._failed(("proof-of-work",), request_id)
        # Used up before the signals are judged: a failed report cannot be retried with other
        # signals on the same solved work.
        if not self.used.first_use(nonce, now):
            return self._failed(("replayed",), request_id)
        why = probe.failures(report.signals, first)
        if why:
            return self._failed(why, request_id)
        return ProbeOutcome(True, (), Reply(b'{"ok":true}\n', headers=(("set-cookie", self._cookie(bound_to, secure, now)),)))

    def _cookie(self, bound_to: str, secure: bool, now: float) -> str:
        ttl = self.settings.clearance_ttl_s
        value = self.signer.clearance(bound_to, ttl, now)
        return f"{self.settings.cookie}={value}; Path=/; Max-Age={ttl}; HttpOnly; SameSite=Lax" + ("; Secure" if secure else "")

    @staticmethod
    def _failed(why: tuple[str, ...], request_id: str) -> ProbeOutcome:
        return ProbeOutcome(False, why, Reply(orjson.dumps({"error": "denied", "request_id": request_id}) + b"\n"))


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex,nofollow">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>Checking your browser</title>
<style>body{font:16px/1.5 system-ui,sans-serif;margin:0;display:grid;place-items:center;min-height:100vh;color:#222}
main{max-width:32rem;padding:2rem}small{color:#666}</style></head>
<body><main><h1>Checking your browser</h1><p id="status">This takes a moment.</p>
<noscript><p>This site needs JavaScript to tell browsers from automated clients. Turn it on and reload.</p></noscript>
<p><small>Request id: REQUEST_ID</small></p></main>
<script id="extproc-challenge" type="application/json">CONF</script>
<script>SCRIPT</script></body></html>
"""
# Split once where the per-request parts go (the request id, the page's settings).
PAGE_HEAD, _, _rest = PAGE.partition("REQUEST_ID")
PAGE_MIDDLE, _, _rest = _rest.partition("CONF")
PAGE_TAIL = _rest.replace("SCRIPT", SCRIPT)
