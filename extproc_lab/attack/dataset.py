"""Request records -> labelled values, through the same extraction and normalisation as serving.

An attack record's payload (``expect.value``) marks which of its values is the attack; its
other values (headers, cookies, the path) are benign, which is exactly what keeps the model from
learning the look of a data source. Records without ``expect.value`` (a user's own labelled traffic, whole exploit requests) count
their query and body values as the attack, their headers and cookies as benign, and their path as the
attack only when it is no plain path: an exploit's path (``/wp-admin/admin-ajax.php``) is where the
application lives, not the payload, and is left out of training rather than taught as an attack.
"""
from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass, field
from typing import Iterable

from extproc.attack.extract import ExtractSettings, extract
from extproc.attack.features import frame
from extproc.attack.model import HEADS, plain_path
from extproc.attack.normalize import normalize
from extproc.core.records import request_from_record

HEAD_INDEX = {name: index for index, name in enumerate(HEADS)}
TRAINING_SETTINGS = ExtractSettings(max_value_chars=1024)


def host_half(record: dict) -> int:
    """0 or 1 by a hash of the request's host: splits real traffic into halves that share no site."""
    host = next((v for k, v in record["request"].get("headers", []) if k.lower() == "host"), "")
    return hashlib.sha256(host.lower().encode()).digest()[0] & 1


def head_of(family: str) -> int:
    return HEAD_INDEX.get(family, HEAD_INDEX["other"])


@dataclass
class RecordValues:
    record_id: str
    source: str
    template: str
    is_attack: bool
    family: str
    framed: list[bytes] = field(default_factory=list)
    value_is_attack: list[bool] = field(default_factory=list)
    value_trains: list[bool] = field(default_factory=list)  # False: label unknown, scored but not learnt
    path_copies: list[bytes] = field(default_factory=list)  # attack values also learnt as a URL path (training only)
    locations: list[str] = field(default_factory=list)

    @property
    def payload_found(self) -> bool:
        """False when the payload was not among the scored values (e.g. a bare word)."""
        return not self.is_attack or any(self.value_is_attack)


def record_values(record: dict, settings: ExtractSettings = TRAINING_SETTINGS) -> RecordValues:
    request, body = request_from_record(record)
    if body:
        request.attach_body(body)
    extracted = extract(request, settings)
    normalized = [normalize(text) for text in extracted.texts]
    if record.get("label") not in ("attack", "benign"):
        raise ValueError(f"record {record.get('id')!r}: label must be 'attack' or 'benign', found {record.get('label')!r}")
    is_attack = record["label"] == "attack"
    out = RecordValues(
        record_id=str(record.get("id", "")),
        source=str(record.get("source", "")),
        template=str(record.get("set", "")),
        is_attack=is_attack,
        family=str(record.get("family", "attack" if is_attack else "benign")),
        framed=[frame(text, flags, location) for (text, flags), location in zip(normalized, extracted.locations)],
        locations=extracted.locations,
    )
    out.value_is_attack = _mark_payload(record, normalized, extracted.locations) if is_attack else [False] * len(normalized)
    unmarked = is_attack and (record.get("expect") or {}).get("value") is None
    out.value_trains = [not (unmarked and location == "path" and plain_path(framed))
                        for framed, location in zip(out.framed, out.locations)]
    if is_attack:
        out.path_copies = _as_paths(normalized, out.value_is_attack, head_of(out.family) == HEAD_INDEX["lfi"])
    return out


# Where a file-inclusion payload reaches outside the web root: a path that starts so (or climbs
# with '..') names a system file, never a page. Script names of inclusion probes (/news.php,
# /include/config.php) are pages of real sites too and are not copied.
SYSTEM_PATH = re.compile(r"(?:^|/)\.\.|^/?(?:etc|proc|windows|winnt|private/etc|var/log|web-inf)/|^/?boot\.ini|^/?[a-z]:/")


def _as_paths(normalized: list[tuple[str, int]], marked: list[bool], inclusion: bool) -> list[bytes]:
    """A payload is as hostile in the request's path as in a parameter, but the value lists place
    payloads in parameters only, and real URLs teach that paths are benign: without these copies
    the model let ``GET /etc/shadow`` and ``GET /a/;cat%20/etc/passwd`` through. Copied: one in four
    payloads with a character no ordinary path has (by a hash of the text: enough to teach the
    location, not so many that the attack half drowns the rest), and every file-inclusion payload
    made of path characters that reaches outside the web root."""
    copies = []
    for (text, flags), hit in zip(normalized, marked):
        framed = frame(text if text.startswith("/") else "/" + text, flags, "path")
        if not hit:
            continue
        if plain_path(framed):
            if inclusion and SYSTEM_PATH.search(text):
                copies.append(framed)
        elif zlib.crc32(framed) % 4 == 0:
            copies.append(framed)
    return copies


def _mark_payload(record: dict, normalized: list[tuple[str, int]], locations: list[str]) -> list[bool]:
    value = (record.get("expect") or {}).get("value")
    if value is None:
        return [not loc.startswith(("header", "cookie")) for loc in locations]
    target = normalize(str(value))[0]
    if not target:
        return [False] * len(normalized)
    # Windows of a long payload hold a part of it; a value may embed it (JSON, multipart). A very
    # short payload ('5', '--') is only matched exactly: inside other text it would mislabel it.
    return [
        text == target or (len(target) >= 8 and target in text) or (len(text) >= 16 and text in target)
        for text, _ in normalized
    ]


def collect(records: Iterable[dict], settings: ExtractSettings = TRAINING_SETTINGS) -> list[RecordValues]:
    return [record_values(record, settings) for record in records]
