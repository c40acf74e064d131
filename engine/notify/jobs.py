"""Job functions of notifications: what ``levelset report slack``, both schedulers and the
evaluation callers run. Each takes its message builder as a parameter (by default the one
``engine.reports`` provides) and holds the logic; the CLI command and the tasks only call.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.errors import Problem, SettingsError
from engine.jobs.drops import drops_to_notify, regressions
from engine.notify.delivery import ChannelDelivery, Outcome, deliver
from engine.notify.slack import Destination, Mode, SlackPoster, channel_for, configured, destination
from engine.notify.sources import DropBuilder, WeeklyBuilder, drop_builder, weekly_builder
from engine.reports.messages import Message
from engine.settings import Settings
from engine.storage.database import engine_for, session_scope
from engine.storage.history.diff import Event, LevelChanged
from engine.storage.models import DeliveryKind

log = logging.getLogger("levelset.notify")

# A scheduled report that failed is tried again (the parts not yet sent, for the same week)
# this long after, this many times; both schedulers do, as ``report_retry`` says.
REPORT_RETRY_DELAY = timedelta(minutes=10)
REPORT_RETRIES = 6


@dataclass(frozen=True)
class Outgoing:
    """A message and the channel it goes to."""

    channel: str
    message: Message

    def as_json(self) -> dict[str, Any]:
        return {"channel": self.channel, "text": self.message.text,
                "blocks": self.message.blocks}


@dataclass
class DeliveryReport:
    """What one delivery job did: the messages, and per channel what became of them."""

    kind: DeliveryKind
    key: str  # the week's end date; for level drops, each delivery has its own key
    outgoing: list[Outgoing]
    channels: list[tuple[str, ChannelDelivery]] = field(default_factory=list)  # (key, result)
    requests: int = 0  # HTTP requests sent to Slack, retries included

    @property
    def failed(self) -> list[ChannelDelivery]:
        """The channels not delivered in full: failed, or skipped once Slack kept failing
        (both are sent by the next attempt, which the schedulers make)."""
        return [result for _, result in self.channels
                if result.outcome in (Outcome.FAILED, Outcome.SKIPPED)]

    @property
    def posted(self) -> int:
        return sum(result.posted for _, result in self.channels)

    def summary(self) -> dict[str, Any]:
        """For a task's result and a log line."""
        return {"kind": self.kind.value, "key": self.key, "messages": len(self.outgoing),
                "posted": self.posted, "requests": self.requests,
                "channels": [{"key": key, **dataclasses.asdict(result)}
                             for key, result in self.channels]}


def week_key(settings: Settings, now: datetime) -> str:
    """The report's key: the date the week ends, in ``report.timezone``."""
    return now.astimezone(ZoneInfo(settings.report.timezone)).date().isoformat()


def _destination_or_fail(settings: Settings) -> Destination:
    found = destination(settings.report.slack)
    if found is None:
        slack = settings.report.slack
        raise SettingsError([Problem("report.slack", None, (
            "no Slack destination: set "
            f"{slack.webhook_url_env or 'webhook_url_file'} (an incoming webhook) or "
            f"{slack.token_env or 'token_file'} (a bot token), or name a secret file in "
            "report.slack.webhook_url_file or token_file"))])
    return found


def _route(settings: Settings, mode: Mode | None, messages: Iterable[Message]) -> list[Outgoing]:
    """Each message with its channel; every routing problem at once, before anything is sent."""
    outgoing, problems = [], []
    for message in messages:
        try:
            outgoing.append(Outgoing(channel_for(settings.report.slack, mode, message.route),
                                     message))
        except SettingsError as error:
            problems += [p for p in error.problems if p not in problems]
    if problems:
        raise SettingsError(problems)
    return outgoing


Progress = Callable[[ChannelDelivery], None]  # told of each channel as soon as it is done


def send_weekly_report(
    settings: Settings, *, now: datetime, force: bool = False, dry_run: bool = False,
    build: WeeklyBuilder | None = None, progress: Progress | None = None,
) -> DeliveryReport:
    """The weekly report for the 7 days ending at ``now``, posted once per week and channel
    (``force``: again). ``dry_run`` builds and routes it, and posts nothing. ``progress`` is
    told of each channel as it is done.

    Raises SettingsError when no destination is configured (a dry run needs none: it shows
    the channels the settings name) or a message has no channel.
    """
    target = destination(settings.report.slack) if dry_run else _destination_or_fail(settings)
    build = build or weekly_builder()
    with session_scope(engine_for(settings.database_url)) as session:
        messages = build(session, now=now, settings=settings.report)
    report = DeliveryReport(DeliveryKind.WEEKLY, week_key(settings, now),
                            _route(settings, target.mode if target else None, messages))
    if dry_run or target is None or not report.outgoing:
        return report
    by_channel: dict[str, list[Message]] = {}
    for item in report.outgoing:
        by_channel.setdefault(item.channel, []).append(item.message)
    poster = SlackPoster(target)
    for channel, parts in by_channel.items():
        result = deliver(settings, poster, kind=DeliveryKind.WEEKLY, key=report.key,
                         channel=channel, messages=parts, force=force)
        report.channels.append((report.key, result))
        report.requests = poster.requests
        if progress is not None:
            progress(result)
    return report


