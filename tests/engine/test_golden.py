"""Golden cases as data: each folder of tests/golden holds catalog, facts, scorecard, expected."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.catalog import load_catalog
from engine.evaluation import evaluate
from engine.facts import load_facts
from engine.loading import load_scorecards
from engine.vocabulary import vocabulary

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "expected.json").exists())


@pytest.mark.parametrize("case", CASES)
def test_golden_case(case: str) -> None:
    folder = GOLDEN / case
    expected = json.loads((folder / "expected.json").read_text())
    now = datetime.fromisoformat(expected.get("now", "2026-11-27T00:00:00Z").replace("Z", "+00:00"))
    schemas = vocabulary()
    scorecards = load_scorecards(folder / "scorecard.yaml", schemas).require_valid()
    catalog = load_catalog(folder / "catalog.yaml")
    assert catalog.problems == []
    facts = load_facts(folder / "facts.json", schemas)

    evaluation = evaluate(list(catalog), facts, scorecards.scorecards.values(), schemas, now)

    actual = sorted(
        (
            {
                "service": r.service,
                "scorecard": r.scorecard,
                "level": r.level,
                "score": r.score,
                "rules": {rule.rule: rule.status.value for rule in r.rules},
            }
            for r in evaluation.results
        ),
        key=lambda r: (r["service"], r["scorecard"]),
    )
    assert actual == expected["results"], expected["description"]
    assert evaluation.now.tzinfo == UTC
