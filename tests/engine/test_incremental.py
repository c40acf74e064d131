"""Incremental evaluation gives what a full evaluation gives, and re-evaluates only what changed.

A run grades again only the (service, scorecard) pairs whose inputs changed, plus the rules that
read the clock. The property: after every run of a generated history (facts changing, time
passing across a freshness limit and an exemption's expiry, a scorecard edited, services
joining, leaving and changing tier), the stored standings equal a full evaluation of the same
inputs at the same time.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from engine.catalog import load_catalog
from engine.evaluation import evaluate
from engine.facts import load_facts
from engine.incremental import clock_rules, reads_clock
from engine.jobs import prepare_database, run_evaluation
from engine.loading import load_scorecards, parse_scorecard
from engine.settings import Settings, load_settings
from engine.storage.codec import jsonable
from engine.storage.database import engine_for, session_scope
from engine.storage.results import current_results
from engine.vocabulary import vocabulary
from tests.conftest import write_config

T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)
SERVICES = ("api", "web", "jobs", "search")

READINESS = """\
apiVersion: levelset.dev/v1
kind: Scorecard
metadata: {{name: readiness}}
spec:
  levels: [Bronze, Silver, Gold]
  rules:
    - {{name: tested, level: Bronze, expression: "custom.coverage >= {threshold}"}}
    - {{name: owned, level: Bronze, expression: "custom.on_call"}}
    - {{name: reviewed, level: Silver, expression: "days_since(custom.reviewed_at) < 30.0"}}
    - {{name: sbom, level: Gold, expression: "has(custom.sbom) && custom.sbom"}}
  exemptions:
    - {{service: web, rule: sbom, reason: Vendor build, expires: 2026-03-04}}
"""
TIERED = """\
apiVersion: levelset.dev/v1
kind: Scorecard
metadata: {name: tiered}
spec:
  filter: 'service.tier == "1"'
  levels: [Bronze, Silver]
  rules:
    - {name: on-call, level: Bronze, expression: "custom.on_call"}
    - {name: fresh, level: Silver, expression: "hours_since(custom.reviewed_at) < 240.0"}
