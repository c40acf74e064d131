"""The catalog reader against real Backstage example files."""

from __future__ import annotations

import os
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


# --- Location targets stay in the Location file's folder; every file is bounded ---------------

COMPONENT = ("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n"
             "spec: {{type: service, lifecycle: production, owner: team-a}}\n")


def location(*targets: str) -> str:
    lines = "".join(f"    - {target!r}\n" for target in targets)
    return ("apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: all\n"
            f"spec:\n  targets:\n{lines}")


def test_location_targets_outside_its_folder_are_refused_with_their_line(tmp_path: Path):
    outside = tmp_path / "outside.yaml"
    outside.write_text(COMPONENT.format(name="outside"))
    folder = tmp_path / "catalog"
    (folder / "teams").mkdir(parents=True)
    (folder / "teams" / "a.yaml").write_text(COMPONENT.format(name="a"))
    (folder / "escape.yaml").symlink_to(outside)
    (folder / "zero.yaml").symlink_to("/dev/zero")
    (folder / "all.yaml").write_text(location(
        "/dev/zero", str(outside), "../outside.yaml", "teams/../../outside.yaml",
        "./escape.yaml", "./zero.yaml", "./teams", "http://example.com/x.yaml", "./teams/a.yaml",
    ))
    catalog = load_catalog(folder / "all.yaml")
    assert sorted(catalog.services) == ["a"]
    base = folder.resolve()
    assert [str(p) for p in catalog.problems] == [f"{folder}/all.yaml:{line}: {message}" for line, message in [
        (7, 'spec.targets: "/dev/zero" is an absolute path; targets are relative to the Location '
            "file and stay in its folder"),
        (8, f'spec.targets: "{outside}" is an absolute path; targets are relative to the Location '
            "file and stay in its folder"),
        (9, f'spec.targets: "../outside.yaml" leaves the folder of the Location file ({base})'),
        (10, f'spec.targets: "teams/../../outside.yaml" leaves the folder of the Location file '
             f"({base})"),
        (11, f'spec.targets: "./escape.yaml" resolves to {outside.resolve()}, outside the folder '
             f"of the Location file ({base})"),
        (12, f'spec.targets: "./zero.yaml" resolves to /dev/zero, outside the folder of the '
             f"Location file ({base})"),
        (13, 'spec.targets: "./teams" is a folder; name its files, or a glob such as '
             "folder/*.yaml"),
        (14, 'spec.targets: "http://example.com/x.yaml" is a URL; only file targets are read '
             "(clone the repository and point at it)"),
    ]]


def test_location_globs_stay_in_the_folder_and_refuse_what_is_not_a_regular_file(tmp_path: Path):
    (tmp_path / "teams").mkdir()
    (tmp_path / "teams" / "a.yaml").write_text(COMPONENT.format(name="a"))
    os.mkfifo(tmp_path / "teams" / "pipe.yaml")
    (tmp_path / "teams" / "out.yaml").symlink_to("/etc/hostname")
    (tmp_path / "all.yaml").write_text(location("./teams/*.yaml", "../*.yaml"))
    catalog = load_catalog(tmp_path / "all.yaml")
    assert sorted(catalog.services) == ["a"]
    messages = [p.message for p in catalog.problems]
    assert messages == [
        f'spec.targets: "./teams/*.yaml" matches {tmp_path}/teams/out.yaml, which resolves to '
        f"/etc/hostname, outside the folder of the Location file ({tmp_path.resolve()})",
        f'spec.targets: "./teams/*.yaml" matches {tmp_path}/teams/pipe.yaml, which is a FIFO, not '
        "a regular file: only regular files are read",
        f'spec.targets: "../*.yaml" leaves the folder of the Location file ({tmp_path.resolve()})',
    ]


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
