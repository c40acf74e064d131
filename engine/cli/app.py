"""The Typer application every command module registers on."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from typer._click import echo
from typer._click.exceptions import UsageError
from typer.core import _TyperParameter

_PLAIN_TYPES = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "path": "PATH",
                "file": "FILE", "directory": "DIR", "bool": "BOOLEAN", "datetime": "DATETIME"}


def _plain_type(display_type: Callable[..., str]) -> Callable[..., str]:
    """Help shows click's plain words (TEXT, PATH) rather than Python types (<list[str]>)."""

    def plain(self: object, ctx: object) -> str:
        label = display_type(self, ctx).strip("<>")
        while label.startswith("list[") and label.endswith("]"):
            label = label[5:-1]
        label = label.removesuffix(" range")
        return _PLAIN_TYPES.get(label, label.upper())

    return plain


_TyperParameter.display_type = _plain_type(_TyperParameter.display_type)  # type: ignore[method-assign]


def _one_line_usage_error(self: UsageError, file: IO[Any] | None = None) -> None:
    """Usage errors in the one style of every error: ``error: ...``, and where to look."""
    message = self.format_message()
    message = message[0].lower() + message[1:] if message[:1].isupper() else message
    hint = f" (see {self.ctx.command_path} --help)" if self.ctx is not None else ""
    echo(f"error: {message.rstrip('.')}{hint}", file=file or sys.stderr)


UsageError.show = _one_line_usage_error  # type: ignore[method-assign]

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

app = typer.Typer(
    context_settings=CONTEXT,
    name="levelset",
    help="Scorecards as code: grade every service against your standards.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Exit codes mean the same for every command.
EXIT_OK = 0
EXIT_BELOW = 1  # below the bar / failing
EXIT_INPUT = 2  # bad input or usage
EXIT_UNREACHABLE = 3  # cannot reach a server or database, or no data to decide on

SAMPLE_FACTS = Path("samples/facts.json")


def in_own_checkout() -> bool:
    """The working directory is Levelset's own source tree (its samples are defaults only here)."""
    project = Path("pyproject.toml")
    try:
        return SAMPLE_FACTS.is_file() and 'name = "levelset"' in project.read_text(encoding="utf-8")
    except OSError:
        return False


def split_names(values: list[str] | None) -> list[str]:
    """``--service a,b --service c``: repeated or comma-separated, in order, once each."""
    names: list[str] = []
    for value in values or ():
        for name in value.split(","):
            if name.strip() and name.strip() not in names:
                names.append(name.strip())
    return names


def _output_format(value: str) -> str:
    if value not in ("table", "json"):
        from engine.cli.output import stderr

        stderr().print(f"error: --format: {value!r}: use table or json", markup=False)
        raise typer.Exit(EXIT_INPUT)
    return value


FormatOpt = Annotated[str, typer.Option("--format", help="table or json.",
                                        callback=_output_format)]

ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", help="Settings file (YAML); also LEVELSET_CONFIG.", envvar="LEVELSET_CONFIG",
    show_envvar=False,
)]
