"""The committed generated code matches proto/, and the protos are wire-compatible with Envoy 1.40.

Field numbers, types and oneofs below are the facts from
../shared/reference/envoy-ext-proc.md (read from the Envoy 1.40.0 binary's descriptors).
"""
from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf.descriptor import FieldDescriptor

from extproc.wire import protogen
from extproc.wire.pb import core_pb2, processing_mode_pb2
from extproc.wire.pb import external_processor_pb2 as pb
from extproc.wire.pb import external_processor_pb2_grpc as pb_grpc

COMMITTED = Path(protogen.__file__).resolve().parent / "pb"
REGENERATE = "run `python -m extproc.wire.protogen` and commit the result"
METHOD_PATH = "/envoy.service.ext_proc.v3.ExternalProcessor/Process"


# -- generated code is not stale ------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("protogen")
    protogen.generate(out)
    return out / "extproc" / "wire" / "pb"


def test_generation_produces_the_expected_modules(generated):
    names = {p.name for p in generated.iterdir()}
    for stem in ("core", "external_processor", "http_status", "processing_mode"):
        assert f"{stem}_pb2.py" in names
        assert f"{stem}_pb2.pyi" in names
    assert "external_processor_pb2_grpc.py" in names


def test_committed_generated_code_is_not_stale(generated):
    stale = []
    for fresh in sorted(p for p in generated.rglob("*") if p.is_file()):
        committed = COMMITTED / fresh.relative_to(generated)
        if not committed.is_file():
            stale.append(f"{committed} is missing")
        elif committed.read_bytes() != fresh.read_bytes():
            stale.append(f"{committed} is stale")
    assert not stale, "; ".join(stale) + f": {REGENERATE}"


def test_no_orphaned_generated_modules(generated):
    # A proto that was deleted or renamed must not leave its old module behind.
    fresh = {p.name for p in generated.iterdir()}
    orphans = sorted(
        p.name for p in COMMITTED.iterdir()
        if p.is_file() and ("_pb2" in p.name) and p.name not in fresh
    )
    assert not orphans, f"generated modules without a proto in proto/: {orphans}: {REGENERATE}"


# -- wire compatibility with Envoy 1.40 -----------------------------------------------------


def test_service_method_path_and_streaming():
    service = pb.DESCRIPTOR.services_by_name["ExternalProcessor"]
    assert service.full_name == "envoy.service.ext_proc.v3.ExternalProcessor"
    method = service.methods_by_name["Process"]
    assert f"/{service.full_name}/{method.name}" == METHOD_PATH
    assert method.client_streaming and method.server_streaming
    assert method.input_type is pb.ProcessingRequest.DESCRIPTOR
    assert method.output_type is pb.ProcessingResponse.DESCRIPTOR


def test_generated_stub_calls_the_envoy_method_path():
    class RecordingChannel:
        def __init__(self):
            self.paths = []

        def stream_stream(self, path, *args, **kwargs):
            self.paths.append(path)
            return object()

        def __getattr__(self, name):  # unary_unary etc.: not used by this service
            raise AssertionError(f"unexpected channel method {name}")

    channel = RecordingChannel()
    pb_grpc.ExternalProcessorStub(channel)
    assert channel.paths == [METHOD_PATH]


def _field(message, name: str) -> FieldDescriptor:
    return message.DESCRIPTOR.fields_by_name[name]


@pytest.mark.parametrize(
    "message, name, number, oneof",
    [
        (pb.ProcessingRequest, "request_headers", 2, "request"),
        (pb.ProcessingRequest, "response_headers", 3, "request"),
        (pb.ProcessingRequest, "request_body", 4, "request"),
        (pb.ProcessingRequest, "response_body", 5, "request"),
        (pb.ProcessingRequest, "request_trailers", 6, "request"),
        (pb.ProcessingRequest, "response_trailers", 7, "request"),
        (pb.ProcessingRequest, "attributes", 9, None),
        (pb.ProcessingRequest, "observability_mode", 10, None),
        (pb.ProcessingRequest, "protocol_config", 11, None),
        (pb.ProcessingResponse, "request_headers", 1, "response"),
        (pb.ProcessingResponse, "request_body", 3, "response"),
        (pb.ProcessingResponse, "request_trailers", 5, "response"),
        (pb.ProcessingResponse, "immediate_response", 7, "response"),
        (pb.ProcessingResponse, "mode_override", 9, None),
        (pb.HttpHeaders, "end_of_stream", 3, None),
        (pb.HttpBody, "end_of_stream", 2, None),
        (pb.ImmediateResponse, "status", 1, None),
        (pb.ImmediateResponse, "headers", 2, None),
        (pb.ImmediateResponse, "body", 3, None),
        (pb.ImmediateResponse, "details", 5, None),
        (pb.HeaderMutation, "set_headers", 1, None),
        (pb.HeaderMutation, "remove_headers", 2, None),
        (pb.ProtocolConfiguration, "request_body_mode", 1, None),
        (core_pb2.HeaderValue, "key", 1, None),
        (core_pb2.HeaderValue, "raw_value", 3, None),
        (core_pb2.HeaderValueOption, "append", 2, None),
    ],
    ids=lambda v: v if isinstance(v, (str, int)) else getattr(v, "__name__", None),
)
def test_field_numbers_and_oneofs(message, name, number, oneof):
    field = _field(message, name)
    assert field.number == number, f"{message.__name__}.{name}"
    containing = field.containing_oneof.name if field.containing_oneof else None
    assert containing == oneof, f"{message.__name__}.{name} oneof"


def test_field_types():
    assert _field(core_pb2.HeaderValue, "raw_value").type == FieldDescriptor.TYPE_BYTES
    assert _field(core_pb2.HeaderValue, "value").type == FieldDescriptor.TYPE_STRING
    append = _field(core_pb2.HeaderValueOption, "append")
    assert append.message_type.full_name == "google.protobuf.BoolValue"
    assert _field(pb.ImmediateResponse, "body").type == FieldDescriptor.TYPE_BYTES
    assert _field(pb.ImmediateResponse, "details").type == FieldDescriptor.TYPE_STRING
    attributes = _field(pb.ProcessingRequest, "attributes")
    assert attributes.message_type.GetOptions().map_entry
    assert attributes.message_type.fields_by_name["value"].message_type.full_name == "google.protobuf.Struct"
    mode = _field(pb.ProcessingResponse, "mode_override").message_type
    assert mode.full_name == "envoy.extensions.filters.http.ext_proc.v3.ProcessingMode"
    assert _field(pb.ImmediateResponse, "status").message_type.full_name == "envoy.type.v3.HttpStatus"


def test_packages_and_reserved_async_mode():
    assert pb.ProcessingRequest.DESCRIPTOR.full_name == "envoy.service.ext_proc.v3.ProcessingRequest"
    assert core_pb2.HeaderValue.DESCRIPTOR.full_name == "envoy.config.core.v3.HeaderValue"
    assert 1 not in pb.ProcessingRequest.DESCRIPTOR.fields_by_number  # the removed async_mode


def test_body_send_mode_values():
    mode = processing_mode_pb2.ProcessingMode.BodySendMode
    assert (mode.NONE, mode.STREAMED, mode.BUFFERED, mode.BUFFERED_PARTIAL) == (0, 1, 2, 3)
    assert mode.Value("FULL_DUPLEX_STREAMED") == 4


def test_raw_value_round_trips_non_utf8_bytes():
    header = core_pb2.HeaderValue(key="x-bin", raw_value=b"\xff\xfe\r\n")
    assert core_pb2.HeaderValue.FromString(header.SerializeToString()).raw_value == b"\xff\xfe\r\n"
