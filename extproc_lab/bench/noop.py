"""A do-nothing ext_proc server: CONTINUE to every message. The baseline for saturation throughput.

    python -m extproc_lab.bench.noop --address 127.0.0.1:50051

The same transport as the sidecar (grpc.aio, a bidi stream per HTTP request, SO_REUSEPORT) and
nothing else, so the difference to it is the cost of the decision core, layers included.
"""
from __future__ import annotations

import argparse
import asyncio
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from extproc.wire.pb import external_processor_pb2 as pb
from extproc.wire.pb import external_processor_pb2_grpc as pb_grpc

_REPLIES = {
    "request_headers": pb.ProcessingResponse(request_headers=pb.HeadersResponse()),
    "response_headers": pb.ProcessingResponse(response_headers=pb.HeadersResponse()),
    "request_body": pb.ProcessingResponse(request_body=pb.BodyResponse()),
    "response_body": pb.ProcessingResponse(response_body=pb.BodyResponse()),
    "request_trailers": pb.ProcessingResponse(request_trailers=pb.TrailersResponse()),
    "response_trailers": pb.ProcessingResponse(response_trailers=pb.TrailersResponse()),
}


class Continue(pb_grpc.ExternalProcessorServicer):
    async def Process(self, request_iterator, context):  # noqa: N802 (gRPC name)
        async for message in request_iterator:
            yield _REPLIES[message.WhichOneof("request")]


async def serve(address: str) -> None:
    server = grpc.aio.server(options=[("grpc.so_reuseport", 1)])
    pb_grpc.add_ExternalProcessorServicer_to_server(Continue(), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    server.add_insecure_port(address)
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m extproc_lab.bench.noop")
    parser.add_argument("--address", required=True)
    asyncio.run(serve(parser.parse_args(argv).address))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
