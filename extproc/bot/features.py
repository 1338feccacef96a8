"""One request (plus what its client did before) to the bot model's input vector.

Serving and training both go through ``Featurizer``, so a model always sees vectors built by
the code it was trained with; the feature names and their order are stored in its metadata.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from extproc.bot import behaviour, signals
from extproc.bot.behaviour import ClientTracker, Observation
from extproc.bot.crawlers import Catalogue, Claim
from extproc.bot.useragent import Agent, parse_agent
from extproc.request import Request

FEATURE_NAMES = signals.FEATURES + behaviour.FEATURES
FEATURE_VERSION = 1
DEFAULT_CLIENT_KEY = ("ip", "ja4")


@dataclass(frozen=True, slots=True)
class Facts:
    agent: Agent
    claim: Claim | None
    vector: np.ndarray  # float32 [1, len(FEATURE_NAMES)]
    client_requests: int


def client_key(request: Request, parts: tuple[str, ...]) -> str:
    """The identity behaviour is kept under: 'ip', 'ja3', 'ja4', 'user-agent', 'header:NAME', 'cookie:NAME'."""
    values = []
    for part in parts:
        if part == "ip":
            values.append(request.source_ip)
        elif part in ("ja3", "ja4"):
            values.append(request.header(f"x-{part}"))
        elif part.startswith("cookie:"):
            wanted = part[7:]
            values.append(next((v for n, v in request.cookies if n == wanted), ""))
        else:
            values.append(request.header(part.removeprefix("header:")))
    return "\x1f".join(values)


def observation(request: Request) -> Observation:
    dest = request.header("sec-fetch-dest")
    accept = request.header("accept")
    is_page = dest == "document" or (not dest and "text/html" in accept)
    return Observation(
        path=request.url_path,
        is_page=is_page,
        cookie=request.header("cookie"),
        user_agent=request.header("user-agent"),
        has_referer=bool(request.header("referer")),
    )


class Featurizer:
    def __init__(self, catalogue: Catalogue, tracker: ClientTracker, key_parts: tuple[str, ...] = DEFAULT_CLIENT_KEY):
        self.catalogue = catalogue
        self.tracker = tracker
        self.key_parts = key_parts

    def facts(self, request: Request) -> Facts:
        agent = parse_agent(request.header("user-agent"))
        claim = self.catalogue.claim(agent.text, request.source_ip) if agent.text else None
        when = request.received_at if request.received_at is not None else time.monotonic()
        client = self.tracker.observe(client_key(request, self.key_parts), when, observation(request))
        values = signals.features(request, agent, claim)
        values.extend(client.features())
        return Facts(agent, claim, np.asarray(values, dtype=np.float32).reshape(1, -1), client.count)
