"""Discovery's decisions without a network: the names it gives, the one-owner rule, what it
writes and which files it owns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from collectors.github.discovery import Discovery, Uncatalogued
from core.errors import InputError
from engine.catalog import _NAME, RepositoryFile, load_repository_files
from engine.discovery import (
    DISCOVERED,
    MANIFEST,
    RemovalRefused,
    check_removals,
    owned_files,
    plan_discovery,
    repository_name,
)
from engine.generation import assign_names, entity_name

GITHUB_NAMES = st.text(alphabet="abcXYZ019._-", min_size=1, max_size=100).filter(
    lambda name: name not in (".", ".."))


def component(name: str, slug: str | None = None, extra: str = "") -> str:
    annotations = f"  annotations: {{github.com/project-slug: {slug}}}\n" if slug else ""
    return ("apiVersion: backstage.io/v1alpha1\nkind: Component\n"
            f"metadata:\n  name: {name}\n{annotations}{extra}"
            "spec: {type: service, lifecycle: production, owner: team}\n")


@pytest.mark.parametrize(("repository", "name"), [
    ("my--service", "my-service"), ("data__pipeline", "data_pipeline"), ("x.-y", "x-y"),
    ("foo-", "foo"), ("foo_", "foo"), ("Upper.Case", "upper.case"), (".github", "github"),
    ("___", "repository"), ("a" * 62 + "-b", "a" * 62), ("a" * 70, "a" * 63)])
def test_repository_names_become_backstage_names(repository: str, name: str):
    assert entity_name(repository) == name


@given(GITHUB_NAMES)
def test_every_github_name_becomes_a_name_backstage_accepts(repository: str):
    name = entity_name(repository)
    assert _NAME.match(name) and len(name) <= 63


@given(st.lists(GITHUB_NAMES, min_size=1, max_size=12, unique_by=str.lower), st.randoms())
def test_names_are_distinct_valid_and_do_not_depend_on_order(names: list[str], random):
    repositories = {f"acme/{name}": name for name in names}
    named = assign_names(repositories)
    shuffled = list(repositories.items())
    random.shuffle(shuffled)
    assert assign_names(dict(shuffled)) == named
    given_names = [n.name for n in named.values()]
    assert len(set(given_names)) == len(given_names)
    assert all(_NAME.match(n) and len(n) <= 63 for n in given_names)


def test_a_collision_keeps_the_exact_name_and_suffixes_the_others():
    named = assign_names({"acme/foo_": "foo_", "acme/Foo": "Foo", "acme/foo-": "foo-",
                          "acme/foo-2": "foo-2"})
    assert {full: n.name for full, n in named.items()} == {
        "acme/Foo": "foo", "acme/foo-": "foo-3", "acme/foo_": "foo-4", "acme/foo-2": "foo-2"}
    assert named["acme/foo-"].note == ('acme/foo-: the name "foo" is also wanted by acme/Foo, '
                                       'which has it; acme/foo- is named "foo-3"')


@pytest.mark.parametrize(("full_name", "reason"), [
    ("acme/ok.name-1_x", None), ("Acme/x", None), ("acme/..", "name '..' is not a name"),
    ("acme/", "name '' is not a name"), ("/x", "owner '' is not a name"),
    ("acme/a\tb", "has a control character"), ("acme/a\x7fb", "has a control character"),
    ("acme/x y", "name 'x y' has characters GitHub does not allow"),
    ("-acme/x", "owner '-acme' is not a GitHub login"), ("acme", "is not <owner>/<name> (0 '/')")])
def test_repository_names_from_github_are_validated(full_name: str, reason: str | None):
    if reason is None:
        assert repository_name(full_name, "acme") == tuple(full_name.split("/"))
    else:
        with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)")):
            repository_name(full_name, "acme")


def load(files: list[tuple[str, str]], belongs: dict[str, str] | None = None):
    return load_repository_files(
        [RepositoryFile(repository, f"{repository}/catalog-info.yaml", text)
         for repository, text in files],
        belongs=belongs if belongs is not None else {r.split("/")[1]: r for r, _ in files},
        slug_annotation="github.com/project-slug", org="acme")


def test_a_central_repository_may_describe_a_repository_that_describes_nothing():
    resolved = load([("acme/catalog", component("payments-api", "acme/payments-api"))],
                    {"payments-api": "acme/payments-api", "catalog": "acme/catalog"})
    assert list(resolved.catalog.services) == ["payments-api"] and not resolved.catalog.problems


def test_one_repository_defining_a_name_twice_keeps_the_first():
    resolved = load([("acme/a", component("a") + "---\n" + component("a", "acme/x"))])
    assert [str(p) for p in resolved.catalog.problems] == [
        'acme/a/catalog-info.yaml:7: Component "a" is already defined at '
        "acme/a/catalog-info.yaml:1"]
    assert len(resolved.documents["acme/a/catalog-info.yaml"]) == 1


def test_other_kinds_go_to_the_repository_their_slug_names():
    """A Group is no service: a repository of its name does not own it by name alone, but
    by its slug (``<org>/<name>`` without the annotation), as for a Component."""
    def group(name: str) -> str:
        return (f"apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {{name: {name}}}\n"
                "spec: {type: team, children: []}\n")

    resolved = load([("acme/teams", group("platform")), ("acme/other", group("platform"))])
    assert [p.file for p in resolved.catalog.problems] == ["acme/other/catalog-info.yaml",
                                                           "acme/teams/catalog-info.yaml"]
    assert all(not documents for documents in resolved.documents.values())
    alone = load([("acme/teams", group("payments"))], {"payments": "acme/payments"})
    assert alone.documents["acme/teams/catalog-info.yaml"] and not alone.catalog.problems
    won = load([("acme/teams", group("payments")), ("acme/payments", group("payments"))])
    assert won.documents["acme/payments/catalog-info.yaml"]
    assert not won.documents["acme/teams/catalog-info.yaml"]


def discovery(*catalogs: tuple[str, str], plain: tuple[str, ...] = ()) -> Discovery:
    return Discovery([(f"{r}/catalog-info.yaml", text) for r, text in catalogs],
                     [Uncatalogued(r, r.split("/", 1)[1], description="Two lines\n---\nkind: x")
                      for r in plain])


def test_what_is_written_is_emitted_yaml_of_accepted_entities(tmp_path: Path):
    location = "---\napiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: l}\n" \
        "spec: {targets: [./*.yaml]}\n"
    found = discovery(("acme/a", "# a comment\n" + component("a", "acme/a") + location),
                      plain=("acme/b",))

    plan = plan_discovery(found, tmp_path, org="acme", generate=True)

    assert [str(p) for p in plan.result.problems] == [
        "acme/a/catalog-info.yaml:9: Location targets are not followed in discovered files: "
        "list each repository's entities instead"]
    text = plan.writes["acme/a.yaml"]
    assert text.startswith(f"{DISCOVERED}acme/a/catalog-info.yaml\napiVersion:")
    assert list(yaml.safe_load_all(text)) == [yaml.safe_load(component("a", "acme/a"))]
    generated = list(yaml.safe_load_all(plan.writes["acme/b.yaml"]))
    assert len(generated) == 1 and generated[0]["metadata"]["description"] == \
        "Two lines\n---\nkind: x"


def test_the_manifest_names_only_files_inside_the_output(tmp_path: Path):
    (tmp_path / MANIFEST).write_text(json.dumps({"files": ["acme/a.yaml", "../levelset.yaml"]}))
    with pytest.raises(InputError, match=r"files: must be a list of <owner>/<name>\.yaml paths"):
        owned_files(tmp_path)
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(InputError, match="unreadable"):
        owned_files(tmp_path)


def test_an_output_without_manifest_owns_the_files_with_discoverys_header(tmp_path: Path):
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme/old.yaml").write_text(f"{DISCOVERED}acme/old/catalog-info.yaml\n")
    (tmp_path / "acme/mine.yaml").write_text("kind: Component\n")
    assert owned_files(tmp_path) == (["acme/old.yaml"], ["acme/mine.yaml", "acme/old.yaml"])


def test_removal_guard_counts_against_what_discovery_owned(tmp_path: Path):
    owned = [f"acme/s{i}.yaml" for i in range(5)]
    plan = plan_discovery(discovery(plain=("acme/s0", "acme/s1", "acme/s2", "acme/s3")),
                          tmp_path, org="acme", generate=True, owned_before=owned,
                          existing=owned)
    assert plan.removals == ["acme/s4.yaml"]
    check_removals(plan, max_removed_share=0.2)  # 1 of 5: not more than 20%
    with pytest.raises(RemovalRefused, match=r"remove 1 of the 5 files discovery wrote \(20%"):
        check_removals(plan, max_removed_share=0.1)
