"""How big a year of history gets, and how fast the API reads it (run by hand).

    python bench/history.py [--url postgresql+psycopg://postgres@127.0.0.1/test]
                            [--services 10000] [--runs 60] [--change 0.03] [--minutes 7]

Builds 10,000 services x 5 scorecards x 20 rules in a fresh PostgreSQL schema ``bench``,
stores an initial run, then ``--runs`` 4-hourly runs in which ``--change`` of the
(service, scorecard) results change one rule (a status flip, or a new measured value). A year
is 2,190 runs; the size of a year is extrapolated linearly from the growth per simulated run,
and the output says so. Then it times the API: a service page, one service on one scorecard,
and a 10,000-row leaderboard.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlmodel import Session

from core.service import Service
from engine.api.app import create_app
from engine.evaluation import RuleResult, RuleStatus, ScorecardResult, achieved_level, score
from engine.loading import parse_scorecard
from engine.scorecard import Scorecard
from engine.settings import Settings
from engine.storage.database import make_engine, migrate
from engine.storage.history.record import record_results
from engine.storage.models import RunStatus, RunTrigger
from engine.storage.runs import finish_run, open_run
from engine.storage.scorecards import sync_scorecards
from engine.storage.services import sync_services
from engine.vocabulary import vocabulary

SCHEMA = "bench"
RUNS_PER_YEAR = 365 * 6
LEVELS = ("Bronze", "Silver", "Gold")
SCORECARDS = ("readiness", "security", "reliability", "observability", "docs")
RULES = 20
NUMERIC_EVERY = 4  # every 4th rule compares a measured value (distinct evidence per service)


def scorecard_text(name: str) -> str:
    rules = []
    for index in range(RULES):
        level = LEVELS[index * len(LEVELS) // RULES]
        expression = (f"custom.metric_{index} >= 80.0" if index % NUMERIC_EVERY == 0
                      else f"custom.check_{index}")
        rules.append(f"    - name: rule-{index}\n      level: {level}\n"
                     f"      expression: \"{expression}\"\n"
                     f"      remediation: Fix rule {index} of {name}.\n")
    return (f"apiVersion: levelset.dev/v1\nkind: Scorecard\nmetadata:\n  name: {name}\n"
            f"spec:\n  levels: [{', '.join(LEVELS)}]\n  rules:\n{''.join(rules)}")


def rule_result(card: Scorecard, index: int, passing: bool, value: float) -> RuleResult:
    rule = card.rules[index]
    if index % NUMERIC_EVERY == 0:
        key = f"custom.metric_{index}"
        evidence = {key: value}
        message = (f"passed: {key} = {value}" if passing
                   else f"expected {key} >= 80.0; got {key} = {value}")
        return RuleResult(rule.name, rule.level, RuleStatus.PASS if passing else RuleStatus.FAIL,
                          message, rule.weight, evidence)
    key = f"custom.check_{index}"
    return RuleResult(rule.name, rule.level, RuleStatus.PASS if passing else RuleStatus.FAIL,
                      f"passed: {key} = true" if passing else f"expected {key}; got {key} = false",
                      rule.weight, {key: passing})


def result_of(service: str, card: Scorecard, rules: list[RuleResult]) -> ScorecardResult:
    level = achieved_level(card.levels, rules)
    rank = level.rank if level else 0
    next_level = card.levels[rank].name if rank < len(card.levels) else None
    return ScorecardResult(service, card.name, level.name if level else None, score(rules),
                           tuple(rules), next_level)


def size_bytes(engine_url: str) -> dict[str, int]:
    engine = create_engine(engine_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        # What autovacuum would do between runs: dead row versions become reusable space.
        for table in ("rule_state", "scorecard_state", "current_result", "rule_outcome"):
            connection.execute(text(f"VACUUM ANALYZE {SCHEMA}.{table}"))
        rows = connection.execute(text(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :schema AND c.relkind = 'r'"), {"schema": SCHEMA}).all()
    engine.dispose()
    return {name: int(size) for name, size in rows}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--change", type=float, default=0.03)
    parser.add_argument("--minutes", type=float, default=7.0,
                        help="stop simulating runs after this long (then extrapolate)")
    args = parser.parse_args()
    rng = random.Random(42)

    admin = create_engine(args.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    admin.dispose()
    url = f"{args.url}?options=-csearch_path%3D{SCHEMA}"
    engine = make_engine(url)
    migrate(engine)

    cards = []
    for name in SCORECARDS:
        card, problems = parse_scorecard(scorecard_text(name), f"bench/{name}.yaml", vocabulary())
        assert card is not None, problems
        cards.append(card)
    services = [Service(name=f"svc-{i:05d}", owner=f"team-{i % 200}",
                        lifecycle="production" if i % 5 else "experimental")
                for i in range(args.services)]
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    with Session(engine) as session:
        ids = sync_services(session, services=services, now=t0, complete=True)
        stored = sync_scorecards(session, scorecards={c.name: c for c in cards}, now=t0)
        session.commit()

    # Current state per (service, scorecard): its rule results.
    state: dict[tuple[int, int], list[RuleResult]] = {}
    results: dict[tuple[int, int], ScorecardResult] = {}
    for s_index, service in enumerate(services):
        for c_index, card in enumerate(cards):
            rules = [rule_result(card, r, rng.random() < 0.85, round(rng.uniform(50, 100), 1))
                     for r in range(RULES)]
            state[(s_index, c_index)] = rules
            results[(s_index, c_index)] = result_of(service.name, card, rules)

    def store(run_number: int) -> float:
        started = time.perf_counter()
        with Session(engine) as session:
            at = t0 + timedelta(hours=4 * run_number)
            run_id, _ = open_run(session, trigger=RunTrigger.CLI, now=at)
            record_results(session, run_id=run_id, results=list(results.values()),
                           service_ids=ids, scorecards=stored)
            finish_run(session, run_id=run_id, status=RunStatus.COMPLETE, evaluated_at=at)
            session.commit()
        return time.perf_counter() - started

    print(f"services {args.services}, scorecards {len(cards)}, rules per scorecard {RULES}: "
          f"{args.services * len(cards) * RULES:,} rule results per run")
    initial = store(0)
    base = size_bytes(url)
    print(f"initial run stored in {initial:.1f} s; size {sum(base.values()) / 2**20:.1f} MiB")

    keys = list(state)
    per_run = []
    deadline = time.monotonic() + args.minutes * 60
    simulated = 0
    changed_total = 0
    for run_number in range(1, args.runs + 1):
        if time.monotonic() > deadline:
            break
        for key in rng.sample(keys, int(len(keys) * args.change)):
            s_index, c_index = key
            card = cards[c_index]
            rules = list(state[key])
            index = rng.randrange(RULES)
            old = rules[index]
            if index % NUMERIC_EVERY == 0:
                value = round(rng.uniform(50, 100), 1)
                rules[index] = rule_result(card, index, value >= 80.0, value)
            else:
                rules[index] = rule_result(card, index, old.status is not RuleStatus.PASS, 0.0)
            state[key] = rules
            results[key] = result_of(services[s_index].name, card, rules)
            changed_total += 1
        per_run.append(store(run_number))
        simulated = run_number
    after = size_bytes(url)

    growth = (sum(after.values()) - sum(base.values())) / max(simulated, 1)
    year = sum(base.values()) + growth * (RUNS_PER_YEAR - 1)
    print(f"simulated {simulated} runs after the first ({changed_total:,} changed results, "
          f"{args.change:.0%} per run); store time p50 {statistics.median(per_run):.2f} s, "
          f"max {max(per_run):.2f} s")
    print("table sizes after the simulated runs (MiB): " + ", ".join(
        f"{name} {size / 2**20:.1f}" for name, size in sorted(after.items(), key=lambda x: -x[1])
        if size >= 2**20 // 10))
    print("growth per run by table (KiB): " + ", ".join(
        f"{name} {(after[name] - base.get(name, 0)) / max(simulated, 1) / 1024:.1f}"
        for name in sorted(after, key=lambda n: base.get(n, 0) - after[n])
        if after[name] != base.get(name, 0)))
    per_rule = growth / (args.services * len(cards) * RULES)
    print(f"growth per run: {growth / 1024:.1f} KiB = {growth / args.services:.1f} bytes per "
          f"service-run ({per_rule:.3f} bytes per rule result)")
    print(f"projected for one year ({RUNS_PER_YEAR} runs, linear extrapolation from {simulated} "
          f"simulated runs): {year / 2**30:.3f} GiB "
          f"({year / (args.services * RUNS_PER_YEAR):.1f} bytes per service-run, all tables)")

    # The simulation holds a million result objects; a server process does not. Free them so
    # the garbage collector's full passes do not land inside the timed requests.
    state.clear()
    results.clear()
    gc.collect()
    settings = Settings(database_url=url, environment="development")
    client = TestClient(create_app(settings))
    samples: dict[str, list[float]] = {"service page": [], "service on scorecard": []}
    for i in range(200):
        name = services[rng.randrange(len(services))].name
        for label, path in (("service page", f"/api/v1/services/{name}"),
                            ("service on scorecard", f"/api/v1/services/{name}/scorecards/"
                                                     f"{SCORECARDS[i % len(SCORECARDS)]}")):
            started = time.perf_counter()
            response = client.get(path)
            samples[label].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
    for i in range(60):
        sort = ("score", "level", "name")[i % 3]
        started = time.perf_counter()
        response = client.get(f"/api/v1/scorecards/{SCORECARDS[i % len(SCORECARDS)]}/leaderboard",
                              params={"limit": 10_000, "sort": sort})
        elapsed = (time.perf_counter() - started) * 1000
        samples.setdefault("leaderboard 10,000 rows (all sorts)", []).append(elapsed)
        samples.setdefault(f"leaderboard 10,000 rows by {sort}", []).append(elapsed)
        assert response.status_code == 200 and len(response.json()["items"]) == min(
            10_000, args.services)
    for label, values in samples.items():
        print(f"API {label}: p50 {percentile(values, 0.5):.1f} ms, "
              f"p95 {percentile(values, 0.95):.1f} ms ({len(values)} requests)")
    engine.dispose()


if __name__ == "__main__":
    main()
