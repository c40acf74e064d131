"""What `levelset evaluate --config` prints of a stored run: a summary, or every result."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from engine.cli.output import print_table, stdout
from engine.jobs import RunOutcome
from engine.settings import Settings
from engine.storage.database import engine_for, session_scope
from engine.storage.results import current_results
from engine.storage.runs import get_run
from engine.storage.scorecards import NO_LEVEL, list_scorecards

SHOWN_CHANGES = 20


def print_summary(settings: Settings, outcome: RunOutcome) -> None:
    """Counts per level and scorecard, the level changes, and where the time went."""
    with session_scope(engine_for(settings.database_url)) as session:
        run = get_run(session, run_id=outcome.run_id)
        ranked = {card.name: [lv.name for lv in sorted(card.levels, key=lambda lv: -lv.rank)]
                  for card in list_scorecards(session)}
    rows = []
    for card, by_level in sorted(run.levels.items()):
        levels = [lv for lv in ranked.get(card, sorted(by_level)) if lv in by_level]  # highest first
        rows.append([card, str(sum(by_level.values())),
                     "  ".join(f"{lv} {by_level[lv]}" for lv in levels),
                     str(by_level.get(NO_LEVEL, 0))])
    print_table(["scorecard", "services", "by level", "no level"], rows,
                title=f"Run {run.id} ({run.status}): {run.services} services")
    console = stdout()
    promotions = [c for c in outcome.level_changes if c.direction == "promotion"]
    regressions = [c for c in outcome.level_changes if c.direction == "regression"]
    console.print(f"{len(promotions)} promotion(s), {len(regressions)} regression(s); "
                  f"{run.evaluated} result(s) evaluated, "
                  f"{run.results - run.evaluated if run.results >= run.evaluated else 0} "
                  "unchanged", markup=False, highlight=False)
    for change in outcome.level_changes[:SHOWN_CHANGES]:
        console.print(f"  {change.direction}: {change.service} on {change.scorecard}: "
                      f"{change.before or 'no level'} -> {change.after or 'no level'}",
                      markup=False, highlight=False)
    if len(outcome.level_changes) > SHOWN_CHANGES:
        console.print(f"  ... and {len(outcome.level_changes) - SHOWN_CHANGES} more "
                      f"(levelset runs --config ...; GET /api/v1/runs/{run.id})", markup=False)
    phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in outcome.timings.items())
    console.print(f"took {(run.duration_ms or 0) / 1000:.1f} s ({phases})", markup=False,
                  highlight=False)


def print_results_json(settings: Settings, outcome: RunOutcome, services: Sequence[str] | None,
                       ) -> None:
    """Every current result of the services (all: None) with each rule, as stored after the
    run (unchanged results were not evaluated again, and are what they were)."""
    with session_scope(engine_for(settings.database_url)) as session:
        run = get_run(session, run_id=outcome.run_id)
        out = sys.stdout
        now = run.evaluated_at.isoformat() if run.evaluated_at else None
        out.write('{\n  "now": ' + json.dumps(now) + ',\n  "results": [')
        for index, result in enumerate(current_results(session, services=services)):
            out.write(("," if index else "") + "\n    " + json.dumps(result, default=str))
        out.write("\n  ]\n}\n")
