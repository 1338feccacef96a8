"""A fake OpenAI-compatible upstream for the AI-gateway tests: echoes what it received (so tests
see redaction) and reports usage, as one JSON body or as a server-sent-event stream. It reads
bodies as a lenient Python server does: a gzip content-encoding undone, a UTF-8 BOM skipped
(``json.loads`` of bytes), chat messages or a legacy completions prompt."""
from __future__ import annotations

import gzip
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMPLETION_TOKENS = 7


class FakeLlm:
    """``pieces``: content events of a streamed answer (the echo cut in as many). ``pause_at``: a
    streamed answer stops after that many pieces, sets ``mid_stream`` and waits for ``resume``.
    ``split``: each event is written in chunks of that many bytes (a proxy sees them apart);
    ``crlf``: lines end with CRLF."""

    def __init__(self, prompt_tokens: int = 1000, pieces: int = 2, pause_at: int | None = None,
                 split: int | None = None, crlf: bool = False) -> None:
        self.prompt_tokens = prompt_tokens
        self.pieces, self.pause_at, self.split = pieces, pause_at, split
        self.line_end = b"\r\n" if crlf else b"\n"
        self.mid_stream, self.resume = threading.Event(), threading.Event()
        self.received: list[dict] = []
        self.received_headers: list[dict[str, str]] = []  # lower-case names, one per request
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else self._read_chunked()
                headers = {name.lower(): value for name, value in self.headers.items()}
                if headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                request = json.loads(body)
                fake.received.append(request)
                fake.received_headers.append(headers)
                usage = {"prompt_tokens": fake.prompt_tokens, "completion_tokens": COMPLETION_TOKENS,
                         "total_tokens": fake.prompt_tokens + COMPLETION_TOKENS}
                echo = request["messages"][-1]["content"] if "messages" in request else str(request.get("prompt"))
                if request.get("stream"):
                    return self._stream(echo, usage)
                data = json.dumps({"id": "c1", "object": "chat.completion", "model": request["model"],
                                   "choices": [{"index": 0, "message": {"role": "assistant", "content": echo}}],
                                   "usage": usage}).encode()
                self._send(200, "application/json", data)

            def _stream(self, echo: str, usage: dict) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                for index, piece in enumerate(_cut(echo, fake.pieces)):
                    if index == fake.pause_at:
                        fake.mid_stream.set()
                        fake.resume.wait(30)
                    self._chunk({"choices": [{"index": 0, "delta": {"content": piece}}]})
                    time.sleep(0.05 if fake.pieces <= 2 else 0.005)
                self._chunk({"choices": [], "usage": usage})
                self._write(b"data: [DONE]" + fake.line_end * 2)
                self.wfile.write(b"0\r\n\r\n")

            def _chunk(self, event: dict) -> None:
                data = b"data: " + json.dumps(event).encode() + fake.line_end * 2
                step = fake.split or len(data)
                for at in range(0, len(data), step):
                    self._write(data[at:at + step])
                    if fake.split:
                        time.sleep(0.002)

            def _write(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _read_chunked(self) -> bytes:
                body = b""
                while True:
                    size = int(self.rfile.readline().strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return body
                    body += self.rfile.read(size)
                    self.rfile.readline()

            def _send(self, status: int, content_type: str, data: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _cut(text: str, pieces: int) -> list[str]:
    """text in ``pieces`` consecutive parts (some empty when it is shorter)."""
    step = -(-len(text) // pieces) if text else 0
    return [text[i * step:(i + 1) * step] for i in range(pieces)]
