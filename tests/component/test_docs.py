"""The docs: README.md stays one page, docs/ builds as a site with `mkdocs build --strict`, and every
relative link (with its #anchor) resolves both on the site and on GitHub."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pytest
from tests.support import REPO

ROOT = REPO
DOCS = ROOT / "docs"
README = ROOT / "README.md"
README_MAX_BYTES = 12_000  # the bound: a page a newcomer reads, the rest lives in docs/

FENCE = re.compile(r"^```.*?^```", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.M)
LIST_MARKER = re.compile(r"^(\s*)([-*]|\d+\.) ")


def markdown_files():
    return [README, *sorted(DOCS.glob("*.md"))]


def prose(text):
    """The text links live in: fenced blocks and inline code hold examples, not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def github_slug(heading):
    """The anchor GitHub gives a heading (python-markdown's toc gives the same for these pages)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path):
    return {github_slug(h) for h in HEADING.findall(FENCE.sub("", path.read_text()))}


def relative_links(path):
    for target in LINK.findall(prose(path.read_text())):
        if not re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: go elsewhere
            yield target


def test_readme_is_one_page():
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; move detail to docs/ (limit {README_MAX_BYTES})"


def test_every_relative_link_points_at_a_file_and_heading():
    broken = []
    for source in markdown_files():
        for target in relative_links(source):
            file_part, _, anchor = target.partition("#")
            dest = (source.parent / file_part).resolve() if file_part else source
            if not dest.is_file():
                broken.append(f"{source.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{source.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_readme_links_every_docs_page():
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in relative_links(README)}
    missing = [p.name for p in DOCS.glob("*.md") if p.resolve() not in linked]
    assert not missing, f"README.md does not link {missing}"


def test_site_index_gives_the_readme_commands():
    """docs/index.md repeats the two commands; they must stay the README's (CI runs the README's)."""
    commands = re.findall(r"^```sh\n(.*?)^```", README.read_text(), re.S | re.M)
    assert len(commands) == 2
    index = (DOCS / "index.md").read_text()
    assert all(command in index for command in commands)


def list_layout_problems(text):
    """Markdown that GitHub renders as a list but python-markdown (the site) does not: a list with
    no blank line before it, or a nested block indented less than four spaces."""
    problems, in_fence, lines = [], False, text.split("\n")
    for number, line in enumerate(lines, 1):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence or not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        previous = lines[number - 2] if number > 1 else ""
        if 0 < indent < 4 and LIST_MARKER.match(line):
            problems.append(f"{number}: nested list indented {indent} (needs 4)")
        elif 0 < indent < 4 and not previous.strip() and not line.lstrip().startswith("|"):
            problems.append(f"{number}: paragraph inside a list indented {indent} (needs 4)")
        elif (indent == 0 and LIST_MARKER.match(line) and previous.strip()
              and not LIST_MARKER.match(previous) and not previous.startswith((" ", "```"))):
            problems.append(f"{number}: list right after a paragraph (needs a blank line)")
    return problems


def test_docs_lists_render_on_the_site_as_on_github():
    found = [f"docs/{p.name}:{problem}" for p in sorted(DOCS.glob("*.md")) for problem in list_layout_problems(p.read_text())]
    assert not found, "\n".join(found)


def test_list_layout_check_sees_both_mistakes():
    assert list_layout_problems("Text:\n- item\n") == ["2: list right after a paragraph (needs a blank line)"]
    assert list_layout_problems("- item\n  - nested\n") == ["2: nested list indented 2 (needs 4)"]
    assert list_layout_problems("Text:\n\n- item\n    - nested\n\n    more\n") == []


def mkdocs_build(config, site):
    if importlib.util.find_spec("mkdocs") is None:
        message = "mkdocs is not installed: pip install -e '.[docs]' (the dev extra includes it)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs the dev extra: a missing mkdocs is a broken install
        pytest.skip(message)
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        capture_output=True, text=True, timeout=120,
    )


def test_site_builds_strictly_with_every_page(tmp_path):
    result = mkdocs_build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    for page in DOCS.glob("*.md"):
        built = tmp_path / "site" / ("index.html" if page.stem == "index" else f"{page.stem}/index.html")
        assert built.is_file(), f"{page.name} was not built"


def test_a_broken_anchor_fails_the_site_build(tmp_path):
    """The validation settings in mkdocs.yml are what make a bad #anchor fail, not just a bad file."""
    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    with (tmp_path / "docs" / "index.md").open("a") as index:
        index.write("\nSee [the envoy page](envoy.md#no-such-heading).\n")
    result = mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-heading" in result.stderr
