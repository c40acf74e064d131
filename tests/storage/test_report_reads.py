"""What the weekly report reads from history, on SQLite and PostgreSQL: levels at a moment,
level changes with the rules that caused them, rule statuses then, current outcomes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from engine.evaluation import RuleStatus
from engine.settings import Settings
from engine.storage.database import engine_for, session_scope
from engine.storage.history.as_of import level_counts_as_of, results_as_of
from engine.storage.history.changes import (
    RuleCause,
    causes_of,
    level_changes_with_causes,
    service_level_changes,
)
from engine.storage.outcomes import current_rules
from tests.reports.week import NOW, WEEK_AGO, build_week

FAIL, PASS, UNKNOWN = RuleStatus.FAIL, RuleStatus.PASS, RuleStatus.UNKNOWN


def counts(settings: Settings, at: object) -> set[tuple[str, str, str | None, int]]:
    with session_scope(engine_for(settings.database_url)) as session:
        return {(c.scorecard, c.owner, c.level, c.services)
                for c in level_counts_as_of(session, at=at)}  # type: ignore[arg-type]


def test_levels_of_every_service_at_two_moments(settings: Settings, sample: Path) -> None:
    build_week(settings, sample)
    assert counts(settings, WEEK_AGO) == {
        ("readiness", "team-a", "Gold", 1), ("readiness", "team-a", None, 1),
        ("readiness", "team-b", "Bronze", 1), ("readiness", "team-b", "Gold", 1),
        ("security", "team-a", "Hardened", 1), ("security", "team-b", None, 1),
        ("security", "team-b", "Hardened", 1),
    }
    assert counts(settings, NOW) == {
        ("readiness", "team-a", "Silver", 1), ("readiness", "team-a", "Bronze", 1),
        ("readiness", "team-b", "Gold", 1), ("readiness", "team-b", None, 1),
        ("security", "team-a", "Basic", 1), ("security", "team-b", None, 1),
        ("security", "team-b", "Hardened", 1),
    }
    assert counts(settings, WEEK_AGO - timedelta(days=3)) == set()  # before the first run


def test_level_changes_of_the_week_with_the_rules_that_caused_them(
    settings: Settings, sample: Path
) -> None:
    build_week(settings, sample)
    with session_scope(engine_for(settings.database_url)) as session:
        changes = level_changes_with_causes(session, since=WEEK_AGO, until=NOW)
    assert [(c.service, c.scorecard, c.previous, c.level, c.direction,
             [(r.rule, r.status) for r in c.causes]) for c in changes] == [
        ("payments", "readiness", "Gold", "Silver", "regression", [("availability", FAIL)]),
        ("search", "readiness", "Bronze", "Silver", "promotion", [("has-codeowners", PASS)]),
        ("ledger", "readiness", None, "Bronze", "promotion", [("has-readme", PASS)]),
        ("payments", "security", "Hardened", "Basic", "regression", [("not-archived", FAIL)]),
        ("team-x/billing", "readiness", "Gold", None, "regression", [("has-readme", FAIL)]),
        ("search", "readiness", "Silver", "Gold", "promotion", [("availability", PASS)]),
    ]
    assert [c.at - WEEK_AGO for c in changes] == [timedelta(days=1)] * 2 + [
        timedelta(days=3, hours=2)] * 3 + [timedelta(days=5, hours=6)]
    assert {c.owner for c in changes if c.service == "team-x/billing"} == {"team-b"}
    assert not any(c.version_changed for c in changes)


def test_a_week_starts_after_its_first_moment(settings: Settings, sample: Path) -> None:
    build_week(settings, sample)
    first = WEEK_AGO + timedelta(days=1)
    with session_scope(engine_for(settings.database_url)) as session:
        changes = level_changes_with_causes(session, since=first, until=NOW)
        later = level_changes_with_causes(session, since=NOW, until=NOW + timedelta(days=1))
    assert all(c.at > first for c in changes) and len(changes) == 4
    assert [(c.service, c.level) for c in later] == [("ledger", None)]


def test_causes_are_rules_of_the_levels_crossed_whose_status_flipped() -> None:
    ranks = {"bronze-rule": 1, "silver-rule": 2, "gold-rule": 3, "score-only": 0}
    flips = [("bronze-rule", PASS, PASS), ("silver-rule", PASS, FAIL), ("gold-rule", PASS, UNKNOWN),
             ("score-only", PASS, FAIL)]
    # Gold -> Bronze: the Silver and Gold rules that stopped passing; not the score-only one.
    assert causes_of(flips, ranks, 3, 1) == (RuleCause("gold-rule", UNKNOWN),
                                             RuleCause("silver-rule", FAIL))
    # unknown -> fail was already blocking: not a cause.
    assert causes_of([("silver-rule", UNKNOWN, FAIL)], ranks, 2, 1) == ()
    # A rule newly graded and failing is; one no longer graded can promote.
    assert causes_of([("silver-rule", None, FAIL)], ranks, 2, 1) == (RuleCause("silver-rule", FAIL),)
    assert causes_of([("silver-rule", FAIL, None)], ranks, 1, 2) == (RuleCause("silver-rule", None),)
    assert causes_of([("silver-rule", RuleStatus.ERROR, RuleStatus.EXEMPT)], ranks, 1, 2) == (
        RuleCause("silver-rule", RuleStatus.EXEMPT),)


def test_results_as_of_a_moment_come_from_history_not_the_current_result(
    settings: Settings, sample: Path
) -> None:
    build_week(settings, sample)  # ledger lost its README again after NOW
    with session_scope(engine_for(settings.database_url)) as session:
        then = {(r.service, r.scorecard): r for r in results_as_of(session, at=NOW)}
        now = {(r.service, r.scorecard): r
               for r in results_as_of(session, at=NOW + timedelta(days=1))}
        current = {(r.service, r.scorecard): r for r in current_rules(
            session, services=["ledger", "payments", "search", "team-x/billing"])}
    assert sorted(then) == sorted(current) == [
        ("ledger", "readiness"), ("payments", "readiness"), ("payments", "security"),
        ("search", "readiness"), ("search", "security"), ("team-x/billing", "readiness"),
        ("team-x/billing", "security")]
    ledger = then["ledger", "readiness"]
    assert (ledger.owner, ledger.rank) == ("team-a", 1)
    assert ledger.unsatisfied == {"has-codeowners": UNKNOWN, "availability": UNKNOWN,
                                  "on-call": UNKNOWN}
    assert current["ledger", "readiness"].statuses["has-readme"] == FAIL
    assert now["ledger", "readiness"].rank == current["ledger", "readiness"].rank == 0
    for key, result in now.items():
        assert result.unsatisfied == {rule: status for rule, status in current[key].statuses.items()
                                      if not status.satisfied}, key
    assert "prometheus" in current["ledger", "readiness"].messages["availability"]


def test_each_level_change_of_some_services_newest_first(settings: Settings, sample: Path) -> None:
    build_week(settings, sample)
    with session_scope(engine_for(settings.database_url)) as session:
        found = service_level_changes(session, services=["payments", "ledger"])
    assert sorted(found) == [("ledger", "readiness"), ("payments", "readiness"),
                             ("payments", "security")]
    assert [(c.previous_rank, c.rank) for c in found["ledger", "readiness"]] == [(1, 0), (0, 1)]
    assert found["ledger", "readiness"][0].at == NOW + timedelta(hours=2)
    assert found["ledger", "readiness"][0].run_id > found["ledger", "readiness"][1].run_id
