"""extproc/wire/messages.py: the messages tests, benchmarks and the red team send read back, through
the sidecar's own conversion, as the request they describe; and the module needs only generated code."""
from __future__ import annotations

import ast

import pytest

from extproc.wire import convert, messages
from extproc.wire.pb import processing_mode_pb2
from tests.support import REPO

BUFFERED_PARTIAL = processing_mode_pb2.ProcessingMode.BodySendMode.BUFFERED_PARTIAL


def pairs(header_map) -> list[tuple[str, bytes, str]]:
    return [(h.key, h.raw_value, h.value) for h in header_map.headers]


def test_request_headers_read_back_as_the_request_they_describe():
    message = messages.request_headers(
        "POST", "/api/orders?x=1", [("user-agent", "curl/8.5"), ("content-type", "application/json")],
        authority="shop.example", scheme="https",
        attributes={"source.address": "198.51.100.4:5000", "xds.route_name": "api", "connection.mtls": True,
                    "connection.uri_san_peer_certificate": "spiffe://corp/billing"})
    request = convert.request_from_headers(message)
    assert (request.method, request.path, request.authority, request.scheme) == ("POST", "/api/orders?x=1",
                                                                                "shop.example", "https")
    assert request.headers == (("user-agent", "curl/8.5"), ("content-type", "application/json"))
    assert request.pseudo_order == messages.ENVOY_ORDER
    assert (request.source_ip, request.route_name) == ("198.51.100.4", "api")
    assert request.mtls and request.peer == {"uri_san": "spiffe://corp/billing"}
    assert request.has_body  # a POST announces its body


def test_values_go_in_raw_value_as_bytes_whatever_their_type():
    message = messages.request_headers(b"\xff", b"/\x00?q=\xfe", [("x-bin", b"\r\n\x80"), ("x-text", "caf\u00e9"),
                                                                   ("x-escaped", "a\udcffb")])
    sent = pairs(message.request_headers.headers)
    assert sent[:4] == [(":authority", b"example.com", ""), (":path", b"/\x00?q=\xfe", ""), (":method", b"\xff", ""),
                        (":scheme", b"http", "")]
    assert sent[4:] == [("x-bin", b"\r\n\x80", ""), ("x-text", "caf\u00e9".encode(), ""), ("x-escaped", b"a\xffb", "")]


@pytest.mark.parametrize("method, end", [("GET", True), ("HEAD", True), (b"GET", True), ("POST", False),
                                         ("DELETE", False)])
def test_only_get_and_head_end_the_stream_on_their_headers(method, end):
    assert messages.request_headers(method).request_headers.end_of_stream is end
    assert messages.request_headers(method, end_of_stream=not end).request_headers.end_of_stream is (not end)


def test_pseudo_order_attributes_mode_and_observability_are_the_callers():
    order = (":method", ":authority", ":scheme", ":path")
    message = messages.request_headers(pseudo_order=order, body_mode=BUFFERED_PARTIAL, observability=True)
    assert [key for key, _raw, _value in pairs(message.request_headers.headers)] == list(order)
    assert convert.request_from_headers(message).pseudo_order == order
    assert message.protocol_config.request_body_mode == BUFFERED_PARTIAL and message.observability_mode
    assert messages.ATTRIBUTES_KEY not in message.attributes  # none unless given
    plain = messages.request_headers()
    assert not plain.HasField("protocol_config") and not plain.observability_mode


def test_bodies_trailers_and_response_messages():
    body = messages.request_body(b"q=1", end_of_stream=False, observability=True)
    assert body.WhichOneof("request") == "request_body" and body.request_body.body == b"q=1"
    assert not body.request_body.end_of_stream and body.observability_mode
    assert messages.response_body(b"<html>").response_body.end_of_stream
    response = messages.response_headers("404", [("content-type", "text/html")])
    assert response.WhichOneof("request") == "response_headers" and not response.response_headers.end_of_stream
    assert pairs(response.response_headers.headers) == [(":status", b"404", ""), ("content-type", b"text/html", "")]
    for build, kind in ((messages.request_trailers, "request_trailers"), (messages.response_trailers,
                                                                          "response_trailers")):
        trailers = build([("x-checksum", "abc")])
        assert trailers.WhichOneof("request") == kind
        assert pairs(getattr(trailers, kind).trailers) == [("x-checksum", b"abc", "")]


def test_the_builder_imports_nothing_but_generated_code():
    tree = ast.parse((REPO / "extproc" / "wire" / "messages.py").read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert {name for name in imported if name.startswith("extproc")} == {"extproc.wire.pb"}
    assert imported <= {"__future__", "collections.abc", "extproc.wire.pb"}
