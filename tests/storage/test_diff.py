"""History's diff as a pure function: rows, current standings and events, with no database."""

from __future__ import annotations

from engine.evaluation import RuleResult, RuleStatus, ScorecardResult
from engine.storage.history.diff import (
    CardRow,
    Direction,
    LevelChanged,
    RuleStatusChanged,
    RuleWas,
    ScorecardIds,
    Standing,
    diff,
    outcome_of,
    result_digest,
)

P, F, U = RuleStatus.PASS, RuleStatus.FAIL, RuleStatus.UNKNOWN
IDS = {"readiness": ScorecardIds(scorecard_id=7, version_id=70,
                                 rule_ids={"readme": 1, "owner": 2, "alerts": 3},
                                 level_ranks={"Bronze": 1, "Silver": 2, "Gold": 3})}
SERVICES = {"search": 10, "ledger": 11}
LEVEL_OF = {"readme": "Bronze", "owner": "Silver", "alerts": "Gold"}


def result(service: str, statuses: dict[str, RuleStatus], level: str | None,
           score: float) -> ScorecardResult:
    rules = tuple(RuleResult(name, LEVEL_OF[name], status, f"{name} is {status}")
                  for name, status in statuses.items())
    return ScorecardResult(service, "readiness", level, score, rules, next_level=None)


def standing_of(r: ScorecardResult, since_run: int) -> Standing:
    """The standing storing ``r`` leaves behind."""
    ids = IDS["readiness"]
    return Standing(
        digest=result_digest(ids.version_id, r), version_id=ids.version_id, level=r.level,
        level_rank=ids.rank(r.level), score=r.score, since_run=since_run,
        rules={ids.rule_ids[rule.rule]: RuleWas(outcome_of(rule)[0], rule.status)
               for rule in r.rules},
    )


GOLD = result("search", {"readme": P, "owner": P, "alerts": P}, "Gold", 100.0)
BRONZE = result("search", {"readme": P, "owner": F, "alerts": U}, "Bronze", 33.33)


def test_first_result_writes_every_rule_and_a_scorecard_row_and_says_it_is_first() -> None:
    found = diff(run_id=1, results=[GOLD], service_ids=SERVICES, scorecards=IDS, standings={})
    assert [(r.rule_id, r.score) for r in found.rule_rows] == [(1, 100.0), (2, 100.0), (3, 100.0)]
    assert found.card_rows == [CardRow(10, 7, 70, 3, 100.0)]
    [current] = found.current
    assert (current.new, current.since_run, current.level) == (True, 1, "Gold")
    [level] = [e for e in found.events if isinstance(e, LevelChanged)]
    assert (level.before, level.after, level.first) == (None, "Gold", True)
    assert len(found.outcomes) == 3


def test_unchanged_result_is_an_empty_diff() -> None:
    found = diff(run_id=2, results=[GOLD], service_ids=SERVICES, scorecards=IDS,
                 standings={(10, 7): standing_of(GOLD, 1)})
    assert found.empty and not found.rule_rows and not found.card_rows and not found.events


def test_regression_is_an_event_with_the_rules_that_now_block() -> None:
    found = diff(run_id=5, results=[BRONZE], service_ids=SERVICES, scorecards=IDS,
                 standings={(10, 7): standing_of(GOLD, 1)})
    [level] = [e for e in found.events if isinstance(e, LevelChanged)]
    assert (level.service, level.scorecard, level.before, level.after) == (
        "search", "readiness", "Gold", "Bronze")
    assert level.direction == Direction.REGRESSION and not level.first
    assert level.blocking == ("owner",)  # the rules between Bronze and the next level up
    changes = {(e.rule, e.before, e.after) for e in found.events
               if isinstance(e, RuleStatusChanged)}
    assert changes == {("owner", P, F), ("alerts", P, U)}
    assert [r.rule_id for r in found.rule_rows] == [2, 3]  # readme kept its status: no row
    assert found.card_rows == [CardRow(10, 7, 70, 1, 33.33)]
    assert found.current[0].since_run == 5


def test_new_message_under_the_same_status_changes_only_the_current_standing() -> None:
    moved = ScorecardResult("search", "readiness", "Gold", 100.0, tuple(
        rule._replace(message="measured again") for rule in GOLD.rules), next_level=None)
    found = diff(run_id=3, results=[moved], service_ids=SERVICES, scorecards=IDS,
                 standings={(10, 7): standing_of(GOLD, 1)})
    assert not found.rule_rows and not found.card_rows and not found.events
    [current] = found.current
    assert (current.new, current.since_run) == (False, 1)  # level and score held since run 1


def test_ended_result_marks_the_end_of_the_result_and_each_rule() -> None:
    found = diff(run_id=9, results=[], service_ids=SERVICES, scorecards=IDS,
                 standings={(10, 7): standing_of(GOLD, 1)}, ending=[(10, 7)])
    assert found.ended == [(10, 7)]
    assert found.card_rows == [CardRow(10, 7, None, 0, 0.0)]
    assert [(r.rule_id, r.outcome) for r in found.rule_rows] == [(1, None), (2, None), (3, None)]


def test_storing_the_diffs_outcome_again_is_idempotent() -> None:
    first = diff(run_id=1, results=[BRONZE], service_ids=SERVICES, scorecards=IDS, standings={})
    [row] = first.current
    stored = Standing(row.digest, row.version_id, row.level, row.level_rank, row.score,
                      row.since_run, {rule_id: RuleWas(d, first.outcomes[d].status)
                                      for rule_id, d in row.outcomes})
    again = diff(run_id=2, results=[BRONZE], service_ids=SERVICES, scorecards=IDS,
                 standings={(10, 7): stored})
    assert again.empty and not again.events
