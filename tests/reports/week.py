"""A week of history over the sample project: stored runs at different times, facts changed
between them, as `levelset evaluate --now T` would store them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.jobs import run_evaluation
from engine.settings import Settings

# The report's moment: Monday 12 January 2026, 09:00 in Berlin; its week began a week before.
NOW = datetime(2026, 1, 12, 8, 0, tzinfo=UTC)
WEEK_AGO = NOW - timedelta(days=7)

TEAM_X = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: billing
  namespace: team-x
spec:
  type: service
  lifecycle: production
  owner: team-b
"""


def set_facts(sample: Path, service: str, namespace: str, values: dict[str, object]) -> None:
    path = sample / "facts.json"
    data = json.loads(path.read_text())
    data.setdefault(service, {})[namespace] = values
    path.write_text(json.dumps(data))


def github(**values: bool) -> dict[str, bool]:
    return {"has_readme": True, "has_codeowners": True, "has_security_policy": True,
            "archived": False, **values}


def build_week(settings: Settings, sample: Path) -> None:
    """Before the week: payments Gold, search Bronze, ledger none, team-x/billing Gold.
    During it: search is promoted twice (a CODEOWNERS file, then availability back),
    payments regresses on both scorecards, ledger gets a README, billing loses its own."""
    (sample / "catalog" / "team-x.yaml").write_text(TEAM_X)
    set_facts(sample, "team-x/billing", "github", github())
    set_facts(sample, "team-x/billing", "prometheus", {"availability_30d": 0.9999})
    run_evaluation(settings, trigger="cli", now=WEEK_AGO - timedelta(days=2))
    run_evaluation(settings, trigger="cli", now=WEEK_AGO - timedelta(hours=1))  # no change

    set_facts(sample, "search", "github", github(has_security_policy=False))
    set_facts(sample, "payments", "prometheus", {"availability_30d": 0.99})
    run_evaluation(settings, trigger="cli", now=WEEK_AGO + timedelta(days=1))

    set_facts(sample, "payments", "github", github(archived=True))
    set_facts(sample, "ledger", "github", {"has_readme": True})
    set_facts(sample, "team-x/billing", "github", github(has_readme=False))
    run_evaluation(settings, trigger="cli", now=WEEK_AGO + timedelta(days=3, hours=2))

    set_facts(sample, "search", "prometheus", {"availability_30d": 0.9993})
    run_evaluation(settings, trigger="cli", now=WEEK_AGO + timedelta(days=5, hours=6))
    # After the report's moment: not part of its week.
    set_facts(sample, "ledger", "github", {"has_readme": False})
    run_evaluation(settings, trigger="cli", now=NOW + timedelta(hours=2))
