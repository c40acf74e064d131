"""The Typer application every command module registers on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="levelset",
    help="Scorecards as code: grade every service against your standards.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Exit codes mean the same for every command.
EXIT_OK = 0
EXIT_BELOW = 1  # below the bar / failing
EXIT_INPUT = 2  # bad input or usage

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
