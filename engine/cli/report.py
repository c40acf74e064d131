"""Commands that send reports: ``levelset report slack``."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from core.errors import InputError, Problem, StorageError
from engine.cli.app import EXIT_BELOW, ConfigOpt, app
from engine.cli.local import fail_input, parse_now
from engine.cli.output import stderr, stdout
from engine.cli.server import load_settings_or_exit

report_app = typer.Typer(name="report", help="Send the weekly scorecard report.", rich_markup_mode=None,
                         no_args_is_help=True)
app.add_typer(report_app)


@report_app.command("slack")
def slack(
    config: ConfigOpt = None,
    now: Annotated[str | None, typer.Option(
        "--now", help="The week reported is the 7 days ending here (default: now), e.g. "
        "2026-11-30 or ISO-8601.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help='Post nothing; print the messages as JSON: [{"channel", "text", '
        '"blocks"}].')] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Post the week again to channels that already had it.")] = False,
) -> None:
    """Post the weekly report to Slack, once per week and channel.

    Exit 0 when it was sent (or there was nothing to send, or it had been sent already),
    1 when a delivery failed after its retries (it is sent by the next attempt), 2 on bad
    input (no webhook or token configured, a team channel without a bot token, a bad --now).
    """
    from engine.jobs import prepare_database
    from engine.notify.jobs import describe, send_weekly_report

    clock = parse_now(now)
    settings = load_settings_or_exit(config)
    try:
        prepare_database(settings)
        report = send_weekly_report(settings, now=clock, force=force, dry_run=dry_run)
    except InputError as error:
        raise fail_input(error.problems) from None
    except StorageError as error:
        raise fail_input([Problem("database_url", None, str(error))]) from None
    if dry_run:
        sys.stdout.write(json.dumps([item.as_json() for item in report.outgoing], indent=2,
                                    ensure_ascii=False) + "\n")
        return
    console = stdout()
    week = f"weekly report for the 7 days ending {report.key} ({settings.report.timezone})"
    if not report.outgoing:
        console.print(f"{week}: nothing to send", markup=False)
        return
    console.print(f"{week}: {report.posted} message(s) posted, {report.requests} request(s) "
                  "to Slack", markup=False)
    for _, result in report.channels:
        console.print(f"  {describe(result)}", markup=False)
    for result in report.failed:
        stderr().print(f"error: {result.channel}: delivery failed after retries: "
                       f"{result.error}", markup=False)
    if report.failed:
        raise typer.Exit(EXIT_BELOW)


__all__ = ["report_app", "slack"]
