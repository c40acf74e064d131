"""Discovery against a hostile GitHub: what it answers is data, never a path, a document of its
own, a claim on another repository's service, or a reason to empty the catalog."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from collectors.github.collector import GitHubCollector
from engine.catalog import load_catalog
from tests.adoption.conftest import Invoke
from tests.adoption.standin import BACKSTAGE, SetupStandIn
from tests.conftest import ROOT
from tests.realparts.github import FakeRepository


def entity(name: str, slug: str, owner: str = "team") -> str:
    return ("apiVersion: backstage.io/v1alpha1\nkind: Component\n"
            f"metadata:\n  name: {name}\n  annotations:\n    github.com/project-slug: {slug}\n"
            f"spec: {{type: service, lifecycle: production, owner: {owner}}}\n")


def catalogued(full_name: str, text: str, **extra: object) -> FakeRepository:
    return FakeRepository(full_name, files=["README.md", "catalog-info.yaml"], catalog_info=text,
                          **extra)  # type: ignore[arg-type]


def plain(full_name: str, **extra: object) -> FakeRepository:
    return FakeRepository(full_name, files=["README.md"], **extra)  # type: ignore[arg-type]


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[ExitStack]:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_classic_full")
    with ExitStack() as stack:
        yield stack


def start(serve: ExitStack, repositories: list[FakeRepository]) -> SetupStandIn:
    stand_in = SetupStandIn(repositories)
    serve.enter_context(stand_in.server.running())
    return stand_in


def project(tmp_path: Path, github: SetupStandIn, body: str = "") -> Path:
    """A project directory: settings for the stand-in, the catalog discovered into catalog/."""
    config = tmp_path / "levelset.yaml"
    config.write_text(f"database_url: sqlite:///{tmp_path / 'levelset.db'}\ncatalog: catalog/\n"
                      f"scorecards: scorecards/\ncollectors:\n  github:\n    base_url: "
                      f"{github.base_url}\n    org: acme\n    token_env: GITHUB_TOKEN\n{body}")
    (tmp_path / "scorecards").mkdir()
    shutil.copy(ROOT / "scorecards" / "ownership.yaml", tmp_path / "scorecards")
    return config


def discover(cli: Invoke, config: Path, *extra: str):
    return cli("discover", "--config", str(config), "--output",
               str(config.parent / "catalog"), "--generate", *extra)


def snapshot(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text(errors="replace")
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_repository_names_are_data_never_paths(tmp_path: Path, cli: Invoke,
                                                serve: ExitStack):
    """``..``, a name with two ``/`` or none, a newline that would end the header comment and
    add a Component, a backslash: each refused with its reason; nothing is written outside
    the output folder, the settings file beside it least of all."""
    settings_yaml = "database_url: sqlite:////tmp/x.db\ncollectors:\n  github:\n" \
        "    base_url: http://evil.example/api/v3\n"
    injected = "acme/x\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\n" \
        "metadata: {name: injected}\nspec: {type: service, lifecycle: x, owner: evil}"
    github = start(serve, [
        catalogued("../levelset", settings_yaml, org="acme"),
        plain("acme/../pwned", org="acme"),
        plain("acme/a/b", org="acme"),
        plain("acme-no-slash", org="acme"),
        plain(injected, org="acme"),
        plain("acme/back\\slash", org="acme"),
        plain("other/elsewhere", org="acme"),
        catalogued("acme/good", BACKSTAGE.format(name="good", owner="t", description="ok")),
    ])
    config = project(tmp_path, github)
    before = snapshot(tmp_path)

    result = discover(cli, config)

    assert result.exit_code == 0, result.output
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith("catalog/")} == before
    assert sorted(k for k in after if k.startswith("catalog/")) == [
        "catalog/.levelset-discovered.json", "catalog/acme/good.yaml"]
    errors = result.stderr
    assert "error: github: repository '../levelset' owner '..' is not a name: not written" \
        in errors
    assert "repository 'acme/../pwned' is not <owner>/<name> (2 '/')" in errors
    assert "repository 'acme/a/b' is not <owner>/<name> (2 '/')" in errors
    assert "repository 'acme-no-slash' is not <owner>/<name> (0 '/')" in errors
    assert "repository 'acme/x\\n---\\napiVersion" in errors and "has a control character" \
        in errors
    assert "repository 'acme/back\\\\slash' has a backslash" in errors
    assert "repository 'other/elsewhere' is not in organisation acme" in errors
    catalog = load_catalog(tmp_path / "catalog")
    assert sorted(catalog.services) == ["good"] and catalog.problems == []


def test_a_file_discovery_did_not_write_is_never_replaced(tmp_path: Path, cli: Invoke,
                                                          serve: ExitStack):
    github = start(serve, [plain("acme/checkout"), plain("acme/billing")])
    config = project(tmp_path, github)
    mine = tmp_path / "catalog" / "acme" / "checkout.yaml"
    mine.parent.mkdir(parents=True)
    mine.write_text(entity("checkout", "acme/checkout", owner="payments"))

    result = discover(cli, config)

    assert mine.read_text() == entity("checkout", "acme/checkout", owner="payments")
    assert (f"error: {mine}: exists and was not written by discovery: left as it is "
            "(acme/checkout not written)") in result.stderr
    assert (tmp_path / "catalog/acme/billing.yaml").is_file()
    again = discover(cli, config)  # still not discovery's, and never removed
    assert again.exit_code == 0 and mine.is_file()


def test_a_squatter_never_takes_another_repositorys_service(tmp_path: Path, cli: Invoke,
                                                            serve: ExitStack):
    """``acme/aaa-evil`` sorts first and names ``payments-api``: the service stays the one of
    ``acme/payments-api``, and what is graded is that repository."""
    github = start(serve, [
        catalogued("acme/aaa-evil", entity("payments-api", "acme/aaa-evil", owner="evil")),
        catalogued("acme/payments-api", entity("payments-api", "acme/payments-api",
                                               owner="payments")),
    ])
    config = project(tmp_path, github)

    result = discover(cli, config)

    assert result.exit_code == 0, result.output
    assert ("error: acme/aaa-evil/catalog-info.yaml:1: Component \"payments-api\" claimed by "
            "acme/aaa-evil: it belongs to acme/payments-api, the repository of that name, "
            "which defines it; refused") in result.stderr
    assert not (tmp_path / "catalog/acme/aaa-evil.yaml").exists()  # nothing else in it
    catalog = load_catalog(tmp_path / "catalog")
    assert catalog.problems == []
    service = catalog.services["payments-api"]
    assert service.owner == "payments" and service.source.startswith(
        str(tmp_path / "catalog/acme/payments-api.yaml"))
    collected = GitHubCollector({"base_url": github.base_url, "org": "acme",
                                 "token_env": "GITHUB_TOKEN"}).collect([service])
    assert collected.facts["payments-api"]["repository"] == "acme/payments-api"
    assert "acme/aaa-evil" not in github.graphql_repositories


def test_a_squatter_loses_to_a_generated_entity_and_alone(tmp_path: Path, cli: Invoke,
                                                          serve: ExitStack):
    github = start(serve, [
        catalogued("acme/aaa-evil", entity("payments-api", "acme/aaa-evil", owner="evil")),
        plain("acme/payments-api", contents={".github/CODEOWNERS": "* @acme/payments\n"}),
    ])
    github.repositories["acme/payments-api"].files.append(".github/CODEOWNERS")
    config = project(tmp_path, github)
    assert discover(cli, config).exit_code == 0
    assert load_catalog(tmp_path / "catalog").services["payments-api"].owner == "payments"

    plain_run = cli("discover", "--config", str(config), "--output", str(tmp_path / "plain"))
    assert "belongs to acme/payments-api, the repository of that name, and this claim " \
        "describes acme/aaa-evil; refused" in plain_run.stderr
    assert load_catalog(tmp_path / "plain").services == {}


def test_a_conflict_with_no_rightful_owner_refuses_both(tmp_path: Path, cli: Invoke,
                                                        serve: ExitStack):
    github = start(serve, [
        catalogued("acme/one", entity("shared", "acme/elsewhere")),
        catalogued("acme/two", entity("shared", "acme/elsewhere")
                   + "---\n" + entity("two-own", "acme/two")),
        catalogued("acme/mono", entity("claimed", "acme/mono")),
        catalogued("acme/other", entity("claimed", "acme/somewhere")),
    ])
    config = project(tmp_path, github)

    result = discover(cli, config)

    for repository in ("one", "two"):
        assert (f'acme/{repository}/catalog-info.yaml:1: Component "shared" claimed by '
                f"acme/{repository}: also claimed by acme/one, acme/two, and no repository of "
                "that name or single claim for its own repository decides whose it is; "
                "refused") in result.stderr
    assert ('acme/other/catalog-info.yaml:1: Component "claimed" claimed by acme/other: '
            "acme/mono claims it for itself") in result.stderr
    catalog = load_catalog(tmp_path / "catalog")
    assert sorted(catalog.services) == ["claimed", "two-own"] and catalog.problems == []
    assert catalog.services["claimed"].annotations["github.com/project-slug"] == "acme/mono"


def test_generated_names_are_names_backstage_accepts(tmp_path: Path, cli: Invoke,
                                                     serve: ExitStack):
    names = ["my--service", "data__pipeline", "x.-y", "foo-", "foo_", "Upper.Case", ".github",
             "a" * 100]
    github = start(serve, [plain(f"acme/{name}") for name in names])
    config = project(tmp_path, github)

    result = discover(cli, config)

    assert result.exit_code == 0, result.output
    assert "0 catalog file(s) from GitHub, 8 service(s), 8 generated" in result.stdout
    assert ('warning: acme/foo_: the name "foo" is also wanted by acme/foo-, which has it; '
            'acme/foo_ is named "foo-2"') in result.stderr
    catalog = load_catalog(tmp_path / "catalog")
    assert catalog.problems == []
    assert sorted(catalog.services) == sorted(["my-service", "data_pipeline", "x-y", "foo",
                                               "foo-2", "upper.case", "github", "a" * 63])
    slugs = {s.name: s.annotations["github.com/project-slug"] for s in catalog}
    assert slugs["foo"] == "acme/foo-" and slugs["foo-2"] == "acme/foo_"
    validated = cli("validate", "--config", str(config))
    assert "error:" not in validated.stderr, validated.stderr
    assert validated.exit_code == 0, validated.output


def test_an_empty_organisation_changes_nothing(tmp_path: Path, cli: Invoke,
                                               serve: ExitStack):
    github = start(serve, [plain(f"acme/svc-{i}") for i in range(10)])
    config = project(tmp_path, github)
    assert discover(cli, config).exit_code == 0
    before = snapshot(tmp_path / "catalog")
    github.repositories.clear()  # a token that lost its access sees none

    result = discover(cli, config)

    assert result.exit_code == 3
    assert ("error: discovery: GitHub listed no repositories (a token that lost its access "
            "answers so); nothing was changed; --allow-removals accepts it") in result.stderr
    assert snapshot(tmp_path / "catalog") == before
    allowed = discover(cli, config, "--allow-removals")
    assert allowed.exit_code == 0, allowed.output
    assert sorted(snapshot(tmp_path / "catalog")) == [".levelset-discovered.json"]


def test_removing_more_than_the_share_changes_nothing(tmp_path: Path, cli: Invoke,
                                                      serve: ExitStack):
    github = start(serve, [plain(f"acme/svc-{i}") for i in range(10)])
    config = project(tmp_path, github)
    assert discover(cli, config).exit_code == 0
    for i in range(3):
        del github.repositories[f"acme/svc-{i}"]
    before = snapshot(tmp_path / "catalog")

    refused = discover(cli, config)

    assert refused.exit_code == 3
    assert ("this discovery would remove 3 of the 10 files discovery wrote (30%, more than "
            "discovery.max_removed_share 20%); nothing was changed") in refused.stderr
    assert snapshot(tmp_path / "catalog") == before
    github.repositories["acme/svc-0"] = plain("acme/svc-0")  # 2 of 10: within the share
    result = discover(cli, config)
    assert result.exit_code == 0, result.output
    assert "2 file(s) of repositories gone removed" in result.stdout
    assert not (tmp_path / "catalog/acme/svc-1.yaml").exists()


def test_the_share_is_a_setting(tmp_path: Path, cli: Invoke, serve: ExitStack):
    github = start(serve, [plain(f"acme/svc-{i}") for i in range(4)])
    config = project(tmp_path, github, "discovery:\n  max_removed_share: 0.5\n")
    assert discover(cli, config).exit_code == 0
    del github.repositories["acme/svc-0"], github.repositories["acme/svc-1"]
    assert discover(cli, config).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "catalog/acme").iterdir()) == [
        "svc-2.yaml", "svc-3.yaml"]
    (tmp_path / "bad").mkdir()
    bad = project(tmp_path / "bad", github, "discovery:\n  max_removed_share: 2\n")
    result = discover(cli, bad)
    assert result.exit_code == 2 and "discovery.max_removed_share" in result.stderr


def test_a_looping_cursor_stops_discovery_with_an_error(tmp_path: Path, cli: Invoke,
                                                        serve: ExitStack):
    github = start(serve, [plain(f"acme/svc-{i:03d}") for i in range(150)])
    github.loop_connection("repositories")
    config = project(tmp_path, github)

    result = discover(cli, config)

    assert result.exit_code == 3
    assert ("error: github: GitHub discovery: the repositories of acme: page 2 points back at "
            "a page already read ('1'); stopped, nothing written") in result.stderr
    assert github.graphql_requests() == 2
    assert not (tmp_path / "catalog").exists()


def test_pages_past_the_count_and_the_page_limit_stop_discovery(tmp_path: Path, cli: Invoke,
                                                                serve: ExitStack):
    github = start(serve, [plain(f"acme/svc-{i}") for i in range(3)])
    github.loop_connection("repositories", new_cursors=True)  # a new cursor every time
    config = project(tmp_path, github)
    result = discover(cli, config)
    assert result.exit_code == 3
    assert "page 1 says more follow, past the 3 item(s) the listing counts" in result.stderr
    assert github.graphql_requests() == 1

    many = start(serve, [plain(f"acme/svc-{i:03d}") for i in range(250)])
    (tmp_path / "limited").mkdir()
    limited = project(tmp_path / "limited", many, "    max_pages: 2\n")
    result = discover(cli, limited)
    assert result.exit_code == 3
    assert "more than 2 pages (collectors.github.max_pages)" in result.stderr
    assert many.graphql_requests() == 2


def test_init_on_an_empty_organisation_says_why_it_stops(tmp_path: Path, cli: Invoke,
                                                         serve: ExitStack):
    github = start(serve, [])

    result = cli("init", "--dir", str(tmp_path / "p"), "--github-org", "acme", "--github-url",
                 github.base_url, "--yes")

    assert result.exit_code == 3
    assert "error: discovery: GitHub listed no repositories" in result.stderr
    assert not (tmp_path / "p" / "levelset.yaml").exists()
