"""The one JSON Lines writer of the sidecar (decision audit, MCP and AI gateway audit).

The request path only queues an item; one thread renders it and appends whole lines with one
``write`` per batch (``O_APPEND``), so workers sharing a file never interleave inside a line.
Files may rotate by size (``path.1`` is the newest old file). ``close()`` drains the queue, so
nothing queued before a drain is lost; a failed write is counted and logged, never raised.
"""
from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Generic, TypeVar

import orjson

from extproc.core.text import library_value

log = logging.getLogger(__name__)
Item = TypeVar("Item")
_STOP = object()
_BATCH = 256  # lines per write at most: bounds the latency of a line under a burst


def dump_line(record: dict) -> bytes:
    """A record as one JSON line; bytes of a request that were not UTF-8 shown as every library shows them."""
    try:
        return orjson.dumps(record, default=str) + b"\n"
    except TypeError:
        return orjson.dumps(library_value(record), default=str) + b"\n"


def timestamp(seconds: float) -> str:
    millis = int(seconds * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


class JsonLinesWriter(Generic[Item]):
    """Append ``render(item)`` lines to ``path`` (``-`` for stdout), rotating past ``max_bytes`` (0: never)."""

    def __init__(self, path: str, render: Callable[[Item], bytes], max_bytes: int = 0, backups: int = 0,
                 name: str = "jsonl-writer") -> None:
        self.path, self.render, self.max_bytes, self.backups = path, render, max_bytes, backups
        if path != "-":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size if path != "-" else 0
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._closed = False
        self._close_lock = threading.Lock()
        self.dropped = 0  # lines that could not be written (disk full, closed pipe); logged too

    def put(self, item: Item) -> None:
        self._queue.put(item)

    def close(self) -> None:
        """Write everything queued so far, then stop the thread (once; later calls do nothing)."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(_STOP)
        self._thread.join()
        if self.path != "-":
            os.close(self._fd)

    def _open(self) -> int:
        if self.path == "-":
            return sys.stdout.fileno()
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            lines = []
            item = self._queue.get()  # block for the first, then take what else is waiting
            while True:
                if item is _STOP:
                    stopping = True
                    break
                lines.append(self._rendered(item))
                if len(lines) >= _BATCH or self._queue.empty():
                    break
                item = self._queue.get()
            if lines and self.max_bytes:  # rotating: a file never grows past the bound by a batch
                for line in lines:
                    self._append(line)
            elif lines:
                self._append(b"".join(lines))

    def _rendered(self, item: Item) -> bytes:
        try:
            return self.render(item)
        except Exception:  # noqa: BLE001 - one bad record must not stop the writer
            log.exception("a record could not be rendered", extra={"path": self.path})
            return b""

    def _append(self, data: bytes) -> None:
        try:
            if self.max_bytes and self._size and self._size + len(data) > self.max_bytes:
                self._rotate()
            self._size += len(data)
            while data:
                written = os.write(self._fd, data)
                data = data[written:]
        except OSError as exc:
            self.dropped += data.count(b"\n")
            log.error("a JSON Lines write failed", extra={"error": str(exc), "path": self.path})

    def _rotate(self) -> None:
        """path -> path.1 -> path.2 ... up to ``backups``; the oldest goes."""
        os.close(self._fd)
        for index in range(self.backups - 1, 0, -1):
            older = f"{self.path}.{index}"
            if os.path.exists(older):
                os.replace(older, f"{self.path}.{index + 1}")
        if self.backups:
            os.replace(self.path, f"{self.path}.1")
        else:
            os.truncate(self.path, 0)
        self._fd, self._size = self._open(), 0
