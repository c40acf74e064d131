"""The fact vocabulary is built from the collector registry, each source as configured."""

from __future__ import annotations

from collectors import registry
from engine.loading import parse_scorecard
from engine.vocabulary import vocabulary

SCORECARD = """\
apiVersion: levelset.dev/v1
kind: Scorecard
metadata: {name: fixed}
spec:
  levels: [Bronze]
  rules:
    - {name: value, level: Bronze, expression: "fixed.value > 0 && fixed.more > 0"}
"""


def test_namespaces_are_the_engines_own_and_one_per_registered_collector() -> None:
    assert set(vocabulary()) == {"service", "custom", *registry.names()}
    assert "fixed" not in vocabulary()


def test_a_collector_registered_by_a_fixture_is_in_the_vocabulary(fixed_source) -> None:
    default, configured = vocabulary(), vocabulary({"fixed": {"extra": ["more"]}})

    assert default["fixed"] is fixed_source.schema
    assert 'unknown fact "fixed.more"' in (default["fixed"].check(("fixed", "more")) or "")
    assert configured["fixed"].check(("fixed", "more")) is None
    card, problems = parse_scorecard(SCORECARD, "fixed.yaml", configured)
    assert problems == [] and card is not None


def test_configured_prometheus_queries_are_its_facts() -> None:
    queries = {"up_now": "max by (service) (up)"}

    schemas = vocabulary({"prometheus": {"queries": queries}})
    assert [f.path for f in schemas["prometheus"].facts] == ["up_now", "alert_rules"]
    assert "availability_30d" in [f.path for f in vocabulary()["prometheus"].facts]
