"""The streaming benchmark's client: streamed LLM calls, each on a connection of its own, read as
they come, every event's latency taken from the upstream's stamp (extproc_lab/bench/sse_upstream.py)
to the moment it was read. Plain asyncio protocols, cheap enough to keep up with 12,800 events a
second next to Envoy on two cores.
"""
from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field

PROMPT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Tell me a story about the sea."}],
          "stream": True, "stream_options": {"include_usage": True}}
STAMPS = re.compile(rb'"due": (\d+), "sent": (\d+)')
SLACK_SECONDS = 30.0  # past the answers' own length, a stream still open counts as cut


@dataclass
class Totals:
    latencies_us: list[float] = field(default_factory=list)
    lateness_us: list[float] = field(default_factory=list)  # the upstream's, per event
    statuses: dict[int, int] = field(default_factory=dict)
    completed: int = 0  # 200 and read to [DONE] and the last chunk
    cut: int = 0  # 200, then ended before that
    failed: int = 0  # no answer at all (connection refused, reset before a status)


class StreamReader(asyncio.Protocol):
    """One streamed call on a connection of its own: the request, then the answer read as it comes
    (chunked framing undone as the bytes arrive, so an event cut by TCP is read whole)."""

    def __init__(self, request: bytes, totals: Totals, done: asyncio.Future) -> None:
        self.request, self.totals, self.done = request, totals, done
        self.head = b""
        self.status = 0
        self.raw = b""  # chunked bytes not decoded yet
        self.text = b""  # decoded bytes not yet split into events
        self.last_chunk = self.saw_done = False

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        transport.write(self.request)

    @property
    def finished(self) -> bool:
        return self.last_chunk and self.saw_done

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        if not self.status:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            self.status = int(self.head[9:12])
            self.totals.statuses[self.status] = self.totals.statuses.get(self.status, 0) + 1
            if self.status != 200:
                self.transport.close()
                return
            data = self.head[end + 4:]
        self.raw += data
        self._decode()
        self._read_events(now)
        if self.finished:
            self.transport.close()

    def _decode(self) -> None:
        while not self.last_chunk:
            line_end = self.raw.find(b"\r\n")
            if line_end < 0:
                return
            size = int(self.raw[:line_end].split(b";")[0] or b"0", 16)
            if len(self.raw) < line_end + 2 + size + 2:
                return
            self.text += self.raw[line_end + 2:line_end + 2 + size]
            self.raw = self.raw[line_end + 2 + size + 2:]
            self.last_chunk = size == 0

    def _read_events(self, now: int) -> None:
        cut = self.text.rfind(b"\n\n")
        if cut < 0:
            return
        events, self.text = self.text[:cut], self.text[cut + 2:]
        for due, sent in STAMPS.findall(events):
            self.totals.latencies_us.append((now - int(sent)) / 1000)
            self.totals.lateness_us.append((int(sent) - int(due)) / 1000)
        self.saw_done = self.saw_done or b"data: [DONE]" in events

    def connection_lost(self, exc) -> None:
        if self.status == 200:
            if self.finished:
                self.totals.completed += 1
            else:
                self.totals.cut += 1
        elif not self.status:
            self.totals.failed += 1
        if not self.done.done():
            self.done.set_result(None)


def call_bytes(port: int) -> bytes:
    body = json.dumps(PROMPT).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nhost: llm.bench\r\ncontent-type: application/json\r\n"
            b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))


async def stream_calls(port: int, streams: int, events: int, rate: float, stagger: float = 0.25) -> Totals:
    """``streams`` calls at once (their starts spread over ``stagger`` seconds), each read to its end."""
    totals = Totals()
    loop = asyncio.get_running_loop()
    request = call_bytes(port)

    async def one(index: int) -> None:
        await asyncio.sleep(stagger * index / max(1, streams))
        done = loop.create_future()
        try:
            transport, _ = await loop.create_connection(lambda: StreamReader(request, totals, done), "127.0.0.1", port)
        except OSError:
            totals.failed += 1
            return
        try:
            await asyncio.wait_for(done, events / rate + SLACK_SECONDS)
        except asyncio.TimeoutError:
            transport.close()  # still open long after its last event was due: counted as cut
            await done

    await asyncio.gather(*(one(i) for i in range(streams)))
    return totals
