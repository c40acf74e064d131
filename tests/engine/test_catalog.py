"""The catalog reader against real Backstage example files."""

from __future__ import annotations

from pathlib import Path

from collectors.aws.collector import AwsCollector
from collectors.github.collector import GitHubCollector
from collectors.prometheus.collector import PrometheusCollector
from engine.catalog import load_catalog, short_ref
from tests.conftest import SHARED_BACKSTAGE
from tests.hostile.generators import alias_bomb


def test_location_file_loads_its_targets_relative_to_itself():
    catalog = load_catalog(SHARED_BACKSTAGE / "all-components.yaml")
    assert catalog.problems == []
    assert sorted(catalog.services) == [
        "analyticsapi", "aware", "jacs", "mapanalyticsapi", "odpanalyticsapi", "wokplaceanalytics",
    ]


def test_invalid_entity_is_rejected_naming_its_file_and_the_rest_still_loads():
    catalog = load_catalog(SHARED_BACKSTAGE)
    invalid = [p for p in catalog.problems if p.file.endswith("invalid-component.yaml")]
    assert invalid and invalid[0].line == 4
    assert '"invalid component" is not a valid entity name' in invalid[0].message
    assert {p.file for p in catalog.problems} == {invalid[0].file}
    assert "artist-lookup" in catalog.services and "playback-order" in catalog.services


def test_other_kinds_are_not_services():
    catalog = load_catalog(SHARED_BACKSTAGE)
    # Groups, Users, a System and an API are in the folder; only Components are services.
    assert "team-a" not in catalog.services
    assert "audio-playback" not in catalog.services
    assert "hello-world" not in catalog.services
    assert len(catalog.services) == 8


def test_a_directory_that_also_holds_its_location_reads_each_file_once():
    catalog = load_catalog(SHARED_BACKSTAGE)
    assert not any("already defined" in p.message for p in catalog.problems)


def test_component_fields_become_service_facts():
    catalog = load_catalog(SHARED_BACKSTAGE / "components" / "artist-lookup-component.yaml")
    service = catalog.services["artist-lookup"]
    assert service.owner == "team-a"
    assert service.lifecycle == "experimental"
    assert service.system == "artist-engagement-portal"
    facts = service.facts()
    assert facts["tags"] == ["java", "data"]
    assert facts["annotations"]["backstage.io/techdocs-ref"].startswith("url:")
    assert len(facts["links"]) == 7 and "tier" not in facts


def test_owner_references_are_shortened_the_backstage_way():
    assert short_ref("group:default/team-a", "group") == "team-a"
    assert short_ref("team-a", "group") == "team-a"
    assert short_ref("user:guest", "group") == "user:guest"
    assert short_ref("group:ops/sre", "group") == "ops/sre"


def test_mapping_annotations_link_a_service_to_its_sources(root: Path):
    catalog = load_catalog(root / "catalog")
    assert catalog.problems == []
    payments = catalog.services["payments-api"]
    aws = AwsCollector({"regions": ["eu-west-1"]})
    assert GitHubCollector({}).repository_of(payments) == "acme/payments-api"
    assert PrometheusCollector({}).label_value_of(payments) == "payments"
    assert aws.tag_value_of(payments) == "payments-api"
    assert aws.tag_value_of(catalog.services["identity"]) == "identity-svc"
    assert payments.tier == "1"


def test_missing_required_component_fields_and_duplicates(tmp_path: Path):
    (tmp_path / "a.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: a\n"
        "spec:\n  type: service\n  owner: x\n"
        "---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: b\n"
        "spec: {type: service, lifecycle: production, owner: x}\n"
        "---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: b\n"
        "spec: {type: service, lifecycle: production, owner: y}\n"
    )
    catalog = load_catalog(tmp_path)
    messages = [str(p) for p in catalog.problems]
    assert any(m.endswith("a.yaml:6: spec.lifecycle: required") for m in messages), messages
    assert any("a.yaml:15: Component \"b\" is already defined at" in m for m in messages), messages
    assert catalog.services["b"].owner == "x"


# --- every catalog file is bounded ------------------------------------------------------------

COMPONENT = ("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n"
             "spec: {{type: service, lifecycle: production, owner: team-a}}\n")


def test_a_catalog_file_past_a_limit_is_refused_and_the_others_load(tmp_path: Path):
    (tmp_path / "good.yaml").write_text(COMPONENT.format(name="good"))
    (tmp_path / "deep.yaml").write_text("spec: " + "[" * 1000 + "]" * 1000 + "\n")
    (tmp_path / "bomb.yaml").write_text(alias_bomb())
    (tmp_path / "gone.yaml").symlink_to(tmp_path / "missing.yaml")
    catalog = load_catalog(tmp_path)
    assert sorted(catalog.services) == ["good"]
    assert [str(p) for p in catalog.problems] == [
        f"{tmp_path}/bomb.yaml:5: aliases expand to more than 10,000 nodes",
        f"{tmp_path}/deep.yaml:1: nesting deeper than 64 levels",
        f"{tmp_path}/gone.yaml: dangling symbolic link (-> {tmp_path}/missing.yaml, which does "
        "not exist); not read",
    ]
