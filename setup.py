"""The native transport front (extproc/wire/native/front.cc), built when the system has gRPC.

Everything else about the package is in pyproject.toml, the three C kernels included. The front
needs the system gRPC and protobuf libraries and compilers (Debian: libgrpc++-dev,
protobuf-compiler-grpc, pybind11-dev); without them, or if the build fails, the install goes on
without it and ``extproc serve`` uses the grpc.aio transport (``--transport auto``).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
FRONT = "extproc.wire._front"
PROTOS = ("external_processor", "core", "http_status", "processing_mode")  # what the front reads and writes


def _say(message: str) -> None:
    print(f"extproc native front: {message}", file=sys.stderr)


def _pkg_config(*args: str) -> list[str] | None:
    try:
        out = subprocess.run(["pkg-config", *args, "grpc++", "protobuf"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.split()


def _pybind11_include() -> str | None:
    if Path("/usr/include/pybind11/pybind11.h").exists():
        return "/usr/include"
    try:
        import pybind11
    except ImportError:
        return None
    return pybind11.get_include()


def _missing() -> str | None:
    """Why the front cannot be built here, or None."""
    tools = [tool for tool in ("pkg-config", "protoc", "grpc_cpp_plugin", "c++") if shutil.which(tool) is None]
    if tools:
        return "not found: " + ", ".join(tools)
    if _pkg_config("--exists") is None:
        return "pkg-config knows no grpc++ and protobuf (apt-get install libgrpc++-dev)"
    if _pybind11_include() is None:
        return "no pybind11 headers (apt-get install pybind11-dev)"
    return None


class BuildExt(build_ext):
    """The C kernels from pyproject.toml, then the native front when it can be built."""

    def run(self) -> None:
        super().run()
        problem = _missing()
        if problem:
            _say(f"skipped, the grpc.aio transport serves instead ({problem})")
            return
        try:
            self._build_front()
        except Exception as exc:  # noqa: BLE001 - the front is optional; grpc.aio remains
            _say(f"build failed, the grpc.aio transport serves instead: {exc}")

    def _build_front(self) -> None:
        generated = Path(self.build_temp) / "front-gen"
        generated.mkdir(parents=True, exist_ok=True)
        protos = [f"extproc/wire/pb/{name}.proto" for name in PROTOS]
        subprocess.run(["protoc", f"-I{HERE / 'proto'}", "-I/usr/include", f"--cpp_out={generated}",
                        f"--grpc_out={generated}", f"--plugin=protoc-gen-grpc={shutil.which('grpc_cpp_plugin')}",
                        *protos], check=True, cwd=HERE / "proto")
        sources = [str(HERE / "extproc/wire/native/front.cc")]
        sources += [str(generated / f"extproc/wire/pb/{name}.pb.cc") for name in PROTOS]
        sources.append(str(generated / "extproc/wire/pb/external_processor.grpc.pb.cc"))
        cflags, libs = _pkg_config("--cflags") or [], _pkg_config("--libs") or []
        extension = Extension(FRONT, sources=sources, language="c++",
                              include_dirs=[str(generated), _pybind11_include() or ""],
                              extra_compile_args=["-std=c++17", "-O2", "-fvisibility=hidden", *cflags],
                              extra_link_args=libs)
        _say("building (C++ and the generated protobuf code: a minute or two)")
        self.build_extension(extension)
        _say("built")

    def get_outputs(self) -> list[str]:
        outputs = super().get_outputs()
        front = Path(self.get_ext_fullpath(FRONT))
        return outputs + [str(front)] if front.exists() else outputs


setup(cmdclass={"build_ext": BuildExt})
