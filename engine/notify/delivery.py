"""Exactly once per (kind, key, channel): claim, post the parts not yet sent, record each.

A sender claims the target in the database before posting (two senders: one posts, the
other is told it is busy), reads which parts an earlier attempt sent, posts the rest in
order and records every attempt, sent or failed, in its own transaction. A failed part stops
the channel's delivery there (the parts after it would arrive out of order) and is never
recorded as sent: the next attempt posts it and what follows. ``force`` posts every part
again. Once the poster's breaker is open (Slack failed too often in a row), a channel is
not tried: each part it still needs is recorded as skipped, for the next attempt.

The claim outlives the longest attempt can take (``claim_lease``): every request is over by
its deadline (``timeout_seconds``, connect and read together), so a second sender is told
the channel is busy for as long as the first may still post.

What this cannot promise: a post Slack took whose answer never arrived (a timeout), or a
process killed between Slack's answer and the record, is posted again by the next attempt.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from engine.notify.slack import SlackPoster
from engine.reports.messages import Message
from engine.settings import Settings, SlackSettings
from engine.storage import deliveries
from engine.storage.database import engine_for, write_scope
from engine.storage.models import DeliveryKind, DeliveryStatus

# A claim outlives the longest a sender can take; then a dead sender's claim is taken over.
CLAIM_MARGIN = timedelta(minutes=1)


class Outcome(StrEnum):
    SENT = "sent"  # every part is posted now, some or all by this attempt
    ALREADY_SENT = "already sent"  # an earlier attempt posted every part: nothing posted
    FAILED = "failed"  # a part could not be posted; it and those after it wait for the next
    BUSY = "busy"  # another process is posting to this channel right now
    SKIPPED = "skipped"  # not tried: Slack failed for the messages before (the breaker)


@dataclass(frozen=True)
class ChannelDelivery:
    """What one attempt did for one channel."""

    channel: str
    parts: int
    posted: int  # parts posted by this attempt
    outcome: Outcome
    error: str | None = None  # Slack's error string (or the connection's)
    transient: bool = False  # the error was Slack being unreachable or overloaded


def claim_lease(slack: SlackSettings, parts: int) -> timedelta:
    """The longest posting ``parts`` can take: every try of every part running to its
    deadline and waiting its longest between tries, plus a margin."""
    tries = slack.max_retries + 1
    wait = max(slack.max_retry_after_seconds, 1.5 * slack.backoff_seconds * 2 ** slack.max_retries)
    return timedelta(seconds=parts * tries * (slack.timeout_seconds + wait)) + CLAIM_MARGIN


def _holder() -> str:
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def deliver(
    settings: Settings, poster: SlackPoster, *, kind: DeliveryKind, key: str, channel: str,
    messages: Sequence[Message], force: bool = False,
) -> ChannelDelivery:
    """Post the parts of (kind, key) that ``channel`` has not had yet, in order, once."""
    engine = engine_for(settings.database_url)
    holder, now = _holder(), datetime.now(UTC)
    halted = poster.halted
    if halted is not None:
        return _skip(settings, kind=kind, key=key, channel=channel, parts=len(messages),
                     why=halted, force=force)
    with write_scope(engine) as session:
        if not deliveries.claim(session, kind=kind, key=key, channel=channel, holder=holder,
                                now=now, expires_at=now + claim_lease(settings.report.slack,
                                                                      len(messages))):
            return ChannelDelivery(channel, len(messages), 0, Outcome.BUSY)
        sent = set() if force else deliveries.sent_parts(session, kind=kind, key=key,
                                                         channel=channel)
    try:
        todo = [part for part in range(len(messages)) if part not in sent]
        if not todo:
            return ChannelDelivery(channel, len(messages), 0, Outcome.ALREADY_SENT)
        for posted, part in enumerate(todo):
            failure = poster.post(channel, messages[part])
            with write_scope(engine) as session:
                deliveries.record(
                    session, kind=kind, key=key, channel=channel, part=part,
                    status=DeliveryStatus.FAILED if failure else DeliveryStatus.SENT,
                    error=failure.error if failure else None, at=datetime.now(UTC))
            if failure is not None:
                return ChannelDelivery(channel, len(messages), posted, Outcome.FAILED,
                                       failure.error, failure.transient)
        return ChannelDelivery(channel, len(messages), len(todo), Outcome.SENT)
    finally:
        with write_scope(engine) as session:
            deliveries.release(session, kind=kind, key=key, channel=channel, holder=holder)


def _skip(settings: Settings, *, kind: DeliveryKind, key: str, channel: str, parts: int,
          why: str, force: bool) -> ChannelDelivery:
    """Record each part ``channel`` still needs as skipped (not tried), for the next attempt."""
    with write_scope(engine_for(settings.database_url)) as session:
        sent = set() if force else deliveries.sent_parts(session, kind=kind, key=key,
                                                         channel=channel)
        at = datetime.now(UTC)
        for part in range(parts):
            if part not in sent:
                deliveries.record(session, kind=kind, key=key, channel=channel, part=part,
                                  status=DeliveryStatus.SKIPPED, error=why, at=at)
    return ChannelDelivery(channel, parts, 0, Outcome.SKIPPED, why, transient=True)
