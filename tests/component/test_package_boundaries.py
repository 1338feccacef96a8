"""The serving package (extproc) and the tooling (extproc_lab) stay apart: serving imports nothing
from the tooling, neither package has an import cycle, and without the tooling the CLI still
serves and says what to install for the tooling's commands."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support import REPO

ROOT = REPO
DEMO = ROOT / "deploy" / "policy" / "demo.yaml"
# Makes extproc_lab unimportable, as in the image (which copies extproc/ alone), then runs the CLI.
WITHOUT_LAB = "import sys; sys.modules['extproc_lab'] = None; from extproc.cli import main; sys.exit(main(sys.argv[1:]))"


def modules(package: str) -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported_names(module: str, path: Path) -> set[str]:
    """Every module named by an import statement anywhere in the file (functions included)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            names.add(origin)
            names.update(f"{origin}.{alias.name}" for alias in node.names)
    return names


def import_graph(package: str) -> dict[str, set[str]]:
    found = modules(package)
    return {name: {m for m in imported_names(name, path) if m in found and m != name} for name, path in found.items()}


def cycle_in(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as the list of its modules, or None (depth-first, three colours)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for child in sorted(graph[node]):
            if state.get(child) == 1:
                return stack[stack.index(child):] + [child]
            if child not in state and (found := visit(child)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_serving_package_imports_nothing_from_the_tooling():
    offenders = {name: sorted(m for m in imported_names(name, path) if m.split(".")[0] == "extproc_lab")
                 for name, path in modules("extproc").items()}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_import_walk_sees_imports_inside_functions():
    # the check above would pass vacuously if it missed the lazy imports the CLI is full of
    assert "extproc.local.demo" in imported_names("extproc.cli", ROOT / "extproc" / "cli.py")


@pytest.mark.parametrize("package", ["extproc", "extproc_lab"])
def test_no_import_cycles(package):
    assert cycle_in(import_graph(package)) is None


def test_the_cycle_finder_finds_a_cycle():
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]


def test_every_serving_module_imports_without_the_tooling():
    names = [name for name in modules("extproc") if name != "extproc.__main__"]
    code = "import importlib, sys; sys.modules['extproc_lab'] = None\nfor n in sys.argv[1:]: importlib.import_module(n)"
    result = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def run_without_lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_LAB, *args], capture_output=True, text=True, timeout=60)


def test_without_the_tooling_the_cli_checks_config_and_names_what_to_install():
    checked = run_without_lab("check-config", str(DEMO))
    assert checked.returncode == 0, checked.stderr
    assert ": ok (sha256" in checked.stdout
    for command, purpose in (("bench", "benchmarks"), ("redteam", "the red team"), ("train", "training")):
        result = run_without_lab(command, "--quick")
        assert result.returncode == 2
        assert f"install extproc[dev] (extproc_lab) for {purpose}" in result.stderr
    assert "bench" not in run_without_lab("--help").stdout


def test_with_the_tooling_the_cli_has_its_commands():
    listed = subprocess.run([sys.executable, "-m", "extproc", "--help"], capture_output=True, text=True, timeout=60)
    assert all(command in listed.stdout for command in ("redteam", "bench", "train"))
    trainer = subprocess.run([sys.executable, "-m", "extproc", "train", "bot", "--help"],
                             capture_output=True, text=True, timeout=60)
    assert trainer.returncode == 0
    assert "python -m extproc_lab.bot.train" in trainer.stdout and "--iterations" in trainer.stdout
