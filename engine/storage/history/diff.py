"""What a run changes in history, as a pure function of the results and the current standings.

``diff`` decides which history rows to append, which current standings to replace or drop,
and what happened (the run's events); it reads nothing and writes nothing, so the rules of
history (models.py explains them) are tested here without a database, and whoever triggered
a run gets its events without re-deriving them from the tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any, NamedTuple

from engine.evaluation import RuleResult, RuleStatus, ScorecardResult
from engine.storage.codec import canonical_json, digest64, jsonable

Key = tuple[int, int]  # (service id, scorecard id)


class Direction(StrEnum):
    PROMOTION = "promotion"
    REGRESSION = "regression"


@dataclass(frozen=True)
class ScorecardIds:
    """How a scorecard in use is stored: ids, and the rank of each level (lowest is 1)."""

    scorecard_id: int
    version_id: int
    rule_ids: Mapping[str, int]
    level_ranks: Mapping[str, int]

    def rank(self, level: str | None) -> int:
        return 0 if level is None else self.level_ranks.get(level, 0)


@dataclass(frozen=True)
class RuleWas:
    outcome: int  # the outcome's digest
    status: RuleStatus


@dataclass(frozen=True)
class Standing:
    """What ``current_result`` holds of a result before the run changes it."""

    digest: int
    version_id: int
    level: str | None
    level_rank: int
    score: float
    since_run: int
    rules: Mapping[int, RuleWas]  # rule id -> its current outcome


@dataclass(frozen=True)
class Outcome:
    status: RuleStatus
    message: str
    evidence: Any


class RuleRow(NamedTuple):  # a tuple: a first run makes one per rule of every result
    service_id: int
    rule_id: int
    outcome: int | None  # digest; None: the rule is no longer evaluated for the service
    score: float


@dataclass(frozen=True)
class CardRow:
    service_id: int
    scorecard_id: int
    version_id: int | None  # None: the result ended
    level_rank: int
    score: float


@dataclass(frozen=True)
class CurrentRow:
    """A current standing to write: inserted when ``new``, else replacing the stored one."""

    service_id: int
    scorecard_id: int
    digest: int
    since_run: int
    version_id: int
    level: str | None
    level_rank: int
    score: float
    outcomes: tuple[tuple[int, int], ...]  # (rule id, outcome digest)
    new: bool


@dataclass(frozen=True)
class LevelChanged:
    """A service's level on a scorecard changed (or it was graded for the first time)."""

    service: str
    scorecard: str
    before: str | None
    after: str | None
    before_rank: int
    after_rank: int
    blocking: tuple[str, ...]  # rules not satisfied at or below the level above ``after``
    first: bool = False  # no standing before: a new service or scorecard

    @property
    def direction(self) -> Direction:
        return Direction.PROMOTION if self.after_rank > self.before_rank else Direction.REGRESSION


class RuleStatusChanged(NamedTuple):  # a tuple: one per rule whose status changed
    service: str
    scorecard: str
    rule: str
    before: RuleStatus | None  # None: the rule was not evaluated before
    after: RuleStatus


Event = LevelChanged | RuleStatusChanged


@dataclass
class HistoryDiff:
    outcomes: dict[int, Outcome] = field(default_factory=dict)  # digest -> outcome to store
    rule_rows: list[RuleRow] = field(default_factory=list)
    card_rows: list[CardRow] = field(default_factory=list)
    current: list[CurrentRow] = field(default_factory=list)
    ended: list[Key] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    @property
    def changed_results(self) -> int:
        return len(self.current)

    @property
    def empty(self) -> bool:
        return not self.current and not self.ended


def result_digest(version_id: int, result: ScorecardResult) -> int:
    """One digest of a whole result: most results are unchanged, and those cost one
    serialization instead of one per rule."""
    return digest64(canonical_json([
        version_id,
        result.level,
        result.score,
        [[r.rule, r.status, r.message, r.evidence] for r in result.rules],  # StrEnum: a string
    ]))


def outcome_of(rule: RuleResult) -> tuple[int, Outcome]:
    if not rule.evidence:  # most outcomes ("passed"): the same few, computed once each
        return _plain_outcome(rule.status, rule.message)
    try:  # many failures are the same for many services ("got custom.sbom = false")
        key = (rule.status, rule.message, tuple(rule.evidence.items()))
        known = _OUTCOMES.get(key)
    except TypeError:  # evidence holding a list or a mapping
        key, known = None, None
    if known is not None:
        return known
    evidence = dict(rule.evidence)
    if not all(type(v) in _JSON_SCALARS for v in evidence.values()):
        evidence = jsonable(evidence)
    body = canonical_json([rule.status.value, rule.message, evidence])
    found = digest64(body), Outcome(rule.status, rule.message, evidence)
    if key is not None:
        if len(_OUTCOMES) >= 100_000:
            _OUTCOMES.clear()
        _OUTCOMES[key] = found
    return found


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})
_OUTCOMES: dict[tuple[Any, ...], tuple[int, Outcome]] = {}


