"""What the API returns: the ``XPublic`` members of the model families, and views over state."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from engine.evaluation import RuleStatus
from engine.storage.history.diff import Direction
from engine.storage.models import (
    EvaluationRunBase,
    FactOrigin,
    FactSnapshotBase,
    RunStatus,
    ServiceBase,
)

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    total: int = Field(description="Items matching, over all pages.")
    limit: int
    offset: int
    items: list[T]


class ServicePublic(ServiceBase):
    first_seen: datetime
    last_seen: datetime


class LevelPublic(BaseModel):
    name: str
    rank: int
    description: str | None = None
    color: str | None = None


class RuleDefinition(BaseModel):
    name: str
    title: str | None = None
    description: str | None = None
    level: str | None = None
    weight: float = 1.0
    remediation: str | None = None
    expression: str | None = None


class StandingPublic(BaseModel):
    """A service's current place on one scorecard."""

    scorecard: str
    level: str | None = Field(description="Highest level reached; null: none.")
    rank: int = Field(description="1 for the lowest level, 0 for none.")
    score: float = Field(description="Weighted share of rules passed, percent.")
    levels: int = Field(description="How many levels the scorecard has.")
    since: datetime | None = Field(description="When this level and score were first seen.")
    evaluated_at: datetime | None = Field(description="The last run that graded it.")
    version: str = Field(description="sha256 of the scorecard version that produced it.")


class ServiceDetail(ServicePublic):
    scorecards: list[StandingPublic]


class ScorecardSummary(BaseModel):
    name: str
    title: str | None = None
    description: str | None = None
    owner: str | None = None
    version: str
    levels: list[LevelPublic]
    rules: int
    services: int = Field(description="Services currently graded on it.")


class ScorecardDetail(ScorecardSummary):
    definition: list[RuleDefinition]
    distribution: dict[str, int] = Field(description='Services per level ("none": no level).')
    source: str = Field(description="The scorecard file's text.")
    path: str


class LeaderboardRow(BaseModel):
    position: int
    service: str
    owner: str
    level: str | None
    rank: int
    score: float


class RulePublic(BaseModel):
    name: str
    title: str
    level: str | None
    weight: float
    status: RuleStatus
    message: str
    evidence: dict[str, Any]
    remediation: str | None
    since: datetime | None = Field(description="When the rule entered its current status.")


class StoredResult(BaseModel):
    """One service's current result on one scorecard, as stored."""

    service: str
    scorecard: str
    level: str | None
    rank: int
    score: float
    levels: list[str]
    evaluated_at: datetime | None
    version: str
    rules: list[RulePublic]


class ServiceScorecard(StoredResult):
    """A stored result with what the engine decides of it: the next level and what blocks it."""

    next_level: str | None
    to_fix_for_next_level: list[RulePublic] = Field(
        description="Rules at or below the next level that are not pass or exempt.")


class HistoryPoint(BaseModel):
    level: str | None
    rank: int
    score: float
    start: datetime | None = Field(description="First run with this level and score.")
    end: datetime | None = Field(description="Run that replaced it; null: still current.")


class LevelChange(BaseModel):
    service: str
    scorecard: str
    at: datetime | None
    run_id: int
    previous: str | None
    level: str | None
    direction: Direction


class FactProvenance(BaseModel):
    """Where a custom fact's value came from, and since when."""

    origin: FactOrigin = Field(description="file: the settings' facts file; push: the API.")
    at: datetime = Field(description="When the value dates from: a push's arrival; for the "
                         "file, when this key's value in it changed.")


class FactSnapshotPublic(FactSnapshotBase):
    collected_at: datetime
    confirmed_at: datetime
    age_seconds: float = Field(description="Seconds since the last collection confirmed it.")
    invalid: dict[str, str] = Field(
        default_factory=dict,
        description="Stored values that are not valid JSON, by path, and why: shown repaired "
        "(unpaired surrogates as U+FFFD, NaN, infinities and values nested too deep as null). "
        "Remove a pushed one with DELETE /services/{s}/facts/{key}.")
    origins: dict[str, FactProvenance] = Field(
        default_factory=dict,
        description="custom only: per top-level key, where its value came from and since "
        "when (the more recent of the file's value and a push wins).")


class EvaluationRunPublic(EvaluationRunBase):
    id: int
    requested_at: datetime
    evaluated_at: datetime | None
    finished_at: datetime | None


class RunAccepted(BaseModel):
    run_id: int
    status: RunStatus
    url: str
    reused: bool = False  # an identical run was queued already: this is that run


class CustomFactsIn(BaseModel):
    facts: dict[str, Any] = Field(description=(
        "Merged into the service's custom namespace: objects key by key at every depth, "
        "null removes a key, anything else replaces the value."))


class TriggerIn(BaseModel):
    service: str | None = Field(None, description="Evaluate only this service (its name, or "
                                "namespace/name or namespace:name); null: all.")


class ScheduledJobPublic(BaseModel):
    """A scheduled job and the next times it runs."""

    name: str
    cron: str = Field(description="minute hour day-of-month month day-of-week; standard "
                      "semantics (day of week 0 and 7: Sunday).")
    timezone: str = Field(description="The IANA time zone the cron expression is read in.")
    next: list[str] = Field(description="The next three times it runs: ISO-8601 in its time "
                            "zone, with the offset.")


class Health(BaseModel):
    """Up (``ok``, or ``degraded`` when the newest run that ended failed) or down
    (``unavailable``); the rest only for callers who may read (api.read_token_required)."""

    status: Literal["ok", "degraded", "unavailable"]
    database: str | None = None
    last_run: EvaluationRunPublic | None = None  # the last complete run
    latest_run: EvaluationRunPublic | None = None  # the newest run that ended, however it did


class ErrorOut(BaseModel):
    detail: str | list[Any]
