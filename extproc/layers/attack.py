"""WAF attack score: every request gets 1-99 (1 = attack, 99 = clean) and per-family sub-scores.

Each value the client controls is normalised and scored by the ONNX model; the request takes
the score of its worst value. Buckets: 1-20 attack, 21-50 likely attack, 51-80 likely clean,
81-99 clean. At or below ``threshold`` the verdict is a deny; in the likely-attack bucket it
is logged.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field, field_validator

from extproc.attack.extract import DEFAULT_HEADERS, PARTS, ExtractSettings, Part, extract
from extproc.attack.memo import ValueMemo
from extproc.attack.model import DEFAULT_THRESHOLD, HEADS, ModelError, load_model
from extproc.core.durable import DURABLE
from extproc.layers.base import JUDGES_ONLY, Capabilities, Context, LayerSettings, LayerSpec, RouteContext, StrictModel
from extproc.core.modelfiles import validated_model_path
from extproc.core.request import Request
from extproc.core.verdict import Action, Verdict

SCORE_HEADER = "x-waf-attack-score"
FAMILIES = HEADS[1:]
SUB_SCORE_HEADERS = {family: f"x-waf-{family}-score" for family in FAMILIES}
LIKELY_ATTACK = 50
SCORE_TEXT = tuple(str(score) for score in range(100))  # header values, formatted once
SHARE_FLOOR = np.float32(1e-9)  # families without any signal: no division by zero


class Exclusions(StrictModel):
    """Known noisy fields that are never scored (e.g. a rich-text editor's field)."""

    args: list[str] = []  # query, form, JSON-free names, multipart fields
    headers: list[str] = []
    cookies: list[str] = []


class AttackSettings(LayerSettings):
    threshold: int = Field(default=DEFAULT_THRESHOLD, ge=1, le=99)  # deny at or below
    parts: list[Part] = list(PARTS)
    headers: list[str] = list(DEFAULT_HEADERS)  # user-data headers to score
    custom_headers: bool = True  # also score non-standard headers (x-foo)
    exclude: Exclusions = Exclusions()
    max_values: int = Field(default=4096, ge=1, le=100_000)
    max_value_chars: int = Field(default=4096, ge=64, le=1_048_576)
    max_scan_chars: int = Field(default=262_144, ge=256, le=16_777_216)
    forward_scores: bool = True  # x-waf-attack-score and x-waf-<family>-score upstream
    memo_entries: int = Field(default=20_000, ge=0, le=1_000_000)  # values remembered per worker; 0: off
    model: str | None = None  # path to an .onnx file; default: models/attack.onnx

    @field_validator("headers")
    @classmethod
    def _lower(cls, names: list[str]) -> list[str]:
        return [name.lower() for name in names]

    @field_validator("model")
    @classmethod
    def _loadable(cls, path: str | None) -> str | None:
        return validated_model_path(path, load_model, ModelError)


def shared_memo(model, entries: int) -> ValueMemo:
    """One memo per model and size, kept across policy reloads (the model is a pure function)."""
    return DURABLE.get("attack_memo", (id(model), entries), lambda: ValueMemo(entries),
                       size=lambda memo: len(memo.rows))


def attributed(probabilities: np.ndarray) -> list[list[float]]:
    """Per value: the attack probability, and its share for each family (in place, float32).

    The family heads rank families well but are less sure than the attack head; a family's
    sub-score is the attack probability scaled by how that family compares with the likeliest
    one, so the likeliest family of an attack shares its score and sub-scores stay comparable.
    """
    families = probabilities[:, 1:]
    top = np.maximum.reduce(families, axis=1, keepdims=True, initial=SHARE_FLOOR)
    families *= probabilities[:, :1]
    families /= top
    return probabilities.tolist()


class AttackLayer:
    name: ClassVar[str] = "attack"
    capabilities: ClassVar[Capabilities] = JUDGES_ONLY

    def __init__(self, settings: AttackSettings, route: RouteContext) -> None:
        self.model = load_model(settings.model)
        self.threshold = settings.threshold
        self.forward = settings.forward_scores
        self.needs_body = "body" in settings.parts
        self.extract_settings = ExtractSettings(
            parts=frozenset(settings.parts),
            headers=tuple(settings.headers),
            custom_headers=settings.custom_headers,
            exclude_args=frozenset(settings.exclude.args),
            exclude_headers=frozenset(h.lower() for h in settings.exclude.headers),
            exclude_cookies=frozenset(settings.exclude.cookies),
            max_values=settings.max_values,
            max_value_chars=settings.max_value_chars,
            max_scan_chars=settings.max_scan_chars,
        )
        self.heads = self.model.heads
        self.memo = shared_memo(self.model, settings.memo_entries)
        self._sub_headers = tuple((head, SUB_SCORE_HEADERS[head]) for head in FAMILIES if head in self.heads)

    def evaluate(self, request: Request, context: Context) -> Verdict:
        extracted = extract(request, self.extract_settings)
        notes = tuple(sorted(f"note:{n}" for n in extracted.notes if n.startswith("attack_")))
        if not extracted.texts:
            return self._verdict({head: 99 for head in self.heads}, (), notes)
        rows = self.memo.results(extracted.texts, extracted.locations, self._rows)
        # A request scores as its worst value, head by head. Plain Python: for a few values of
        # twelve heads it is several times cheaper than numpy calls.
        columns = list(zip(*rows))
        highest = [max(column) for column in columns]
        per_head = dict(zip(self.heads, self.model.scores(highest)))
        worst = columns[0].index(highest[0])
        # The location names an argument the client chose: kept short, its value never logged.
        reasons: tuple[str, ...] = (f"attack:worst={extracted.locations[worst][:64]}",)
        reasons += self._decoded_reason(extracted.decodings, columns[0], worst)
        return self._verdict(per_head, reasons, notes)

    def _decoded_reason(self, decodings: list[str], attack: tuple[float, ...], worst: int) -> tuple[str, ...]:
        """The decoding that fired: the worst value's, or else that of a decoded reading that would
        deny by itself (the raw text of an encoded payload can score worse than its reading)."""
        if decodings[worst]:
            return (f"attack:decoded={decodings[worst]}",)
        for how, probability in zip(decodings, attack):
            if how and self.model.scores((probability,))[0] <= self.threshold:
                return (f"attack:decoded={how}",)
        return ()

    def _rows(self, framed: list[bytes]) -> list[list[float]]:
        """Per value: the attack probability and the family shares (see attributed)."""
        return attributed(self.model.probabilities(framed))

    def _verdict(self, per_head: dict[str, int], reasons: tuple[str, ...], notes: tuple[str, ...]) -> Verdict:
        score = per_head["attack"]
        labels = tuple([head for head in FAMILIES if per_head.get(head, 99) <= self.threshold])
        if score <= self.threshold:
            action = Action.DENY
        elif score <= LIKELY_ATTACK:
            action = Action.LOG
        else:
            action = Action.ALLOW
        if action is not Action.ALLOW:
            notes = (f"attack:score={score}", *reasons, *notes)
        headers: tuple[tuple[str, str], ...] = ()
        if self.forward:
            sub_scores = [(name, SCORE_TEXT[per_head[head]]) for head, name in self._sub_headers]
            headers = ((SCORE_HEADER, SCORE_TEXT[score]), *sub_scores)
        return Verdict(self.name, action, 403, reasons=notes, scores=per_head, labels=labels, upstream_headers=headers)


SPEC = LayerSpec(
    name=AttackLayer.name,
    settings=AttackSettings,
    build=AttackLayer,
    upstream_headers=frozenset({SCORE_HEADER, *SUB_SCORE_HEADERS.values()}),
)
