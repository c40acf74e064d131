"""Commands that send reports: ``levelset report slack``."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from core.errors import InputError, Problem, StorageError
from engine.cli.app import EXIT_BELOW, EXIT_INPUT, ConfigOpt, app
from engine.cli.local import fail_input, parse_now
from engine.cli.output import stderr, stdout
from engine.cli.server import load_settings_or_exit
from engine.reports.preview import BOLD, CODE, DIM, ITALIC, preview

if TYPE_CHECKING:
    from engine.notify.jobs import Outgoing

report_app = typer.Typer(name="report", help="Send the weekly scorecard report.", rich_markup_mode=None,
                         no_args_is_help=True)
app.add_typer(report_app)


PREVIEW_STYLES = {BOLD: "bold", ITALIC: "italic", CODE: "cyan", DIM: "dim"}


def _preview_format(value: str) -> str:
    if value not in ("text", "json"):
        stderr().print(f"error: --format: {value!r}: use text or json", markup=False)
        raise typer.Exit(EXIT_INPUT)
    return value


@report_app.command("slack")
def slack(
    config: ConfigOpt = None,
    now: Annotated[str | None, typer.Option(
        "--now", help="The week reported is the 7 days ending here (default: now), e.g. "
        "2026-11-30 or ISO-8601.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Post nothing; print each message as Slack shows it, under its "
        "channel.")] = False,
    output_format: Annotated[str, typer.Option(
        "--format", help='With --dry-run: text (as people read it) or json (the Block Kit '
        'payloads: [{"channel", "text", "blocks"}]).', callback=_preview_format)] = "text",
    force: Annotated[bool, typer.Option(
        "--force", help="Post the week again to channels that already had it.")] = False,
) -> None:
    """Post the weekly report to Slack, once per week and channel.

    Each channel is printed as soon as it is done. Exit 0 when it was sent (or there was
    nothing to send, or it had been sent already), 1 when a delivery failed after its
    retries or was not tried because Slack kept failing (the next attempt sends it), 2 on bad
    input (no webhook or token configured, a team channel without a bot token, a bad --now).
    """
    from engine.jobs import prepare_database
    from engine.notify.delivery import Outcome
    from engine.notify.jobs import describe, send_weekly_report, week_key

    clock = parse_now(now)
    settings = load_settings_or_exit(config)
    console = stdout()
    week = (f"weekly report for the 7 days ending {week_key(settings, clock)} "
            f"({settings.report.timezone})")
    try:
        prepare_database(settings)
        report = send_weekly_report(
            settings, now=clock, force=force, dry_run=dry_run,
            progress=lambda result: console.print(f"  {describe(result)}", markup=False))
    except InputError as error:
        raise fail_input(error.problems) from None
    except StorageError as error:
        raise fail_input([Problem("database_url", None, str(error))]) from None
    if dry_run:
        _print_preview(report.outgoing, output_format)
        return
    if not report.outgoing:
        console.print(f"{week}: nothing to send", markup=False)
        return
    console.print(f"{week}: {report.posted} message(s) posted, {report.requests} request(s) "
                  "to Slack", markup=False)
    for result in report.failed:
        why = ("delivery failed after retries: " if result.outcome == Outcome.FAILED else "")
        stderr().print(f"error: {result.channel}: {why}{result.error}", markup=False)
    if report.failed:
        raise typer.Exit(EXIT_BELOW)


def _print_preview(outgoing: list[Outgoing], output_format: str) -> None:
    if output_format == "json":
        sys.stdout.write(json.dumps([item.as_json() for item in outgoing], indent=2,
                                    ensure_ascii=False) + "\n")
        return
    console = stdout()
    if not outgoing:
        console.print("nothing to send", markup=False)
    for heading, lines in preview([(item.channel, item.message) for item in outgoing]):
        console.print(Text(heading, style="bold underline"))
        for line in lines:
            console.print(Text.assemble(*[
                (span.text, " ".join(PREVIEW_STYLES[style] for style in sorted(span.styles)))
                for span in line]))
        console.print()


__all__ = ["report_app", "slack"]
