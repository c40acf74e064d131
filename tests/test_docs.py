"""The README stays a five-minute read, and every link in it leads somewhere.

The documentation site itself is checked by `mkdocs build --strict` in scripts/test: a link
to a page or heading that does not exist there fails the test command.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest
from markdown.extensions.toc import slugify

from tests.conftest import ROOT

README = ROOT / "README.md"
MAX_README_LINES = 300

FENCE = re.compile(r"^\s*```")
CODE_SPAN = re.compile(r"`[^`]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every link and image outside code."""
    return [(number, match.group(1)) for number, line in prose_lines(text)
            for match in LINK.finditer(CODE_SPAN.sub("", line))]


def relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) and not target.startswith("//")


def anchors(path: Path) -> set[str]:
    """The ids MkDocs gives the headings of a Markdown page (its toc extension's slugify)."""
    found = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        heading = HEADING.match(line)
        if heading:
            title = re.sub(r"[*`]", "", heading.group(2))
            found.add(slugify(title, "-"))
    return found


def broken_links(document: Path) -> list[str]:
    problems = []
    for number, target in links(document.read_text(encoding="utf-8")):
        if not relative(target):
            continue
        path_part, _, fragment = target.partition("#")
        place = f"{document.relative_to(ROOT)}:{number}: {target}"
        destination = (document.parent / unquote(path_part)).resolve() if path_part else document
        if not destination.is_relative_to(ROOT):
            problems.append(f"{place}: leaves the repository")
        elif not destination.exists():
            problems.append(f"{place}: {destination.relative_to(ROOT)} does not exist")
        elif fragment and destination.suffix == ".md" and fragment not in anchors(destination):
            problems.append(f"{place}: {destination.relative_to(ROOT)} has no heading #{fragment}")
    return problems


def test_readme_is_read_in_five_minutes():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_README_LINES, (
        f"README.md has {lines} lines, more than {MAX_README_LINES}: move reference material "
        "into a page under docs/")


def test_every_relative_link_in_the_readme_points_to_a_file_that_exists():
    assert links(README.read_text(encoding="utf-8")), "README.md links to nothing"
    assert broken_links(README) == []


def test_the_readme_links_into_the_documentation_site():
    targets = {target.partition("#")[0] for _, target in links(README.read_text(encoding="utf-8"))}
    for page in ("docs/index.md", "docs/getting-started.md", "docs/scorecards.md",
                 "docs/ci-gate.md", "docs/facts.md"):
        assert page in targets, f"README.md does not link to {page}"


@pytest.mark.parametrize(("text", "expected"), [
    ("[a](docs/missing.md)", ["README.md:1: docs/missing.md: docs/missing.md does not exist"]),
    ("[a](docs/facts.md#no-such-heading)",
     ["README.md:1: docs/facts.md#no-such-heading: docs/facts.md has no heading #no-such-heading"]),
    ("![a](../outside.png)", ["README.md:1: ../outside.png: leaves the repository"]),
    ("[a](docs/facts.md) [b](https://cel.dev) `[c](nowhere.md)`", []),
    ("```\n[a](nowhere.md)\n```", []),
])
def test_broken_links_are_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str,
                                expected: list[str]):
    """The link check itself: a missing file, a missing heading, a way out of the repository
    are found; links to other sites and links inside code are not checked."""
    fake_root = tmp_path / "repo"
    (fake_root / "docs").mkdir(parents=True)
    (fake_root / "docs" / "facts.md").write_text("# Facts reference\n\n## How a service is linked\n")
    (fake_root / "README.md").write_text(text + "\n")
    monkeypatch.setattr(f"{__name__}.ROOT", fake_root)
    assert broken_links(fake_root / "README.md") == expected


def test_headings_get_the_anchors_mkdocs_gives_them(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text("# Slack: the weekly report\n\n```\n# not a heading\n```\n"
                    "## Any failure of one rule is that rule's `error`\n")
    assert anchors(page) == {"slack-the-weekly-report", "any-failure-of-one-rule-is-that-rules-error"}


def docs_build_command() -> str:
    """The line of scripts/test that builds the documentation site."""
    lines = [line for line in (ROOT / "scripts" / "test").read_text().splitlines()
             if "mkdocs build" in line and not line.lstrip().startswith("#")]
    assert len(lines) == 1, "scripts/test builds the documentation site once"
    return lines[0].strip()


def build_docs_as_the_test_command_does(project: Path) -> subprocess.CompletedProcess[str]:
    command = docs_build_command().replace(".venv/bin/mkdocs", str(ROOT / ".venv" / "bin" / "mkdocs"))
    return subprocess.run(["bash", "-c", f'set -euo pipefail; site="$1"; {command}', "build",
                           str(project / "built")], cwd=project, capture_output=True, text=True,
                          timeout=120)


def copy_of_the_site(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(ROOT / "docs", project / "docs")
    shutil.copy(ROOT / "mkdocs.yml", project / "mkdocs.yml")
    return project


def test_the_test_command_builds_the_site_strictly():
    command = docs_build_command()
    assert "--strict" in command.split()
    assert not {"-q", "--quiet"} & set(command.split()), "--quiet hides the warnings --strict counts"


def test_the_documentation_site_builds(tmp_path: Path):
    done = build_docs_as_the_test_command_does(copy_of_the_site(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(("link", "reported"), [
    ("[gone](no-such-page.md)", "no-such-page.md"),
    ("[gone](concepts.md#no-such-heading)", "#no-such-heading"),
])
def test_a_broken_link_in_the_site_fails_the_test_command(tmp_path: Path, link: str, reported: str):
    project = copy_of_the_site(tmp_path)
    with (project / "docs" / "index.md").open("a", encoding="utf-8") as page:
        page.write(f"\n{link}\n")
    done = build_docs_as_the_test_command_does(project)
    assert done.returncode != 0
    assert reported in done.stdout + done.stderr