def notify_level_drops(
    settings: Settings, *, events: Sequence[Event], build: DropBuilder | None = None,
    progress: Progress | None = None,
) -> DeliveryReport | None:
    """One message per regression among ``events``, each posted once (by its key).

    None when ``notify.level_drops`` is off, nothing dropped, or no destination is configured.
    Once Slack failed for ``breaker_failures`` messages in a row, the rest are not tried
    (each would wait its retries out too) and are recorded as skipped.
    """
    drops = drops_to_notify(settings, events)
    if not drops:
        return None
    target = destination(settings.report.slack)
    if target is None:
        log.warning("notify.level_drops is on, but no Slack webhook or token is configured: "
                    "%d level drop(s) not notified", len(drops))
        return None
    build = build or drop_builder()
    with session_scope(engine_for(settings.database_url)) as session:
        alerts = build(session, events=drops, settings=settings.report)
    outgoing = _route(settings, target.mode, (message for _, message in alerts))
    report = DeliveryReport(DeliveryKind.DROP, "", outgoing)
    poster = SlackPoster(target)
    for (key, _), item in zip(alerts, outgoing, strict=True):
        result = deliver(settings, poster, kind=DeliveryKind.DROP, key=key,
                         channel=item.channel, messages=[item.message])
        report.channels.append((key, result))
        report.requests = poster.requests
        if progress is not None:
            progress(result)
    return report


def level_drops_after_run(
    settings: Settings, events: Sequence[Event], *, run_id: int | None = None,
    build: DropBuilder | None = None,
) -> DeliveryReport | None:
    """``notify_level_drops`` for a stored run, never raising: a notification that fails is
    logged (and recorded as failed), and the run it follows is not affected."""
    if not drops_to_notify(settings, events):
        return None
    what = f"run {run_id}: level-drop notifications"
    try:
        report = notify_level_drops(settings, events=events, build=build,
                                    progress=lambda result: _log_channel(result, what))
    except Exception as error:  # whatever happens here must not reach the run's caller
        log.warning("%s not sent: %s", what, error)
        return None
    if report is not None and not report.outgoing:
        log.info("%s: nothing to send", what)
    return report


def level_drops_in_background(
    settings: Settings, events: Sequence[Event], *, run_id: int | None = None,
    build: DropBuilder | None = None,
) -> threading.Thread | None:
    """``level_drops_after_run`` on a thread of its own, for the server's runs."""
    if not drops_to_notify(settings, events):
        return None
    thread = threading.Thread(target=level_drops_after_run, args=(settings, events),
                              kwargs={"run_id": run_id, "build": build},
                              name=f"levelset-notify-{run_id}", daemon=True)
    thread.start()
    return thread


def drops_payload(events: Iterable[Event]) -> list[dict[str, Any]]:
    """The regressions among ``events`` as JSON values (a Celery task's argument)."""
    return [dataclasses.asdict(event) for event in regressions(events)]


def drops_from_payload(payload: Sequence[Mapping[str, Any]]) -> list[LevelChanged]:
    return [LevelChanged(**{**item, "blocking": tuple(item.get("blocking", ()))})
            for item in payload]


def scheduled_report(settings: Settings, *, now: datetime | None = None,
                     build: WeeklyBuilder | None = None) -> DeliveryReport | None:
    """The weekly report as the schedulers run it: each channel logged; a no-op (with a log
    line) when no Slack destination is configured. A failed delivery is in the report (see
    ``report_retry``); bad settings raise, as for every scheduled job."""
    now = now or datetime.now(UTC).replace(second=0, microsecond=0)
    if not configured(settings.report.slack):
        log.info("weekly report not sent: no Slack webhook or token is configured")
        return None
    what = f"weekly report for the week ending {week_key(settings, now)}"
    report = send_weekly_report(settings, now=now, build=build,
                                progress=lambda result: _log_channel(result, what))
    if not report.outgoing:
        log.info("%s: nothing to send", what)
    return report


def report_retry(report: DeliveryReport | None, *, attempt: int) -> timedelta | None:
    """The retry policy of the scheduled report: when attempt ``attempt`` (0: the scheduled
    one) left deliveries failed, the same week is tried again ``REPORT_RETRY_DELAY`` later,
    up to ``REPORT_RETRIES`` times; None: no retry. Each scheduler only carries it out."""
    if report is None or not report.failed or attempt >= REPORT_RETRIES:
        return None
    log.warning("weekly report for the week ending %s: trying the failed deliveries again in %s",
                report.key, REPORT_RETRY_DELAY)
    return REPORT_RETRY_DELAY


def describe(result: ChannelDelivery) -> str:
    """One line about one channel, for people (no secret can be in it)."""
    count = f"{result.parts} message{'s' if result.parts != 1 else ''}"
    if result.outcome == Outcome.SENT:
        return f"{result.channel}: sent ({result.posted} of {count} by this attempt)"
    if result.outcome == Outcome.ALREADY_SENT:
        return f"{result.channel}: already sent ({count}); nothing posted (--force sends again)"
    if result.outcome == Outcome.BUSY:
        return f"{result.channel}: another process is sending it now; nothing posted"
    if result.outcome == Outcome.SKIPPED:
        return (f"{result.channel}: not tried (Slack was failing for the messages before: "
                f"{result.parts} left for the next attempt)")
    return (f"{result.channel}: failed after retries: {result.error} ({result.posted} of "
            f"{count} posted; the rest is sent by the next attempt)")


def _log_channel(result: ChannelDelivery, what: str) -> None:
    level = logging.WARNING if result.outcome in (Outcome.FAILED, Outcome.SKIPPED) else logging.INFO
    log.log(level, "%s: %s", what, describe(result))

