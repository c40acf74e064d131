"""A whole-fleet refresh, end to end, as `levelset evaluate --config` runs it (run by hand).

    python bench/refresh.py [--db sqlite|postgresql] [--facts file|database]
                            [--services 10000] [--change 0.05] [--seed 7]

Generates a fleet in a temporary folder: one catalog file of ``--services`` Backstage
Components, 5 scorecards of 20 rules on ``custom.*`` facts (one rule per scorecard reads the
clock: ``days_since``), and the facts of every service, either as a JSON facts file named in
the settings (``--facts file``) or stored in the database beforehand, as pushes store them
(``--facts database``). Then three runs of the job function, each in a fresh process: a first
run, an unchanged run (4 hours later), and a run in which ``--change`` of the services changed
one fact. Each run prints its phases (catalog, scorecards, facts, evaluate, store), its total,
and the peak RSS of the run's process and of its evaluation process.

PostgreSQL: a database ``levelset_bench`` on 127.0.0.1 is dropped and created.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LEVELS = ("Bronze", "Silver", "Gold")
SCORECARDS = ("readiness", "security", "reliability", "observability", "docs")
RULES = 20
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1/postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1/levelset_bench"


def scorecard_text(name: str) -> str:
    rules = []
    for index in range(RULES):
        level = LEVELS[index * len(LEVELS) // RULES]
        if index == RULES - 1:
            expression = "days_since(custom.reviewed_at) < 90.0"  # reads the clock
        elif index % 4 == 0:
            expression = f"custom.metric_{index} >= 80.0"
        else:
            expression = f"custom.check_{index}"
        rules.append(f"    - name: rule-{index}\n      level: {level}\n"
                     f"      expression: \"{expression}\"\n"
                     f"      remediation: Fix rule {index} of {name}.\n")
    return (f"apiVersion: levelset.dev/v1\nkind: Scorecard\nmetadata:\n  name: {name}\n"
            f"spec:\n  levels: [{', '.join(LEVELS)}]\n  rules:\n{''.join(rules)}")


def catalog_text(count: int) -> str:
    entities = []
    for index in range(count):
        name = f"svc-{index:05d}"
        entities.append(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n"
            f"  name: {name}\n  description: Service number {index} of the fleet.\n"
            f"  annotations:\n    github.com/project-slug: acme/{name}\n"
            f"    levelset.dev/tier: \"{index % 3 + 1}\"\n"
            f"  tags: [python, team-{index % 40}]\n"
            f"spec:\n  type: service\n  lifecycle: production\n  owner: team-{index % 40}\n"
            f"  system: system-{index % 25}\n")
    return "---\n".join(entities)


def service_facts(rng: random.Random) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for index in range(RULES - 1):
        if index % 4 == 0:
            facts[f"metric_{index}"] = round(rng.uniform(60.0, 100.0), 2)
        else:
            facts[f"check_{index}"] = rng.random() < 0.85
    facts["reviewed_at"] = (T0 - timedelta(days=rng.randint(0, 120))).isoformat()
    facts["notes"] = [f"note {n}: " + "x" * 40 for n in range(6)]
    return facts


def generate(folder: Path, count: int, seed: int, db_url: str, facts_mode: str) -> Path:
    (folder / "catalog").mkdir()
    (folder / "catalog" / "catalog-info.yaml").write_text(catalog_text(count))
    (folder / "scorecards").mkdir()
    for name in SCORECARDS:
        (folder / "scorecards" / f"{name}.yaml").write_text(scorecard_text(name))
    rng = random.Random(seed)
    facts = {f"svc-{index:05d}": service_facts(rng) for index in range(count)}
    (folder / "facts.json").write_text(json.dumps({s: {"custom": f} for s, f in facts.items()}))
    settings = {"database_url": db_url, "catalog": str(folder / "catalog"),
                "scorecards": str(folder / "scorecards"), "facts_max_age_hours": 24 * 365}
    if facts_mode == "file":
        settings["facts"] = str(folder / "facts.json")
    config = folder / "levelset.yaml"
    config.write_text(json.dumps(settings))
    return config


def change_facts(folder: Path, fraction: float, seed: int) -> int:
    """Change one fact of ``fraction`` of the services in facts.json; how many changed."""
    path = folder / "facts.json"
    document = json.loads(path.read_text())
    rng = random.Random(seed + 1)
    names = sorted(document)
    changed = rng.sample(names, int(len(names) * fraction))
    for name in changed:
        custom = document[name]["custom"]
        key = f"check_{rng.choice([k for k in range(RULES - 1) if k % 4])}"
        custom[key] = not custom[key]
    path.write_text(json.dumps(document))
    return len(changed)


def store_facts(config: Path, folder: Path, at: datetime) -> float:
    """Facts stored beforehand, as pushes store them (custom facts are kept per key): every
    service's changed keys appended, the others left as they are."""
    from engine.custom_facts import plan_push, resolve
    from engine.settings import load_settings
    from engine.storage.database import engine_for, write_scope
    from engine.storage.facts import append_custom, custom_entries

    settings = load_settings(config)
    document = json.loads((folder / "facts.json").read_text())
    started = time.perf_counter()
    with write_scope(engine_for(settings.database_url)) as session:
        held = custom_entries(session)
        for name, namespaces in document.items():
            append_custom(session, service=name, changes=plan_push(
                resolve(held.get(name, [])), namespaces["custom"], at))
    return time.perf_counter() - started