"""


def component(name: str, tier: str) -> str:
    return (f"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n"
            f"  annotations: {{levelset.dev/tier: \"{tier}\"}}\n"
            "spec: {type: service, lifecycle: production, owner: team-a}\n")


class Fleet:
    """A settings folder whose catalog, scorecards and facts file a history changes."""

    def __init__(self, root: Path, database_url: str) -> None:
        self.root = root
        (root / "catalog").mkdir()
        (root / "scorecards").mkdir()
        self.services = {name: "1" if index % 2 == 0 else "2" for index, name in enumerate(SERVICES)}
        self.facts: dict[str, dict[str, Any]] = {
            name: {"coverage": 70 + 5 * index, "on_call": index != 1,
                   "reviewed_at": (T0 - timedelta(days=10 * index)).isoformat()}
            for index, name in enumerate(SERVICES)}
        self.threshold = 80
        self.now = T0
        self.write()
        self.settings: Settings = load_settings(write_config(
            root, database_url, evaluation={"isolated": False}, facts_max_age_hours=24 * 365))
        prepare_database(self.settings)

    def write(self) -> None:
        (self.root / "catalog" / "catalog-info.yaml").write_text(
            "---\n".join(component(n, t) for n, t in sorted(self.services.items())))
        (self.root / "scorecards" / "readiness.yaml").write_text(
            READINESS.format(threshold=self.threshold))
        (self.root / "scorecards" / "tiered.yaml").write_text(TIERED)
        (self.root / "facts.json").write_text(json.dumps(
            {name: {"custom": facts} for name, facts in self.facts.items()
             if name in self.services}))

    def run(self) -> Any:
        self.write()
        return run_evaluation(self.settings, trigger="cli", now=self.now)

    def stored(self) -> dict[tuple[str, str], Any]:
        with session_scope(engine_for(self.settings.database_url)) as session:
            return {(r["service"], r["scorecard"]): r for r in current_results(session)}

    def full(self) -> dict[tuple[str, str], Any]:
        """Every result as a full evaluation of the same inputs gives it, as stored."""
        schemas = vocabulary()
        cards = load_scorecards(self.root / "scorecards", schemas).scorecards.values()
        catalog = load_catalog(self.root / "catalog")
        facts = load_facts(self.root / "facts.json", schemas)
        evaluation = evaluate(list(catalog), facts, cards, schemas, self.now)
        return {(r.service, r.scorecard): jsonable(r.to_dict()) for r in evaluation.results}


def same(stored: dict[tuple[str, str], Any], full: dict[tuple[str, str], Any]) -> None:
    assert stored.keys() == full.keys()
    for key, expected in full.items():
        got = stored[key]
        assert (got["level"], got["score"], got["next_level"]) == (
            expected["level"], expected["score"], expected["next_level"]), key
        assert [(r["name"], r["status"], r["message"], r["evidence"]) for r in got["rules"]] == [
            (r["name"], r["status"], r["message"], r["evidence"]) for r in expected["rules"]], key


step = st.one_of(
    st.tuples(st.just("fact"), st.sampled_from(SERVICES),
              st.sampled_from(["coverage", "on_call", "sbom"]), st.integers(0, 100)),
    st.tuples(st.just("time"), st.integers(1, 24 * 12)),
    st.tuples(st.just("threshold"), st.sampled_from([60, 80, 90])),
    st.tuples(st.just("tier"), st.sampled_from(SERVICES), st.sampled_from(["1", "2"])),
    st.tuples(st.just("leave"), st.sampled_from(SERVICES)),
    st.tuples(st.just("join"), st.sampled_from(SERVICES)),
    st.tuples(st.just("review"), st.sampled_from(SERVICES), st.integers(0, 40)),
)


def apply(fleet: Fleet, change: tuple[Any, ...]) -> None:
    kind = change[0]
    if kind == "fact":
        _, service, key, value = change
        fleet.facts[service][key] = value if key == "coverage" else value % 2 == 0
    elif kind == "time":
        fleet.now += timedelta(hours=change[1])
    elif kind == "threshold":
        fleet.threshold = change[1]
    elif kind == "tier" and change[1] in fleet.services:
        fleet.services[change[1]] = change[2]
    elif kind == "leave" and len(fleet.services) > 1:
        fleet.services.pop(change[1], None)
    elif kind == "join":
        fleet.services.setdefault(change[1], "1")
    elif kind == "review":
        fleet.facts[change[1]]["reviewed_at"] = (fleet.now - timedelta(days=change[2])).isoformat()


@hypothesis_settings(max_examples=12, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=st.lists(step, min_size=1, max_size=8))
def test_incremental_runs_store_what_a_full_evaluation_gives(
    tmp_path_factory: pytest.TempPathFactory, history: list[tuple[Any, ...]]
) -> None:
    root = tmp_path_factory.mktemp("fleet")
    fleet = Fleet(root, f"sqlite:///{root / 'levelset.db'}")
    fleet.run()
    same(fleet.stored(), fleet.full())
    for change in history:
        apply(fleet, change)
        fleet.run()
        same(fleet.stored(), fleet.full())


def test_an_unchanged_run_evaluates_nothing_but_the_clock_rules(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path, f"sqlite:///{tmp_path / 'levelset.db'}")
    first = fleet.run()
    assert first.evaluated == 6  # 4 services on readiness, 2 of tier 1 on tiered
    fleet.now += timedelta(hours=1)
    again = fleet.run()
    assert again.evaluated == 0 and again.changed_results == 0


def test_a_fact_change_re_evaluates_that_service_only(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path, f"sqlite:///{tmp_path / 'levelset.db'}")
    fleet.run()
    fleet.facts["web"]["coverage"] = 99
    outcome = fleet.run()
    assert outcome.evaluated == 1  # web is tier 2: readiness only
    same(fleet.stored(), fleet.full())


def test_a_scorecard_change_re_evaluates_that_scorecard_only(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path, f"sqlite:///{tmp_path / 'levelset.db'}")
    fleet.run()
    fleet.threshold = 60
    outcome = fleet.run()
    assert outcome.evaluated == 4  # every service on readiness, none on tiered
    same(fleet.stored(), fleet.full())


def test_an_expiring_exemption_re_evaluates_exactly_its_result(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path, f"sqlite:///{tmp_path / 'levelset.db'}")
    fleet.run()
    fleet.now = datetime(2026, 3, 5, 0, 30, tzinfo=UTC)  # web's exemption ended on the 4th
    for name in SERVICES:  # keep every clock rule's verdict as it was
        fleet.facts[name]["reviewed_at"] = (fleet.now - timedelta(days=1)).isoformat()
    fleet.run()
    fleet.now += timedelta(days=1)
    fleet.facts["web"]["reviewed_at"] = (fleet.now - timedelta(days=1)).isoformat()
    before = fleet.stored()
    outcome = fleet.run()
    assert outcome.evaluated == 1
    after = fleet.stored()
    assert {key for key in after if after[key] != before[key]} <= {("web", "readiness")}
    same(after, fleet.full())


def test_clock_rules_are_found_when_a_scorecard_loads() -> None:
    card, problems = parse_scorecard(READINESS.format(threshold=80), "readiness.yaml",
                                     vocabulary())
    assert card is not None, problems
    assert clock_rules(card) == frozenset({"reviewed"}) and reads_clock(card)
    lookalike = READINESS.format(threshold=80).replace(
        "days_since(custom.reviewed_at) < 30.0", "custom.now == 'days_since(x)'")
    card, problems = parse_scorecard(lookalike, "readiness.yaml", vocabulary())
    assert card is not None, problems
    assert clock_rules(card) == frozenset()
