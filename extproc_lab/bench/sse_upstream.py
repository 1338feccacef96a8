"""An OpenAI-compatible upstream that streams answers at a fixed token rate, for the streaming
benchmark:

    python -m extproc_lab.bench.sse_upstream --port 8081 --events 400 --rate 200

Every POST gets an event stream of ``--events`` content events, event i due at the stream's start
+ i / ``--rate`` (open loop: a late event does not push the ones after it), then the usage event
and ``[DONE]``. Each content event carries the CLOCK_MONOTONIC nanoseconds it was due and sent
(``"due"``, ``"sent"``), which the client subtracts from the time it read it: the latency of
everything between, and how late this server was. Plain asyncio protocols: cheap enough that the
proxy, not this server, is what a run measures.
"""
from __future__ import annotations

import argparse
import asyncio
import re
import signal
import time

HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
        b"transfer-encoding: chunked\r\n\r\n")
CONTENT_LENGTH = re.compile(rb"(?im)^content-length:\s*(\d+)")
CHUNKED = re.compile(rb"(?im)^transfer-encoding:\s*chunked")
USAGE = b'data: {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": %d, "total_tokens": %d}}\n\n'


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def content_event(due_ns: int) -> bytes:
    return (b'data: {"choices": [{"index": 0, "delta": {"content": "tok"}}], "due": %d, "sent": %d}\n\n'
            % (due_ns, time.monotonic_ns()))


class StreamingUpstream(asyncio.Protocol):
    def __init__(self, events: int, rate: float) -> None:
        self.events, self.rate = events, rate
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or not self._whole_request(end):
            return
        self.buffer = b""  # one request per connection: the bench's clients close after the answer
        asyncio.get_running_loop().create_task(self._answer())

    def _whole_request(self, end: int) -> bool:
        head, body = self.buffer[:end], self.buffer[end + 4:]
        if CHUNKED.search(head):  # a body the sidecar rewrote travels chunked
            return body.endswith(b"0\r\n\r\n")
        length = CONTENT_LENGTH.search(head)
        return len(body) >= (int(length.group(1)) if length else 0)

    async def _answer(self) -> None:
        transport = self.transport
        assert transport is not None
        transport.write(HEAD)
        start = time.monotonic_ns()
        interval = 1e9 / self.rate
        for index in range(self.events):
            due = start + int(index * interval)
            delay = (due - time.monotonic_ns()) / 1e9
            if delay > 0:
                await asyncio.sleep(delay)
            if transport.is_closing():
                return
            transport.write(chunk(content_event(due)))
        transport.write(chunk(USAGE % (self.events, self.events + 12)) + chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")


async def serve(port: int, events: int, rate: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: StreamingUpstream(events, rate), "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print("ready", flush=True)
    await stop.wait()
    server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m extproc_lab.bench.sse_upstream")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--rate", type=float, default=200.0, help="content events per second per stream")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, args.events, args.rate))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
