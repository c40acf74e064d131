"""Case 7: help text a reader can use, several services in one option, one error style."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.main import get_command

from engine.cli import app
from tests.adoption.conftest import NOW, Invoke

COMMANDS = sorted(get_command(app).commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_no_type_noise(cli: Invoke, command: str):
    args = [command, "slack", "--help"] if command == "report" else [command, "--help"]
    result = cli(*args)
    assert result.exit_code == 0
    for noise in ("<bool>", "<str>", "<list[str]>", "<path>", "<int>"):
        assert noise not in result.stdout, (command, noise)


def test_help_paragraphs_are_wrapped_as_paragraphs_not_line_by_line(cli: Invoke):
    text = cli("gate", "--help").stdout
    # The docstring's own line breaks are not kept: the paragraph flows to the width.
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if "Three ways to get the result" in line)
    assert len(lines[first]) > 70 and len(lines[first + 1]) > 70  # full lines, not fragments
    assert "(the\n" not in text  # where the docstring's own line ended
    assert max(len(line) for line in text.splitlines()) <= 100


def test_service_repeated_or_comma_separated(project: Path, cli: Invoke):
    one = cli("evaluate", "--facts", "facts.json", "--format", "json", "--service",
              "ledger,payments-api", *NOW)
    two = cli("evaluate", "--facts", "facts.json", "--format", "json", "--service", "ledger",
              "--service", "payments-api", *NOW)
    assert one.exit_code == two.exit_code == 0
    services = {r["service"] for r in json.loads(one.stdout)["results"]}
    assert services == {"ledger", "payments-api"}
    assert json.loads(one.stdout) == json.loads(two.stdout)


@pytest.mark.parametrize(("args", "line"), [
    (["gate", "--bogus"], "error: no such option: --bogus (see "),
    (["gate", "--service", "x"], "error: missing option '--scorecard' (see "),
    (["evaluate", "--format", "xml"], "error: --format: 'xml': use table or json"),
    (["evaluate", "--facts", "missing.json"], "error: missing.json"),
])
def test_one_error_style(project: Path, cli: Invoke, args: list[str], line: str):
    result = cli(*args)
    assert result.exit_code == 2
    # The settings line (which file, or the built-in defaults) may come first; then the error.
    told = result.stderr.removeprefix(result.stderr.split("\n", 1)[0] + "\n") \
        if result.stderr.startswith("settings: ") else result.stderr
    assert told.startswith(line), result.stderr
    assert "Usage:" not in result.output and "Traceback" not in result.output
