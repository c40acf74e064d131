"""Evaluation runs stored as append-only history, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from core.errors import NotFoundError
from engine import gate
from engine.jobs import (
    EvaluationFailed,
    prune_history,
    push_custom_facts,
    run_evaluation,
    store_collection,
)
from engine.settings import Settings
from engine.storage import facts as fact_store
from engine.storage import runs as run_store
from engine.storage import services as service_store
from engine.storage import standings
from engine.storage.database import engine_for, session_scope
from engine.storage.history import timeline
from engine.storage.models import (
    EvaluationRun,
    FactSnapshot,
    RuleState,
    RunStatus,
    ScorecardState,
    ScorecardVersion,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def count(settings: Settings, model: type) -> int:
    with session_scope(engine_for(settings.database_url)) as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def set_facts(sample: Path, service: str, namespace: str, values: dict) -> None:
    path = sample / "facts.json"
    data = json.loads(path.read_text())
    data.setdefault(service, {})[namespace] = values
    path.write_text(json.dumps(data))


def test_run_stores_levels_scores_and_rules(settings: Settings) -> None:
    run_id = run_evaluation(settings, trigger="cli", now=T0).run_id
    with session_scope(engine_for(settings.database_url)) as session:
        run = run_store.get_run(session, run_id=run_id)
        assert run.status == "complete"
        assert run.results == 5 and run.services == 3
        detail = standings.service_detail(session, name="payments")
        assert {(s.scorecard, s.level) for s in detail.scorecards} == {
            ("readiness", "Gold"), ("security", "Hardened")}
        card = gate.service_scorecard(session, service="search", scorecard="readiness")
        assert card.level == "Bronze" and card.next_level == "Silver"
        statuses = {r.name: r.status for r in card.rules}
        assert statuses == {"has-readme": "pass", "has-codeowners": "fail",
                            "availability": "unknown", "on-call": "unknown"}
        assert [r.name for r in card.to_fix_for_next_level] == ["has-codeowners"]
        availability = next(r for r in card.rules if r.name == "availability")
        assert "prometheus unreachable" in availability.message


def test_rerunning_unchanged_inputs_writes_no_history(settings: Settings) -> None:
    run_evaluation(settings, trigger="cli", now=T0)
    rules, cards = count(settings, RuleState), count(settings, ScorecardState)
    run_evaluation(settings, trigger="cli", now=T0 + timedelta(hours=4))
    assert (count(settings, RuleState), count(settings, ScorecardState)) == (rules, cards)


def test_same_run_key_is_stored_once(settings: Settings) -> None:
    first = run_evaluation(settings, trigger="schedule", now=T0, run_key="schedule:T0").run_id
    second = run_evaluation(settings, trigger="schedule", now=T0, run_key="schedule:T0").run_id
    assert first == second
    assert count(settings, EvaluationRun) == 1


def test_change_appends_a_state_and_history_answers_as_of(settings: Settings, sample: Path) -> None:
    run_evaluation(settings, trigger="cli", now=T0)
    set_facts(sample, "search", "github", {"has_readme": True, "has_codeowners": True,
                                           "has_security_policy": True, "archived": False})
    run_evaluation(settings, trigger="cli", now=T0 + timedelta(hours=4))
    with session_scope(engine_for(settings.database_url)) as session:
        points = timeline.history(session, service="search", scorecard="readiness")
        assert [p.level for p in points] == ["Bronze", "Silver"]
        assert points[0].end == points[1].start == T0 + timedelta(hours=4)
        then = timeline.level_as_of(session, service="search", scorecard="readiness",
                                 at=T0 + timedelta(hours=1))
        assert then is not None and then.level == "Bronze"
        total, changes = timeline.level_changes(session, since=T0, until=T0 + timedelta(days=1))
        assert {(c.service, c.scorecard, c.previous, c.level, c.direction) for c in changes} == {
            ("search", "readiness", "Bronze", "Silver", "promotion"),
            ("search", "security", None, "Hardened", "promotion"),
        }
        assert total == 2


def test_failing_since_is_when_the_status_began(settings: Settings, sample: Path) -> None:
    set_facts(sample, "ledger", "github", {"has_readme": False, "has_codeowners": True})
    run_evaluation(settings, trigger="cli", now=T0)
    # has-readme still fails while the result changes around it: its status began at T0.
    set_facts(sample, "ledger", "github", {"has_readme": False, "has_codeowners": False})
    run_evaluation(settings, trigger="cli", now=T0 + timedelta(hours=4))
    with session_scope(engine_for(settings.database_url)) as session:
        card = gate.service_scorecard(session, service="ledger", scorecard="readiness")
        rules = {r.name: r for r in card.rules}
        assert rules["has-readme"].since == T0
        assert rules["has-codeowners"].status == "fail"
        assert rules["has-codeowners"].since == T0 + timedelta(hours=4)


def test_failure_mid_write_leaves_history_unchanged(settings: Settings, sample: Path) -> None:
    run_evaluation(settings, trigger="cli", now=T0)
    before = (count(settings, RuleState), count(settings, ScorecardState))
    set_facts(sample, "search", "github", {"has_readme": False})
    set_facts(sample, "payments", "github", {"has_readme": False})
    engine = engine_for(settings.database_url)
    inserts = 0

    def explode(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        nonlocal inserts
        if statement.lstrip().upper().startswith("INSERT INTO RULE_STATE"):
            inserts += 1
            raise RuntimeError("disk full")

    event.listen(engine, "before_cursor_execute", explode)
    try:
        with pytest.raises(EvaluationFailed):
            run_evaluation(settings, trigger="cli", now=T0 + timedelta(hours=4))
    finally:
        event.remove(engine, "before_cursor_execute", explode)
    assert inserts == 1
    assert (count(settings, RuleState), count(settings, ScorecardState)) == before
    with session_scope(engine) as session:
        runs = run_store.list_runs(session)[1]
        assert [r.status for r in runs] == ["failed", "complete"]
        assert "disk full" in (runs[0].error or "")
        # Everything the run wrote before the failing insert was rolled back too.
        assert standings.service_detail(session, name="search").scorecards[0].level == "Bronze"


def test_broken_scorecard_keeps_last_good_version(settings: Settings, sample: Path) -> None:
    run_evaluation(settings, trigger="cli", now=T0)
    path = sample / "scorecards" / "readiness.yaml"
    path.write_text(path.read_text().replace("level: Silver", "level: Silvr"))
    run_id = run_evaluation(settings, trigger="cli", now=T0 + timedelta(hours=4)).run_id
    with session_scope(engine_for(settings.database_url)) as session:
        run = run_store.get_run(session, run_id=run_id)
        assert run.status == "complete"
        assert any("Silvr" in p for p in run.problems)
        assert any("last good version" in p for p in run.problems)
        assert gate.service_scorecard(
            session, service="search", scorecard="readiness").level == "Bronze"
    assert count(settings, ScorecardVersion) == 2


@pytest.mark.parametrize("link", ["dangling", "loop"])
def test_a_scorecard_replaced_by_a_broken_link_keeps_its_last_good_version(
    settings: Settings, sample: Path, link: str
) -> None:
    run_evaluation(settings, trigger="cli", now=T0)
    path = sample / "scorecards" / "readiness.yaml"
    path.unlink()
    path.symlink_to(path if link == "loop" else sample / "moved.yaml")
    run_id = run_evaluation(settings, trigger="cli", now=T0 + timedelta(hours=4)).run_id
    with session_scope(engine_for(settings.database_url)) as session:
        run = run_store.get_run(session, run_id=run_id)
        assert run.status == "complete"
        assert any(p.startswith(f"{path}: {'dangling symbolic link' if link == 'dangling' else 'symbolic link loop'}")
                   for p in run.problems), run.problems
        assert any("last good version" in p for p in run.problems)
        assert gate.service_scorecard(
            session, service="search", scorecard="readiness").level == "Bronze"


def test_changed_scorecard_is_a_new_version_results_know_it(
    settings: Settings, sample: Path
) -> None:
    run_evaluation(settings, trigger="cli", now=T0)
    path = sample / "scorecards" / "security.yaml"
    path.write_text(path.read_text().replace("[Basic, Hardened]", "[Basic, Strong]")
                    .replace("level: Hardened", "level: Strong"))
    run_evaluation(settings, trigger="cli", now=T0 + timedelta(hours=4))
    with session_scope(engine_for(settings.database_url)) as session:
        versions = session.exec(select(ScorecardVersion)).scalars().all()
        assert len(versions) == 3
        card = gate.service_scorecard(session, service="payments", scorecard="security")
        assert card.level == "Strong"
        assert card.version == next(v.content_hash for v in versions if "Strong" in v.source_text)


def test_stale_facts_count_as_absent(settings: Settings, sample: Path) -> None:
    settings = settings.model_copy(update={"facts": None})
    store_collection(settings, source="github", started_at=T0, finished_at=T0,
                     facts={"payments": {"has_readme": True}}, failures={"search": "HTTP 502"})
    run_evaluation(settings, trigger="cli", now=T0 + timedelta(hours=1))
    with session_scope(engine_for(settings.database_url)) as session:
        search = gate.service_scorecard(session, service="search", scorecard="readiness")
        assert "HTTP 502" in next(r for r in search.rules if r.name == "has-readme").message
    run_evaluation(settings, trigger="cli", now=T0 + timedelta(hours=100))
    with session_scope(engine_for(settings.database_url)) as session:
        card = gate.service_scorecard(session, service="payments", scorecard="readiness")
        readme = next(r for r in card.rules if r.name == "has-readme")
        assert readme.status == "unknown" and "stale" in readme.message
        points = timeline.history(session, service="payments", scorecard="readiness")
        assert [p.level for p in points] == ["Bronze", None]


def test_snapshots_stored_only_when_changed(settings: Settings) -> None:
    for hours in (0, 4, 8):
        store_collection(settings, source="github", started_at=T0, requests=3,
                         finished_at=T0 + timedelta(hours=hours),
                         facts={"payments": {"has_readme": True}}, failures={})
    store_collection(settings, source="github", started_at=T0, finished_at=T0 + timedelta(hours=12),
                     facts={"payments": {"has_readme": False}}, failures={})
    with session_scope(engine_for(settings.database_url)) as session:
        rows = session.exec(select(FactSnapshot).order_by(FactSnapshot.id)).scalars().all()
        assert [(r.facts["has_readme"], r.collected_at, r.confirmed_at) for r in rows] == [
            (True, T0, T0 + timedelta(hours=8)), (False, T0 + timedelta(hours=12),
                                                  T0 + timedelta(hours=12))]


def test_pushed_custom_facts_merge_and_count(settings: Settings) -> None:
    run_evaluation(settings, trigger="cli", now=T0)
    push_custom_facts(settings, service="payments", facts={"on_call": True}, now=T0)
    push_custom_facts(settings, service="payments", facts={"team_size": 4}, now=T0)
    run_evaluation(settings, trigger="cli", now=T0 + timedelta(days=30))
    with session_scope(engine_for(settings.database_url)) as session:
        custom = next(s for s in fact_store.latest_snapshots(session, service="payments")
                      if s.source == "custom")
        assert custom.facts == {"on_call": True, "team_size": 4}
        card = gate.service_scorecard(session, service="payments", scorecard="readiness")
        assert card.score == 100.0


def test_single_service_run_leaves_others_alone(settings: Settings, sample: Path) -> None:
    run_evaluation(settings, trigger="cli", now=T0)
    run_id = run_evaluation(settings, trigger="api", service="ledger", now=T0 + timedelta(hours=1)).run_id
    with session_scope(engine_for(settings.database_url)) as session:
        assert run_store.get_run(session, run_id=run_id).results == 1
        assert len(standings.service_detail(session, name="payments").scorecards) == 2
    with pytest.raises(EvaluationFailed, match="unknown service"):
        run_evaluation(settings, trigger="api", service="nope")


def test_service_leaving_catalog_closes_its_results(settings: Settings, sample: Path) -> None:
    run_evaluation(settings, trigger="cli", now=T0)
    catalog = sample / "catalog" / "services.yaml"
    catalog.write_text(catalog.read_text().split("---\napiVersion: backstage.io/v1alpha1\n"
                                                  "kind: Component\nmetadata:\n  name: ledger")[0])
    run_evaluation(settings, trigger="cli", now=T0 + timedelta(hours=4))
    with session_scope(engine_for(settings.database_url)) as session:
        _, names = service_store.list_services(session)
        assert [s.name for s in names] == ["payments", "search"]
        assert standings.service_detail(session, name="ledger").scorecards == []
        points = timeline.history(session, service="ledger", scorecard="readiness")
        assert [p.level for p in points] == [None]


def test_retention_prunes_replaced_states_only(settings: Settings, sample: Path) -> None:
    run_evaluation(settings, trigger="cli", now=T0)
    set_facts(sample, "search", "github", {"has_readme": False})
    run_evaluation(settings, trigger="cli", now=T0 + timedelta(days=1))
    current = count(settings, ScorecardState)
    settings = settings.model_copy(update={"retention_days": 30})
    counts = prune_history(settings, now=T0 + timedelta(days=300))
    assert counts["scorecard_state"] >= 1
    assert count(settings, ScorecardState) == current - counts["scorecard_state"]
    with session_scope(engine_for(settings.database_url)) as session:
        assert gate.service_scorecard(
            session, service="search", scorecard="readiness").level is None
        with pytest.raises(NotFoundError):
            standings.service_detail(session, name="nope")


def test_an_older_run_never_overwrites_newer_state(settings: Settings, sample: Path) -> None:
    from engine.jobs import create_run

    old_id, _ = create_run(settings, trigger="cli", now=T0)
    run_evaluation(settings, trigger="cli", now=T0 + timedelta(hours=1))
    set_facts(sample, "search", "github", {"has_readme": False})
    run_evaluation(settings, trigger="cli", run_id=old_id, now=T0)
    with session_scope(engine_for(settings.database_url)) as session:
        assert run_store.get_run(session, run_id=old_id).status == RunStatus.SUPERSEDED
        assert gate.service_scorecard(
            session, service="search", scorecard="readiness").level == "Bronze"


def test_new_message_under_the_same_status_updates_only_the_current_result(
    settings: Settings, sample: Path
) -> None:
    set_facts(sample, "payments", "prometheus", {"availability_30d": 0.99})
    run_evaluation(settings, trigger="cli", now=T0)
    rules, cards = count(settings, RuleState), count(settings, ScorecardState)
    # Still failing, with a new measured value: level and score are the same.
    set_facts(sample, "payments", "prometheus", {"availability_30d": 0.98})
    run_evaluation(settings, trigger="cli", now=T0 + timedelta(hours=4))
    assert (count(settings, RuleState), count(settings, ScorecardState)) == (rules, cards)
    with session_scope(engine_for(settings.database_url)) as session:
        card = gate.service_scorecard(session, service="payments", scorecard="readiness")
        availability = next(r for r in card.rules if r.name == "availability")
        assert availability.status == "fail" and "0.98" in availability.message
        assert availability.since == T0
        assert [p.start for p in timeline.history(session, service="payments",
                                               scorecard="readiness")] == [T0]


def test_history_rows_are_appended_never_updated(settings: Settings, sample: Path) -> None:
    engine = engine_for(settings.database_url)
    updates: list[str] = []

    def watch(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith(("UPDATE RULE_STATE", "UPDATE SCORECARD_STATE")):
            updates.append(statement)

    event.listen(engine, "before_cursor_execute", watch)
    try:
        run_evaluation(settings, trigger="cli", now=T0)
        set_facts(sample, "search", "github", {"has_readme": False})
        run_evaluation(settings, trigger="cli", now=T0 + timedelta(hours=4))
        (sample / "scorecards" / "security.yaml").unlink()
        run_evaluation(settings, trigger="cli", now=T0 + timedelta(hours=8))
    finally:
        event.remove(engine, "before_cursor_execute", watch)
    assert updates == []
    with session_scope(engine) as session:
        points = timeline.history(session, service="search", scorecard="readiness")
        assert [(p.level, p.start, p.end) for p in points] == [
            ("Bronze", T0, T0 + timedelta(hours=4)), (None, T0 + timedelta(hours=4), None)]


def test_result_that_returns_starts_a_new_state_after_a_gap(
    settings: Settings, sample: Path
) -> None:
    path = sample / "scorecards" / "security.yaml"
    text = path.read_text()
    run_evaluation(settings, trigger="cli", now=T0)
    path.unlink()
    run_evaluation(settings, trigger="cli", now=T0 + timedelta(hours=4))
    path.write_text(text)
    run_evaluation(settings, trigger="cli", now=T0 + timedelta(hours=8))
    with session_scope(engine_for(settings.database_url)) as session:
        points = timeline.history(session, service="payments", scorecard="security")
        assert [(p.level, p.start, p.end) for p in points] == [
            ("Hardened", T0, T0 + timedelta(hours=4)), ("Hardened", T0 + timedelta(hours=8), None)]
        gap = timeline.level_as_of(session, service="payments", scorecard="security",
                                at=T0 + timedelta(hours=5))
        assert gap is None
        before = timeline.level_as_of(session, service="payments", scorecard="security",
                                   at=T0 + timedelta(hours=1))
        assert before is not None and before.end == T0 + timedelta(hours=4)
        card = gate.service_scorecard(session, service="payments", scorecard="security")
        assert {r.name: r.since for r in card.rules} == {
            "security-policy": T0 + timedelta(hours=8), "not-archived": T0 + timedelta(hours=8)}
        # Leaving and coming back at the same level is neither a promotion nor a regression.
        assert timeline.level_changes(session, scorecard="security")[0] == 0


def test_retention_drops_end_markers_with_what_they_ended(
    settings: Settings, sample: Path
) -> None:
    run_evaluation(settings, trigger="cli", now=T0)
    (sample / "scorecards" / "security.yaml").unlink()
    run_evaluation(settings, trigger="cli", now=T0 + timedelta(days=1))
    with session_scope(engine_for(settings.database_url)) as session:
        assert session.execute(select(func.count()).select_from(ScorecardState).where(
            ScorecardState.version_id.is_(None))).scalar_one() == 2  # type: ignore[union-attr]
    settings = settings.model_copy(update={"retention_days": 30})
    prune_history(settings, now=T0 + timedelta(days=300))
    with session_scope(engine_for(settings.database_url)) as session:
        kept = session.execute(select(ScorecardState)).scalars().all()
        assert kept and all(s.version_id is not None for s in kept)
        assert session.execute(select(func.count()).select_from(RuleState).where(
            RuleState.outcome_id.is_(None))).scalar_one() == 0  # type: ignore[union-attr]
        current = gate.service_scorecard(session, service="search", scorecard="readiness")
        assert current.level == "Bronze"
        assert timeline.level_as_of(session, service="search", scorecard="readiness",
                                 at=T0 + timedelta(days=299)) is not None


def test_score_keeps_two_decimals(settings: Settings, sample: Path) -> None:
    run_evaluation(settings, trigger="cli", now=T0)
    with session_scope(engine_for(settings.database_url)) as session:
        current = gate.service_scorecard(session, service="search", scorecard="readiness")
        (point,) = timeline.history(session, service="search", scorecard="readiness")
        assert point.score == current.score == 20.0


def test_score_change_within_a_level_is_carried_by_the_rule_row(
    settings: Settings, sample: Path
) -> None:
    run_evaluation(settings, trigger="cli", now=T0)
    cards = count(settings, ScorecardState)
    set_facts(sample, "search", "custom", {"on_call": True})  # on-call has no level
    run_evaluation(settings, trigger="cli", now=T0 + timedelta(days=1))
    assert count(settings, ScorecardState) == cards
    with session_scope(engine_for(settings.database_url)) as session:
        points = timeline.history(session, service="search", scorecard="readiness")
        assert [(p.level, p.score, p.start, p.end) for p in points] == [
            ("Bronze", 20.0, T0, T0 + timedelta(days=1)),
            ("Bronze", 60.0, T0 + timedelta(days=1), None)]
        detail = standings.service_detail(session, name="search")
        assert next(s for s in detail.scorecards if s.scorecard == "readiness").since == (
            T0 + timedelta(days=1))
    # Retention keeps the row that carries the score at the cutoff, though its rule's
    # earlier row goes.
    settings = settings.model_copy(update={"retention_days": 30})
    counts = prune_history(settings, now=T0 + timedelta(days=40))
    assert counts["rule_state"] == 1 and counts["scorecard_state"] == 0
    with session_scope(engine_for(settings.database_url)) as session:
        then = timeline.level_as_of(session, service="search", scorecard="readiness",
                                 at=T0 + timedelta(days=20))
        assert then is not None and (then.level, then.score) == ("Bronze", 60.0)
        card = gate.service_scorecard(session, service="search", scorecard="readiness")
        assert next(r for r in card.rules if r.name == "on-call").since == T0 + timedelta(days=1)


def test_retention_keeps_when_a_current_standing_began(settings: Settings, sample: Path) -> None:
    run_evaluation(settings, trigger="cli", now=T0)
    # A year of runs in which nothing about "payments" changes, while "search" does change.
    for day in (100, 200, 300, 400):
        set_facts(sample, "search", "github", {"has_readme": day % 200 == 0})
        run_evaluation(settings, trigger="cli", now=T0 + timedelta(days=day))
    with session_scope(engine_for(settings.database_url)) as session:
        before = gate.service_scorecard(session, service="payments", scorecard="readiness")
    assert before.rules[0].since == T0

    prune_history(settings.model_copy(update={"retention_days": 30}), now=T0 + timedelta(days=401))

    with session_scope(engine_for(settings.database_url)) as session:
        after = gate.service_scorecard(session, service="payments", scorecard="readiness")
        assert (after.level, after.score) == (before.level, before.score)
        assert [r.since for r in after.rules] == [r.since for r in before.rules]
        assert timeline.level_as_of(session, service="payments", scorecard="readiness",
                                 at=T0 + timedelta(days=350)).level == before.level