def one_run(config: Path, now: datetime) -> dict[str, Any]:
    """In its own process: the job function `evaluate --config` calls, and its peak RSS."""
    from engine.jobs import prepare_database, run_evaluation
    from engine.settings import load_settings
    from engine.storage.models import RunTrigger

    settings = load_settings(config)
    prepare_database(settings)
    started = time.perf_counter()
    outcome = run_evaluation(settings, trigger=RunTrigger.CLI, now=now)
    total = time.perf_counter() - started
    return {
        "total": total, "phases": outcome.timings, "status": str(outcome.status),
        "evaluated": outcome.evaluated, "changed_results": outcome.changed_results,
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "evaluator_rss_mib": evaluator_peak_mib(),
    }


def evaluator_peak_mib() -> float:
    """The peak RSS of the evaluation process (it outlives the run; read from /proc)."""
    from engine.isolation import _EVALUATOR

    process = _EVALUATOR._process
    if process is None or process.poll() is not None:
        return 0.0
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_postgres() -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP DATABASE IF EXISTS levelset_bench WITH (FORCE)"))
        connection.execute(text("CREATE DATABASE levelset_bench"))
    engine.dispose()


def run_in_child(config: Path, now: datetime) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, __file__, "--one-run", str(config), "--now", now.isoformat()],
        check=True, capture_output=True, text=True,
    ).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


def show(label: str, result: dict[str, Any]) -> None:
    phases = "  ".join(f"{name} {seconds:6.2f}" for name, seconds in result["phases"].items())
    print(f"{label:<10} total {result['total']:6.2f} s | {phases} | evaluated "
          f"{result['evaluated']:>6} results, {result['changed_results']:>6} changed | "
          f"peak RSS {result['rss_mib']:.0f} MiB (evaluation process "
          f"{result['evaluator_rss_mib']:.0f} MiB)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--facts", choices=["file", "database"], default="file")
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--change", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--one-run", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_run is not None:
        print(json.dumps(one_run(args.one_run, datetime.fromisoformat(args.now)), default=str))
        return
    with tempfile.TemporaryDirectory(prefix="levelset-refresh-") as tmp:
        folder = Path(tmp)
        if args.db == "postgresql":
            reset_postgres()
            url = PG_URL
        else:
            url = f"sqlite:///{folder / 'levelset.db'}"
        started = time.perf_counter()
        config = generate(folder, args.services, args.seed, url, args.facts)
        size = (folder / "facts.json").stat().st_size / 2**20
        catalog = (folder / "catalog" / "catalog-info.yaml").stat().st_size / 2**20
        print(f"{args.services} services x {len(SCORECARDS)} scorecards x {RULES} rules on "
              f"{args.db}, facts from {args.facts} (facts {size:.1f} MiB, catalog "
              f"{catalog:.1f} MiB; generated in {time.perf_counter() - started:.1f} s)", flush=True)
        runs = [("first", T0, False), ("unchanged", T0 + timedelta(hours=4), False),
                (f"{args.change:.0%} changed", T0 + timedelta(hours=8), True)]
        for label, now, change in runs:
            if change:
                changed = change_facts(folder, args.change, args.seed)
                print(f"changed one fact of {changed} services", flush=True)
            if args.facts == "database":
                if label == "first":
                    from engine.jobs import prepare_database
                    from engine.settings import load_settings

                    prepare_database(load_settings(config))
                seconds = store_facts(config, folder, now)
                print(f"{'(push)':<10} facts stored per key in {seconds:.2f} s "
                      "(the pushes' write, not part of the run)", flush=True)
            show(label, run_in_child(config, now))


if __name__ == "__main__":
    main()
