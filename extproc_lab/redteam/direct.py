"""A direct ext_proc call to the sidecar, as an attacker who reached its port would make it: Envoy's
request-headers message for a protected path, claiming a client certificate Envoy verified. Whoever
can make this call is believed, so the sidecar must refuse it from anywhere but its own Envoy. Run it
from where an attacker would be (another pod, another host): an answer there is a finding."""
from __future__ import annotations

import grpc

from extproc.wire import messages
from extproc.wire.pb import external_processor_pb2 as pb
from extproc.wire.pb import external_processor_pb2_grpc as pb_grpc

FORGED_SAN = "spiffe://redteam.invalid/ns/any/sa/forged"
ANSWERED, REFUSED = "answered", "refused"


def forged_request(path: str) -> pb.ProcessingRequest:
    return messages.request_headers("GET", path, authority="redteam.example", scheme="https", attributes={
        "connection.mtls": True, "connection.uri_san_peer_certificate": FORGED_SAN, "source.address": "10.0.0.9:1234"})


def probe_sidecar(address: str, path: str = "/", timeout: float = 5.0) -> dict:
    """One plaintext ext_proc stream to ``address`` (host:port or unix:/path): answered or refused, and why."""
    row = {"name": "direct-ext-proc", "description": f"a direct ext_proc call to {address} claiming mTLS as "
                                                     f"{FORGED_SAN}"}
    try:
        with grpc.insecure_channel(address) as channel:
            replies = list(pb_grpc.ExternalProcessorStub(channel).Process(iter([forged_request(path)]),
                                                                          timeout=timeout))
    except grpc.RpcError as exc:
        return {**row, "verdict": REFUSED, "note": f"{exc.code().name}: {exc.details()}"[:200]}
    return {**row, "verdict": ANSWERED,
            "note": f"the sidecar answered ({_answer(replies)}): whoever reaches this address is believed"}


def _answer(replies: list[pb.ProcessingResponse]) -> str:
    for reply in replies:
        if reply.WhichOneof("response") == "immediate_response":
            return f"a deny, {reply.immediate_response.status.code}: the forged SAN is not allowed there"
        minted = sorted({o.header.key for o in reply.request_headers.response.header_mutation.set_headers})
        if minted:
            return "allowed, setting " + ", ".join(minted)
    return "allowed"
