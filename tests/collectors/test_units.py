"""Collection in units: each source plans its work as plain units, decided without I/O, and
the units collected apart (each in a run of its own, passed on as JSON) combine into the
same facts and request counts as one run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collectors.aws.collector import AwsCollector
from collectors.base import CollectionPlan, CollectionUnit, Collector, UnitResult
from collectors.github.collector import GitHubCollector
from collectors.prometheus.collector import PrometheusCollector
from core.service import Service
from engine.jobs.collection import collect_unit, plan_collection, run_collection, store_units
from engine.settings import Settings
from tests.collectors.conftest import EU, GITHUB_ANNOTATION, US, service
from tests.collectors.test_github import TOKEN, collector
from tests.fakes import FIXED, FixedCollector
from tests.realparts.github import GitHubStandIn


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEVELSET_TEST_GITHUB_TOKEN", TOKEN)


def through_json(value: UnitResult) -> UnitResult:
    """What another process gets: the result as plain JSON."""
    return UnitResult.from_dict(json.loads(json.dumps(value.to_dict())))


def collect_apart(col: GitHubCollector, plan: CollectionPlan,
                  services: Sequence[Service]) -> list[UnitResult]:
    """Each unit in a run of its own, reading only the JSON of the units it comes after."""
    by_name = {s.name: s for s in services}
    done: dict[str, UnitResult] = {}
    for unit in plan.units:
        unit = CollectionUnit.from_dict(json.loads(json.dumps(unit.to_dict())))
        with col.open_run() as run:
            got = col.collect_unit(unit, [by_name[n] for n in unit.services],
                                   [done[before] for before in unit.after], run)
        done[unit.id] = through_json(got)
    return list(done.values())


def test_an_organisation_of_120_repositories_plans_3_batches_and_2_sweeps():
    services = [service(f"svc-{i:03d}") for i in range(120)]

    plan = GitHubCollector({"org": "acme", "batch_size": 50}).plan(services)

    assert plan.kinds() == {"graphql-batch": 3, "alert-sweep": 2}
    batches = [u for u in plan.units if u.kind == "graphql-batch"]
    assert [len(b.targets) for b in batches] == [50, 50, 20]
    assert batches[0].targets[0] == "acme/svc-000" and batches[2].services[-1] == "svc-119"
    sweeps = [u for u in plan.units if u.kind == "alert-sweep"]
    assert [s.key for s in sweeps] == ["acme/dependabot", "acme/code_scanning"]
    assert all(s.after == tuple(b.id for b in batches) for s in sweeps)
    assert plan.units[-2:] == tuple(sweeps)  # after the batches they read
    assert [CollectionUnit.from_dict(json.loads(json.dumps(u.to_dict())))
            for u in plan.units] == list(plan.units)


def test_one_repository_plans_one_batch_and_its_own_alerts_without_a_sweep(github):
    checkout = [service("checkout", **{GITHUB_ANNOTATION: "acme/checkout"})]
    col = collector(github)

    plan = col.plan(checkout)
    result = col.collect(checkout)

    assert plan.kinds() == {"graphql-batch": 1, "repository-alerts": 1}
    assert github.requests(path_prefix="/orgs/") == 0
    assert github.requests(path_prefix="/repos/acme/checkout/") == 2
    assert result.facts["checkout"]["alerts"]["dependabot"] == {
        "critical": 1, "high": 2, "medium": 0, "low": 0, "total": 3}
    assert result.facts["checkout"]["alerts"]["code_scanning"]["medium"] == 1
    assert result.requests == 3 and result.cost == 3


def test_services_without_a_repository_are_failed_by_the_plan_not_by_a_unit():
    plan = GitHubCollector({}).plan([service("orphan"),
                                     service("linked", **{GITHUB_ANNOTATION: "acme/legacy"})])

    assert plan.failures == {"orphan": "no github.com/project-slug annotation and no "
                                       "collectors.github.org"}
    assert [u.services for u in plan.units] == [("linked",), ("linked",)]


def test_prometheus_plans_one_query_set_for_every_service():
    services = [service("checkout"), service("payments")]
    col = PrometheusCollector({"url": "http://prometheus:9090",
                               "queries": {"availability_30d": "avg by (service) (up)"}})

    [unit] = col.plan(services).units

    assert unit.kind == "query-set" and unit.services == ("checkout", "payments")
    assert unit.targets == ("availability_30d", "alert_rules")


def test_aws_plans_one_unit_per_region():
    plan = AwsCollector({"regions": [EU, US]}).plan([service("orders"), service("empty")])

    assert [(u.kind, u.targets) for u in plan.units] == [("region", (EU,)), ("region", (US,))]
    assert plan.units[1].after == (plan.units[0].id,)  # it skips what the first one listed
    assert all(u.services == ("orders", "empty") for u in plan.units)


def test_aws_regions_collected_apart_give_the_facts_of_one_run(aws_endpoint, aws_services):
    col = AwsCollector({"regions": [EU, US], "endpoint_url": aws_endpoint})
    plan = col.plan(aws_services)
    by_name = {s.name: s for s in aws_services}
    done: dict[str, UnitResult] = {}
    for unit in plan.units:
        with col.open_run() as run:
            done[unit.id] = through_json(col.collect_unit(
                unit, [by_name[n] for n in unit.services], [done[b] for b in unit.after], run))

    apart = col.combine(plan, list(done.values()), datetime.now(UTC))
    together = col.collect(aws_services)

    assert apart.facts == together.facts and apart.failures == together.failures == {}
    assert apart.facts["orders"]["resource_count"] == 8
    assert apart.requests == together.requests and apart.calls == together.calls


def test_github_units_collected_apart_give_the_facts_and_counts_of_one_run(github,
                                                                         github_services):
    apart_collector = collector(github, batch_size=2)
    plan = apart_collector.plan(github_services)
    assert plan.kinds() == {"graphql-batch": 2, "alert-sweep": 2}

    apart = apart_collector.combine(plan, collect_apart(apart_collector, plan, github_services),
                                    datetime.now(UTC))
    apart_requests = github.requests() + github.graphql_requests()
    github.reset_counts()
    together = collector(github, batch_size=2).collect(github_services)

    assert apart.facts == together.facts and apart.failures == together.failures == {}
    assert sorted(apart.errors) == sorted(together.errors)
    assert apart.requests == together.requests == apart_requests == 4
    assert apart.cost == together.cost and apart.calls == together.calls
    # the sweep's alert facts were merged into the batches' facts
    assert apart.facts["checkout"]["alerts"]["dependabot"]["total"] == 3
    assert apart.facts["payments"]["alerts"]["dependabot"] is None


def test_a_sweep_the_token_cannot_read_falls_back_to_the_repositories_its_batches_read(
        github: GitHubStandIn, github_services):
    github.org_alerts_readable = False
    github.fail_repository("acme/payments", "INTERNAL", "Something went wrong.")
    col = collector(github)

    result = col.collect(github_services)

    assert set(result.failures) == {"payments"}
    # two per repository read, none for the one its batch could not read
    assert github.requests(path_prefix="/repos/") == 4
    assert github.requests(path_prefix="/repos/acme/payments/") == 0
    assert result.facts["checkout"]["alerts"]["dependabot"]["total"] == 3


def test_a_unit_that_breaks_fails_its_services_and_the_others_are_read(github,
                                                                       github_services):
    class BrokenFirstBatch(GitHubCollector):
        def collect_unit(self, unit, services, inputs, run):  # type: ignore[no-untyped-def]
            if unit.kind == "graphql-batch" and unit.key == "0":
                raise KeyError("bug")
            return super().collect_unit(unit, services, inputs, run)

    col = BrokenFirstBatch({"base_url": github.base_url, "org": "acme", "batch_size": 1,
                            "token_env": "LEVELSET_TEST_GITHUB_TOKEN"})
    result = col.collect(github_services)

    assert result.failures == {"checkout": "github collector error: KeyError"}
    assert result.facts["legacy"]["alerts"]["dependabot"]["total"] == 0  # swept all the same


def test_the_collection_jobs_store_units_collected_apart_as_one_run_stores_them(
        github, tmp_path: Path, database_url: str):
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    for name in ("checkout", "payments", "legacy"):
        (catalog / f"{name}.yaml").write_text(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\n"
            f"metadata: {{name: {name}}}\n"
            "spec: {type: service, lifecycle: production, owner: team-a}\n")
    settings = Settings(environment="development", database_url=database_url,
                        catalog=str(catalog), collectors={"github": {
                            "base_url": github.base_url, "org": "acme", "batch_size": 2,
                            "token_env": "LEVELSET_TEST_GITHUB_TOKEN"}})

    [(together, stored_together)] = run_collection(settings)
    [plan] = plan_collection(settings)
    started = datetime.now(UTC)
    done: dict[str, UnitResult] = {}
    for unit in plan.units:
        done[unit.id] = through_json(collect_unit(settings, unit,
                                                  [done[b] for b in unit.after]))
    apart, stored_apart = store_units(settings, plan, list(done.values()), started_at=started)

    assert apart.facts == together.facts and len(apart.facts) == 3
    assert apart.requests == together.requests == 4
    assert apart.not_modified == 2  # the sweeps revalidated with the ETags in the database
    assert stored_apart == stored_together


def test_a_collector_with_only_collect_is_one_unit_and_one_with_neither_is_refused():
    fixed = FixedCollector({"value": 3})
    [unit] = fixed.plan([service("a"), service("b")]).units
    assert (unit.kind, unit.services) == ("all", ("a", "b"))
    with pytest.raises(TypeError, match="Silent must define collect or collect_unit"):
        type("Silent", (Collector,), {"source": FIXED})
