"""The native transport: the compiled front (extproc/wire/native/front.cc) owns the listener and
the ext_proc streams; every decision is made here in Python, by the same Session as grpc.aio's.

The front is built at install when the system has gRPC (setup.py); ``available()`` says whether
it was. It runs one thread of its own, which takes the GIL only to call a stream's Session (once
per message) and the answer-report reader.
"""
from __future__ import annotations

import asyncio
from types import ModuleType
from typing import TYPE_CHECKING

from extproc.wire.answers import report_reader
from extproc.wire.session import Sidecar

if TYPE_CHECKING:
    from extproc.config.store import PolicyStore
    from extproc.observability.metrics import Metrics
    from extproc.wire.listen import TlsFiles
    from extproc.wire.session import Observers


def _load() -> tuple[ModuleType | None, str]:
    try:
        from extproc.wire import _front  # type: ignore[attr-defined]
    except ImportError as exc:
        return None, f"{exc}; it is built at install when libgrpc++-dev and protobuf-compiler-grpc are there"
    return _front, ""


_FRONT, _WHY_NOT = _load()


def available() -> bool:
    return _FRONT is not None


def why_not() -> str:
    return _WHY_NOT


class NativeTransport:
    name = "native"

    def __init__(self, store: PolicyStore, metrics: Metrics, observers: Observers, *, address: str,
                 tls: TlsFiles | None, health_address: str | None) -> None:
        assert _FRONT is not None, _WHY_NOT
        self.address, self.tls, self.health_address = address, tls, health_address
        sidecar = Sidecar(store, metrics, observers)
        self.front = _FRONT.Front(sidecar.open, report_reader(lambda: store.current, sidecar.answer_read))
        # Health alone on its own port (kubelet probes from outside the pod): never ext_proc there.
        self.health_front = _FRONT.Front(None, None) if health_address else None

    @property
    def fronts(self) -> list:
        return [front for front in (self.front, self.health_front) if front is not None]

    async def start(self) -> int:
        self.front.add_port(self.address, self.tls.read() if self.tls is not None else None)
        (port,) = self.front.start()
        if self.health_front is not None and self.health_address:
            self.health_front.add_port(self.health_address)
            try:
                self.health_front.start()
            except RuntimeError:
                self.front.stop(0)
                raise
        return port

    async def set_health(self, service: str, serving: bool) -> None:
        for front in self.fronts:
            front.set_serving(service, serving)

    async def enter_graceful_shutdown(self) -> None:
        for front in self.fronts:
            front.health_shutdown()

    async def stop(self, grace: float) -> None:
        # stop() waits for the streams in flight with the GIL released; the loop runs meanwhile.
        await asyncio.to_thread(self.front.stop, grace)
        if self.health_front is not None:
            self.health_front.stop(0)