@lru_cache(maxsize=4096)
def _plain_outcome(status: RuleStatus, message: str) -> tuple[int, Outcome]:
    return digest64(canonical_json([status.value, message, {}])), Outcome(status, message, {})


def diff(
    *,
    run_id: int,
    results: Sequence[ScorecardResult],
    service_ids: Mapping[str, int],
    scorecards: Mapping[str, ScorecardIds],
    standings: Mapping[Key, Standing],
    ending: Sequence[Key] = (),
    digests: Mapping[int, int] | None = None,
) -> HistoryDiff:
    """The history rows, current standings and events of storing ``results`` at ``run_id``.

    ``standings``: the stored standing of every key the run may change (at least those of
    ``results`` that exist, and ``ending``); ``ending``: stored keys the run no longer grades.
    Idempotent: results equal to their standings give an empty diff.
    """
    out = HistoryDiff()
    for result in results:
        ids = scorecards[result.scorecard]
        key = (service_ids[result.service], ids.scorecard_id)
        was = standings.get(key)
        whole = (digests.get(id(result)) if digests is not None else None) or result_digest(
            ids.version_id, result)
        if was is not None and was.digest == whole:
            continue
        _diff_result(out, run_id, key, result, ids, whole, was)
    for key in ending:
        _end_result(out, key, standings.get(key))
    return out


def _diff_result(
    out: HistoryDiff,
    run_id: int,
    key: Key,
    result: ScorecardResult,
    ids: ScorecardIds,
    whole: int,
    was: Standing | None,
) -> None:
    service_id, scorecard_id = key
    was_rules: Mapping[int, RuleWas] = was.rules if was is not None else {}
    now_rules: dict[int, int] = {}
    written = len(out.rule_rows)
    # History: a rule's row when its status changes, carrying the scorecard's score.
    for rule in result.rules:
        rule_id = ids.rule_ids[rule.rule]
        digest, outcome = outcome_of(rule)
        out.outcomes.setdefault(digest, outcome)
        now_rules[rule_id] = digest
        old = was_rules.get(rule_id)
        if old is None or old.status != rule.status:
            out.rule_rows.append(RuleRow(service_id, rule_id, digest, result.score))
            if was is not None:  # a result graded for the first time is one LevelChanged
                out.events.append(RuleStatusChanged(result.service, result.scorecard, rule.rule,
                                                    old.status if old else None, rule.status))
    for rule_id in sorted(was_rules.keys() - now_rules.keys()):
        out.rule_rows.append(RuleRow(service_id, rule_id, None, result.score))
    # A scorecard's row when its version or level changes, or its score does with no rule
    # row to carry it. Nothing already written is updated.
    rank = ids.rank(result.level)
    level_changed = was is None or (was.version_id, was.level_rank) != (ids.version_id, rank)
    score_changed = was is None or was.score != result.score
    if level_changed or (score_changed and len(out.rule_rows) == written):
        out.card_rows.append(CardRow(service_id, scorecard_id, ids.version_id, rank, result.score))
    if was is None or was.level_rank != rank:
        out.events.append(LevelChanged(
            result.service, result.scorecard,
            before=was.level if was else None, after=result.level,
            before_rank=was.level_rank if was else 0, after_rank=rank,
            blocking=_blocking(result, ids, rank), first=was is None,
        ))
    unchanged = was is not None and not (level_changed or score_changed)
    out.current.append(CurrentRow(
        service_id, scorecard_id, whole,
        since_run=was.since_run if was is not None and unchanged else run_id,
        version_id=ids.version_id, level=result.level, level_rank=rank, score=result.score,
        outcomes=tuple(sorted(now_rules.items())), new=was is None,
    ))


def _end_result(out: HistoryDiff, key: Key, was: Standing | None) -> None:
    """A result no longer graded (service left, filter now false, scorecard retired): a row
    that marks the end, for the result and for each of its rules."""
    service_id, scorecard_id = key
    out.card_rows.append(CardRow(service_id, scorecard_id, None, 0, 0.0))
    for rule_id in sorted(was.rules if was is not None else {}):
        out.rule_rows.append(RuleRow(service_id, rule_id, None, 0.0))
    out.ended.append(key)


def _blocking(result: ScorecardResult, ids: ScorecardIds, rank: int) -> tuple[str, ...]:
    """Rules not satisfied at or below the next level up: what keeps the service where it is."""
    return tuple(
        r.rule for r in result.rules
        if r.level is not None and ids.rank(r.level) <= rank + 1 and not r.status.satisfied
    )
