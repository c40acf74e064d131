"""What is stored, and how history stays small.

History is append-only: nothing written is ever updated. ``rule_state`` and
``scorecard_state`` hold one row per change of one (service, rule) or (service, scorecard),
keyed by the run that made it (``valid_from_run``); a state lasts until the key's next row,
which the primary key finds (service first, run last). A row is written only when something
history answers about changes:

- ``rule_state``: when a rule's status changes, with the outcome it began with and the
  scorecard's score from that run. Its latest row is therefore when the current status began
  ("failing since"). A new message or measured value under the same status is not history:
  it only replaces the rule's outcome in ``current_result``.
- ``scorecard_state``: when the version or level changes (or the score does with no rule row
  to carry it). A 2-byte rank and a 2-byte score in hundredths; the level's name is the
  version's level of that rank.

A result's level and score at any run are its latest scorecard row at or before the run, with
the score of any later rule row of its scorecard up to the run (``history.timeline``); level
changes across services are consecutive scorecard rows of a key with different ranks.

A result that stops being graded (the service left, the filter excludes it, the scorecard was
retired) gets an end-marker row: no ``version_id`` / no ``outcome_id``. Retention deletes what
ended before the cutoff: a scorecard row whose next one began before it; a rule row whose
rule changed again and whose score a later row carried, both before it; end markers from
before it once what they ended is gone.

A run that changes nothing writes nothing but its own summary row, so a year of 4-hourly runs
over 10,000 services costs what changed, not 2 billion copies. Messages and evidence repeat
across services and runs, so they live once in ``rule_outcome`` and rows point at them.
``current_result`` is the one table updated in place: a row per current result with its digest,
standing and current outcomes, which pages, lists and leaderboards read.

Model families follow one pattern: ``XBase`` holds the fields, the table model adds keys.
What the API returns is defined in ``engine.storage.public``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, SmallInteger, UniqueConstraint
from sqlmodel import AutoString, Field, SQLModel

from engine.evaluation import RuleStatus
from engine.storage.types import Hundredths, JSONColumn, JSONValue, UTCDateTime, utcnow


def _ts(nullable: bool = False, **kwargs: Any) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, **kwargs))


def _json(default: Any = None) -> Any:
    return Field(default_factory=default or dict, sa_column=Column(JSONColumn, nullable=False))


class RunStatus(StrEnum):
    """Where a run is: ``queued`` (waiting for the server's worker: no process holds it, so no
    lease runs out), ``running`` (its process renews a lease), then how it ended."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    SUPERSEDED = "superseded"  # a later run had already been stored; this one changed nothing


class RunTrigger(StrEnum):
    """What started a run: a request to the API, ``levelset serve``'s schedule, a Celery worker,
    ``levelset evaluate --config``, or a gate that needed a fresh result."""

    API = "api"
    SCHEDULE = "schedule"
    CELERY = "celery"
    CLI = "cli"
    GATE = "gate"


class SnapshotStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"


class ServiceBase(SQLModel):
    name: str = Field(index=True, unique=True, max_length=253)
    namespace: str = "default"
    title: str | None = None
    description: str | None = None
    owner: str = Field(index=True)
    lifecycle: str = Field(index=True)
    type: str = "service"
    system: str | None = None
    tier: str | None = None
    tags: list[str] = _json(list)
    annotations: dict[str, str] = _json()
    in_catalog: bool = True  # false once the service left the catalog; its history stays


class ServiceRecord(ServiceBase, table=True):
    __tablename__ = "service"
    id: int | None = Field(default=None, primary_key=True)
    first_seen: datetime = _ts()
    last_seen: datetime = _ts()


class ScorecardRecord(SQLModel, table=True):
    """A scorecard by name; ``version_id`` is the version in use (the last one that loaded)."""

    __tablename__ = "scorecard"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=63)
    version_id: int | None = None
    active: bool = True  # false once its file is gone


class ScorecardVersion(SQLModel, table=True):
    """One version of a scorecard file, identified by the sha256 of its text."""

    __tablename__ = "scorecard_version"
    __table_args__ = (UniqueConstraint("scorecard_id", "content_hash"),)
    id: int | None = Field(default=None, primary_key=True)
    scorecard_id: int = Field(foreign_key="scorecard.id")
    content_hash: str = Field(max_length=64)
    path: str
    source_text: str
    # {title, description, owner, levels: [{name, rank, description, color}],
    #  rules: [{name, title, description, level, weight, remediation}]}
    definition: dict[str, Any] = _json()
    first_seen: datetime = _ts()


