"""Evaluate generated services against the shipped scorecards; print throughput and memory.

    python bench/evaluate.py [--services 10000] [--seed 7]

Facts are the sample facts (samples/facts.json) with numbers, flags and failed collectors
varied at random, so every status (pass, fail, unknown, error-free) occurs. Runs on one core.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.service import Service  # noqa: E402
from engine.evaluation import ServiceFacts, evaluate  # noqa: E402
from engine.loading import load_scorecards  # noqa: E402
from engine.vocabulary import vocabulary  # noqa: E402


def vary(value: object, rng: random.Random) -> object:
    if isinstance(value, bool):
        return value if rng.random() < 0.8 else not value
    if isinstance(value, float):
        return value * rng.uniform(0.995, 1.002) if value > 0.9 else value * rng.uniform(0.5, 1.5)
    if isinstance(value, int):
        return max(0, value + rng.choice([-1, 0, 0, 0, 1]))
    if isinstance(value, dict):
        return {k: vary(v, rng) for k, v in value.items()}
    if isinstance(value, list):
        return [vary(v, rng) for v in value]
    return value


def generate(count: int, seed: int) -> tuple[list[Service], dict[str, ServiceFacts]]:
    rng = random.Random(seed)
    templates = json.loads((ROOT / "samples" / "facts.json").read_text())
    good = [facts for facts in templates.values() if all("$error" not in v for v in facts.values())]
    services, facts = [], {}
    lifecycles = ["production"] * 8 + ["experimental", "deprecated"]
    for index in range(count):
        name = f"svc-{index:05d}"
        services.append(Service(
            name=name, owner=f"team-{index % 40}", lifecycle=rng.choice(lifecycles),
            type="service" if rng.random() < 0.9 else "website",
            description="Generated service for the benchmark." if rng.random() < 0.9 else None,
            tier=rng.choice(["1", "2", "3", None]), tags=("python",),
            annotations={"github.com/project-slug": f"acme/{name}"},
            links=({"url": "https://runbooks.example/x", "type": "runbook"},) if rng.random() < 0.5 else (),
        ))
        template = copy.deepcopy(rng.choice(good))
        values = {ns: vary(v, rng) for ns, v in template.items()}
        failures = {}
        for ns in list(values):
            if rng.random() < 0.03:  # a failed collector now and then
                del values[ns]
                failures[ns] = "HTTP 503"
        facts[name] = ServiceFacts(values=values, failures=failures)
    return services, facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    schemas = vocabulary()
    scorecards = load_scorecards(ROOT / "scorecards", schemas).require_valid().scorecards.values()
    services, facts = generate(args.services, args.seed)
    started = time.perf_counter()
    cpu_started = time.process_time()
    evaluation = evaluate(services, facts, scorecards, schemas, datetime(2026, 11, 27, tzinfo=UTC))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    rules = evaluation.rule_evaluations
    statuses: dict[str, int] = {}
    for result in evaluation.results:
        for rule in result.rules:
            statuses[rule.status.value] = statuses.get(rule.status.value, 0) + 1
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"services:              {len(services):,}")
    print(f"scorecard results:     {len(evaluation.results):,} ({evaluation.not_applicable:,} not applicable)")
    print(f"rule evaluations:      {rules:,}  {statuses}")
    print(f"wall time:             {elapsed:.2f} s (cpu {cpu:.2f} s)")
    print(f"rule evaluations/s:    {rules / elapsed:,.0f}")
    print(f"services/s:            {len(services) / elapsed:,.0f}")
    print(f"peak memory (RSS):     {peak_mib:,.0f} MiB")


if __name__ == "__main__":
    main()
