"""One request (plus what its client did before) to the bot model's input vector.

Serving and training both go through ``Featurizer``, so a model always sees vectors built by
the code it was trained with; the feature names and their order are stored in its metadata.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from extproc.bot import behaviour, signals
from extproc.bot.behaviour import ClientTracker, Observation
from extproc.bot.crawlers import Catalogue, Claim
from extproc.bot.useragent import Agent, parse_agent
from extproc.core.request import Request

if TYPE_CHECKING:
    from extproc.state.behaviour import SharedTracker

FEATURE_NAMES = signals.FEATURES + behaviour.FEATURES
BEHAVIOUR_AT = len(signals.FEATURES)
FEATURE_VERSION = 2
DEFAULT_CLIENT_KEY = ("ip", "ja4")


@dataclass(frozen=True, slots=True)
class Facts:
    agent: Agent
    claim: Claim | None
    vector: np.ndarray  # float32 [1, len(FEATURE_NAMES)]
    client_requests: int
    client_pages: int
    client_source: str = "memory"  # where the behaviour came from (ClientState.source)


def client_key(request: Request, parts: tuple[str, ...], first: dict[str, str]) -> str:
    """The identity behaviour is kept under: 'ip', 'ja3', 'ja4', 'user-agent', 'header:NAME', 'cookie:NAME'."""
    values = []
    for part in parts:
        if part == "ip":
            values.append(request.source_ip)
        elif part in ("ja3", "ja4"):
            values.append(first.get(f"x-{part}", ""))
        elif part.startswith("cookie:"):
            wanted = part[7:]
            values.append(next((v for n, v in request.cookies if n == wanted), ""))
        else:
            values.append(first.get(part.removeprefix("header:"), ""))
    return "\x1f".join(values)


def observation(path: str, first: dict[str, str]) -> Observation:
    dest = first.get("sec-fetch-dest", "")
    is_page = dest == "document" or (not dest and "text/html" in first.get("accept", ""))
    return Observation(path, is_page, first.get("cookie", ""), first.get("user-agent", ""), bool(first.get("referer")))


class Featurizer:
    def __init__(self, catalogue: Catalogue, tracker: ClientTracker | SharedTracker, key_parts: tuple[str, ...] = DEFAULT_CLIENT_KEY):
        self.catalogue = catalogue
        self.tracker = tracker
        self.key_parts = key_parts
        self.profiles = signals.Profiles(len(FEATURE_NAMES))

    def facts(self, request: Request, first: dict[str, str] | None = None, key: str | None = None) -> Facts:
        # One dict of first values instead of Request.header_map: no tuple per header, no
        # cached_property (which takes a lock per first access on Python 3.11). A caller that
        # built it, or the client key, already passes them.
        if first is None:
            first = dict(reversed(request.headers))
        path = request.path.partition("?")[0]
        agent = parse_agent(first.get("user-agent", ""))
        claim = self.catalogue.claim(agent.text, request.source_ip) if agent.text else None
        when = request.received_at if request.received_at is not None else time.monotonic()
        key = key if key is not None else client_key(request, self.key_parts, first)
        client = self.tracker.observe(key, when, observation(path, first))
        vector = self.profiles.vector(request, first, path, agent, claim)
        vector[0, BEHAVIOUR_AT:] = client.features()
        return Facts(agent, claim, vector, client.count, client.pages, client.source)