class ScorecardRule(SQLModel, table=True):
    __tablename__ = "scorecard_rule"
    __table_args__ = (UniqueConstraint("scorecard_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    scorecard_id: int = Field(foreign_key="scorecard.id")
    name: str = Field(max_length=63)


class RuleOutcome(SQLModel, table=True):
    """A (status, message, evidence) triple, stored once however many states share it."""

    __tablename__ = "rule_outcome"
    id: int | None = Field(default=None, primary_key=True)
    digest: int = Field(sa_column=Column(BigInteger, nullable=False, unique=True))
    status: RuleStatus = Field(sa_type=AutoString(length=8))
    message: str
    evidence: dict[str, Any] = _json()


class EvaluationRunBase(SQLModel):
    run_key: str | None = Field(default=None, unique=True, max_length=200)
    trigger: RunTrigger = Field(sa_type=AutoString(length=40))
    service: str | None = None  # the one service evaluated, or None for all
    status: RunStatus = Field(default=RunStatus.RUNNING, sa_type=AutoString(length=12),
                              index=True)
    services: int = 0
    results: int = 0  # current results of the services in scope after the run
    evaluated: int = 0  # results evaluated (their inputs changed); the others were unchanged
    rule_results: int = 0  # rule results evaluated
    changed_results: int = 0
    duration_ms: int | None = None
    counts: dict[str, int] = _json()  # rule results evaluated, by status
    levels: dict[str, dict[str, int]] = _json()  # scorecard -> level (or "none") -> services
    problems: list[str] = _json(list)  # scorecards that failed to load, stale facts...
    error: str | None = None


class EvaluationRun(EvaluationRunBase, table=True):
    __tablename__ = "evaluation_run"
    id: int | None = Field(default=None, primary_key=True)
    requested_at: datetime = _ts()
    evaluated_at: datetime | None = _ts(nullable=True, index=True)  # the evaluation's clock
    finished_at: datetime | None = _ts(nullable=True)
    # The process running it says it is alive; a running run whose lease ran out is reaped.
    heartbeat_at: datetime | None = _ts(nullable=True)


class ScorecardState(SQLModel, table=True):
    """Version, level and score of a service on a scorecard from one run until the key's next row.

    Written when the version or level changes; score changes within a level ride on rule rows.
    A row with no ``version_id`` marks the run from which the service was no longer graded on
    the scorecard.
    """

    __tablename__ = "scorecard_state"
    # BRIN on PostgreSQL: rows are appended in run order, so a few pages of summaries find a
    # range of runs (level changes across services) without a B-tree entry per row.
    __table_args__ = (
        Index("ix_scorecard_state_from", "valid_from_run", postgresql_using="brin"),
    )
    service_id: int = Field(primary_key=True)
    scorecard_id: int = Field(primary_key=True)
    valid_from_run: int = Field(primary_key=True)
    version_id: int | None = None  # the level's name is the version's level of this rank
    level_rank: int = Field(sa_column=Column(SmallInteger, nullable=False))
    score: float = Field(sa_column=Column(Hundredths(), nullable=False))


class RuleState(SQLModel, table=True):
    """A rule's status for one service from one run until the key's next row.

    Written only when the status changes, with the outcome (message, evidence) the status began
    with; a new message or measured value under the same status updates ``current_result``
    only. No ``outcome_id``: from this run the rule was no longer evaluated for the service.
    """

    __tablename__ = "rule_state"
    service_id: int = Field(primary_key=True)
    rule_id: int = Field(primary_key=True)
    valid_from_run: int = Field(primary_key=True)
    outcome_id: int | None = None
    # The scorecard's score from this run: a status change is what changes a score, so the
    # score's history needs no scorecard_state row of its own.
    score: float = Field(sa_column=Column(Hundredths(), nullable=False))


class CurrentResult(SQLModel, table=True):
    """Each current result: what pages, lists, leaderboards and metrics read.

    Not history: one row per (service, scorecard), updated in place when the result changes,
    so an unchanged result costs one digest compare. ``outcomes`` holds each rule's current
    outcome as ``[rule_id, outcome_id]`` pairs.
    """

    __tablename__ = "current_result"
    __table_args__ = (Index("ix_current_result_scorecard", "scorecard_id"),)
    service_id: int = Field(primary_key=True)
    scorecard_id: int = Field(primary_key=True)
    digest: int = Field(sa_column=Column(BigInteger, nullable=False))
    run_id: int  # the run that produced this digest (the result's last change)
    since_run: int  # the run from which level and score have been what they are
    version_id: int
    level: str | None = None
    level_rank: int = Field(sa_column=Column(SmallInteger, nullable=False))
    score: float
    outcomes: list[list[int]] = Field(
        default_factory=list, sa_column=Column(JSON(), nullable=False)
    )


class ResultInput(SQLModel, table=True):
    """The digest of the inputs each (service, scorecard) was last graded on, applicable or
    not (engine/incremental.py): a run grades again only where it differs. A row exists only
    while the stored standing is the verdict on those inputs; not history."""

    __tablename__ = "result_input"
    service_id: int = Field(primary_key=True)
    scorecard_id: int = Field(primary_key=True)
    digest: int = Field(sa_column=Column(BigInteger, nullable=False))


class FactSnapshotBase(SQLModel):
    service: str = Field(max_length=253)
    source: str = Field(max_length=40)
    status: str = Field(default=SnapshotStatus.OK, max_length=8)
    error: str | None = None
    facts: dict[str, Any] = _json()


class FactSnapshot(FactSnapshotBase, table=True):
    """Facts of one service from one source, stored when they change.

    ``collected_at`` is when this content was first collected; ``confirmed_at`` the last
    collection that found the same content.
    """

    __tablename__ = "fact_snapshot"
    __table_args__ = (Index("ix_fact_snapshot_latest", "service", "source", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(max_length=64)
    collected_at: datetime = _ts()
    confirmed_at: datetime = _ts()


class FactOrigin(StrEnum):
    """Where a custom fact's value came from."""

    FILE = "file"  # the settings' facts file
    PUSH = "push"  # POST /services/{s}/facts (or DELETE, for a removal)


class CustomFact(SQLModel, table=True):
    """One change of one custom fact (a top-level key of ``custom``) of one service from one
    origin; appended, never updated.

    The latest row of each (service, key, origin) is what that origin holds now: a value, or
    ``removed``. ``changed_at`` is when the value dates from: a push's arrival; for the facts
    file, when that key's value in the file changed (the file's modification time, at most the
    run that first read it). Which origin's value a rule reads is decided by
    ``engine.custom_facts.resolve``. ``size`` is the value's length as JSON, so a service's
    total is summed without reading values.
    """

    __tablename__ = "custom_fact"
    __table_args__ = (
        Index("ix_custom_fact_latest", "service", "key", "origin", "id"),
        Index("ix_custom_fact_service", "service", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    service: str = Field(max_length=253)
    key: str
    origin: str = Field(max_length=8)
    value: Any = Field(default=None, sa_column=Column(JSONValue(), nullable=True))
    removed: bool = False
    size: int = 0
    changed_at: datetime = _ts()


class DeliveryKind(StrEnum):
    WEEKLY = "weekly"  # the weekly report; key: the week's end date
    DROP = "drop"  # a level-drop notification; key: the drop's de-duplication key


class DeliveryStatus(StrEnum):
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"  # not tried: Slack had failed too often in a row (the breaker)


class Delivery(SQLModel, table=True):
    """One attempt to post one part of a message to a channel; appended, never updated.

    ``part`` is the message's index among those of (kind, key) for the channel. A part is
    delivered once one of its rows says sent; a failed attempt is a row of its own, so what
    was tried, when and why it failed stays readable.
    """

    __tablename__ = "delivery"
    __table_args__ = (Index("ix_delivery_target", "kind", "key", "channel", "part"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=8)
    key: str = Field(max_length=512)
    channel: str = Field(max_length=200)
    part: int
    status: str = Field(max_length=8)
    error: str | None = None  # Slack's error (or the connection's), never a URL or token
    attempted_at: datetime = _ts()


class DeliveryClaim(SQLModel, table=True):
    """A sender's hold on (kind, key, channel) while it posts, so two processes never post the
    same message: inserted if absent before posting, deleted when done. A hold whose process
    died is taken over once it expires. Not history: a lock that lives for one delivery."""

    __tablename__ = "delivery_claim"
    kind: str = Field(primary_key=True, max_length=8)
    key: str = Field(primary_key=True, max_length=512)
    channel: str = Field(primary_key=True, max_length=200)
    holder: str = Field(max_length=200)  # host:pid:nonce of the sender
    claimed_at: datetime = _ts()
    expires_at: datetime = _ts()


class HttpCacheEntry(SQLModel, table=True):
    """A collector's cached HTTP answer (the GitHub ETag cache): the last 200 for a request
    with its ``ETag``, so that later runs of any process ask ``If-None-Match`` and an
    unchanged answer (304) costs no rate limit. Keyed by source and the SHA-256 of the
    request key (media type and URL). Not history: replaced in place, and dropped when no
    run used it for 30 days. Holds response bodies, never credentials."""

    __tablename__ = "http_cache"
    source: str = Field(primary_key=True, max_length=32)
    key_digest: str = Field(primary_key=True, max_length=64)
    etag: str = Field(max_length=512)
    body: str
    headers: dict[str, Any] = _json()
    used_at: datetime = _ts()


__all__ = [
    "CurrentResult", "CustomFact", "Delivery", "DeliveryClaim", "DeliveryKind", "DeliveryStatus",
    "EvaluationRun", "FactOrigin", "FactSnapshot", "HttpCacheEntry", "RuleOutcome", "RuleState",
    "RunStatus", "ScorecardRecord", "ScorecardRule", "ScorecardState", "ScorecardVersion", "ServiceRecord",
    "SnapshotStatus", "utcnow",
]
