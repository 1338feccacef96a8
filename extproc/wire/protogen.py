"""Regenerate the protobuf/gRPC modules in ``extproc/wire/pb`` from ``proto/``.

Run ``python -m extproc.wire.protogen`` (needs the ``dev`` extra for grpcio-tools). The generated
files are committed so a fresh clone imports without a build step; ``tests/unit/test_proto.py``
fails when they are stale.
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO / "proto"
PROTO_FILES = sorted(p.relative_to(PROTO_ROOT).as_posix() for p in (PROTO_ROOT / "extproc/wire/pb").glob("*.proto"))
SERVICE_FILE = "extproc/wire/pb/external_processor.proto"


def generate(out_dir: Path) -> None:
    """Compile every proto under proto/extproc/wire/pb into out_dir/extproc/wire/pb."""
    try:
        import grpc_tools
        from grpc_tools import protoc
    except ImportError as exc:  # a clear message beats a bare ModuleNotFoundError
        raise SystemExit("grpcio-tools is missing: pip install -e '.[dev]'") from exc
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    include = [f"-I{PROTO_ROOT}", f"-I{well_known}"]
    messages = ["protoc", *include, f"--python_out={out_dir}", f"--pyi_out={out_dir}", *PROTO_FILES]
    # Only the service file gets gRPC stubs; the others would produce empty modules.
    service = ["protoc", *include, f"--grpc_python_out={out_dir}", SERVICE_FILE]
    for args in (messages, service):
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed: {' '.join(args)}")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO)
