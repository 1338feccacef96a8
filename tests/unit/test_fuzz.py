"""Random hostile requests through the whole stream path with the demo policy: every message gets a
well-formed reply, and no layer ever fails (a failing layer would turn into a 503)."""
from __future__ import annotations

import random

import pytest

from extproc.config.compile import load_policy
from extproc.wire import messages
from extproc.wire.pb import external_processor_pb2 as pb
from extproc.local.stack import DEMO_POLICY
from extproc.wire.stream import StreamProcessor

ALPHABET = (b"\x00\xff\xfe\xc0\xaf%25%u00%c0%ae\\u00\\x3c<>'\"`;|&$(){}[]*/\\.-_=+?#@!~ \t\r\n"
            b"abcSELECTunionscript../etc/passwd${jndi:}\xe2\x80\xae\xf0\x9f\x98\x80\xed\xa0\x80")
CONTENT_TYPES = ["application/json", "application/x-www-form-urlencoded", "multipart/form-data; boundary=b",
                 "multipart/form-data", "application/xml", "text/plain", "image/png", "application/vnd.x+json", ""]


def noise(rng: random.Random, size: int) -> bytes:
    return bytes(rng.choice(ALPHABET) for _ in range(size))


def headers_message(rng: random.Random, has_body: bool) -> pb.ProcessingRequest:
    path = b"/" + noise(rng, rng.randint(0, 60)) + b"?" + noise(rng, rng.randint(0, 120))
    authority, method = noise(rng, 8), rng.choice([b"GET", b"POST", b"PUT", b"\xff"])
    headers = [("user-agent", noise(rng, 40)), ("cookie", noise(rng, 60)),
               ("content-type", rng.choice(CONTENT_TYPES).encode()), ("x-custom", noise(rng, 30)),
               ("x-request-id", noise(rng, 20)), ("x-extproc-tags", b"forged")]
    attributes = {"source.address": rng.choice(["1.2.3.4:5", "[::1]:80", "garbage", ""]),
                  "xds.route_name": rng.choice(["api", "default", "", "\x00"])}
    return messages.request_headers(method, path, headers, authority=authority, end_of_stream=not has_body,
                                    attributes=attributes)


@pytest.mark.parametrize("seed", range(6))
def test_random_hostile_requests_get_defined_replies(seed, caplog):
    policy = load_policy(DEMO_POLICY)
    rng = random.Random(seed)
    for _ in range(60):
        has_body = rng.random() < 0.6
        stream = StreamProcessor(policy)
        reply = stream.handle(headers_message(rng, has_body))
        assert reply.WhichOneof("response") in ("request_headers", "immediate_response")
        if has_body and reply.WhichOneof("response") == "request_headers":
            body = noise(rng, rng.randint(0, 3000))
            if rng.random() < 0.3:
                body = b"[" * 3000 + body  # deep JSON-ish
            reply = stream.handle(messages.request_body(body))
            assert reply.WhichOneof("response") in ("request_body", "immediate_response")
        if stream.decision is not None:
            assert not any(r.outcome.value == "error" for r in stream.decision.results), stream.decision
    assert "failed" not in caplog.text
