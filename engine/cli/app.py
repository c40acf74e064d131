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

ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", help="Settings file (YAML); also LEVELSET_CONFIG.", envvar="LEVELSET_CONFIG",
    show_envvar=False,
)]
