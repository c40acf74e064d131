"""The GitHub collector through PyGithub against a local server that answers like GitHub."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from collectors.github.cache import JsonFileETagCache
from collectors.github.client import graphql_url
from collectors.github.collector import GitHubCollector
from collectors.github.discovery import discover_catalog, discover_repositories
from engine.catalog import load_catalog_texts
from engine.jobs.collection import configured_collectors
from engine.settings import Settings
from engine.storage.database import engine_for, session_scope
from engine.storage.http_cache import DatabaseETagCache
from tests.collectors.conftest import GITHUB_ANNOTATION, service
from tests.realparts.github import GRAPHQL, FakeRepository, GitHubStandIn, days_ago
from tests.realparts.httpserver import Reply

TOKEN = "ghp_not-a-real-token-0123456789"
# one GraphQL query for the three repositories, then one page of each organisation alert list
FIRST_RUN_REQUESTS = 3


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEVELSET_TEST_GITHUB_TOKEN", TOKEN)


def collector(github: GitHubStandIn, **settings: object) -> GitHubCollector:
    return GitHubCollector({"base_url": github.base_url, "org": "acme",
                            "token_env": "LEVELSET_TEST_GITHUB_TOKEN", **settings})


def alert_requests(github: GitHubStandIn, status: int | None = None) -> int:
    return github.requests(status, "/orgs/acme/")


def test_first_run_reads_every_fact(github, github_services):
    result = collector(github).collect(github_services)

    assert result.failures == {}
    checkout = result.facts["checkout"]
    assert checkout["repository"] == "acme/checkout"
    assert checkout["visibility"] == "internal" and checkout["archived"] is False
    assert checkout["topics"] == ["payments", "tier-1"]
    assert checkout["languages"] == ["Python", "Dockerfile", "Shell"]
    assert checkout["primary_language"] == "Python"
    assert checkout["files"] == ["README.md", "CODEOWNERS", "SECURITY.md", "LICENSE",
                                 ".github/dependabot.yml", "Dockerfile", "catalog-info.yaml"]
    assert checkout["workflows"] == [".github/workflows/ci.yml", ".github/workflows/release.yaml"]
    assert checkout["has_codeowners"] is True and checkout["has_ci_workflow"] is True
    assert checkout["branch_protection"] == {
        "enabled": True, "required_reviews": 2, "require_code_owner_reviews": True,
        "dismiss_stale_reviews": True, "required_status_checks": ["ci/build"],
        "strict_status_checks": True, "enforce_admins": True, "allow_force_pushes": False,
        "allow_deletions": False}
    assert checkout["pull_requests"]["open"] == 3
    assert checkout["pull_requests"]["oldest_open_days"] == pytest.approx(10, abs=0.01)
    assert checkout["alerts"]["dependabot"] == {"critical": 1, "high": 2, "medium": 0,
                                                "low": 0, "total": 3}
    assert checkout["alerts"]["code_scanning"]["medium"] == 1
    assert checkout["latest_release"]["tag"] == "v1.4.0"
    assert checkout["last_commit_at"].endswith("Z")
    assert result.facts["legacy"]["archived"] is True


def test_unprotected_branch_is_known_unprotected_and_missing_release_is_absent(
        github, github_services):
    result = collector(github).collect(github_services)

    payments = result.facts["payments"]
    assert payments["default_branch"] == "trunk"
    assert payments["branch_protection"]["enabled"] is False
    assert payments["branch_protection"]["required_reviews"] == 0
    assert payments["has_codeowners"] is False  # the tree was read: known absent
    assert payments["pull_requests"] == {"open": 0}  # no oldest age when none is open
    assert "latest_release" not in payments


def test_alerts_come_from_one_sweep_of_the_organisation(github, github_services):
    result = collector(github).collect(github_services)

    assert alert_requests(github) == 2  # dependabot and code scanning, one page each
    assert github.requests(path_prefix="/repos/") == 0
    # payments: Dependabot alerts are not enabled (GraphQL says so): unknown, with a note
    assert result.facts["payments"]["alerts"]["dependabot"] is None
    assert "payments: dependabot alerts: not enabled for the repository; left unknown" \
        in result.errors
    assert result.facts["payments"]["alerts"]["code_scanning"]["total"] == 0
    assert result.facts["legacy"]["alerts"]["dependabot"] == {
        "critical": 0, "high": 0, "medium": 0, "low": 0, "total": 0}
    assert "payments" not in result.failures


def test_alerts_are_read_per_repository_when_the_token_cannot_read_the_organisations(
        github, github_services):
    github.org_alerts_readable = False

    result = collector(github).collect(github_services)

    assert result.facts["checkout"]["alerts"]["dependabot"]["total"] == 3
    assert result.facts["checkout"]["alerts"]["code_scanning"]["medium"] == 1
    assert result.facts["payments"]["alerts"] == {"dependabot": None, "code_scanning": None}
    assert "payments: dependabot alerts: HTTP 403; left unknown" in result.errors
    assert "payments: code scanning alerts: HTTP 404; left unknown" in result.errors
    assert any("cannot read the alerts of organisation acme (HTTP 403); read per repository"
               in note for note in result.errors)
    assert github.requests(path_prefix="/repos/") == 6  # two per repository


def test_first_run_costs_a_few_requests_for_all_repositories(github, github_services):
    result = collector(github).collect(github_services)

    assert github.graphql_requests() == 1
    assert result.requests == github.requests() + github.graphql_requests() == FIRST_RUN_REQUESTS
    assert result.cost == github.points_used() == 3  # 1 GraphQL point, 2 REST requests
    assert github.graphql_costs == [1]
    assert github.authorizations() == {f"token {TOKEN}"}


def test_unchanged_second_run_costs_only_its_graphql_query(github, github_services):
    col = collector(github)
    first = col.collect(github_services)
    github.reset_counts()
    used = github.points_used()

    second = col.collect(github_services)

    assert second.facts == first.facts
    assert alert_requests(github) == alert_requests(github, 304) == 2  # free revalidations
    assert second.not_modified == 2
    assert github.points_used() - used == second.cost == 1


def test_a_changed_repository_is_read_in_the_same_query(github, github_services):
    col = collector(github)
    col.collect(github_services)
    github.repositories["acme/checkout"].pull_requests_created.append(days_ago(0.1))
    github.reset_counts()

    result = col.collect(github_services)

    assert result.facts["checkout"]["pull_requests"]["open"] == 4
    assert result.requests == FIRST_RUN_REQUESTS and result.not_modified == 2


def test_file_cache_keeps_etags_between_processes(github, github_services, tmp_path: Path):
    cache_path = tmp_path / "etags.json"
    collector(github, cache_path=str(cache_path)).collect(github_services)
    assert TOKEN not in cache_path.read_text()
    github.reset_counts()

    result = collector(github, cache_path=str(cache_path)).collect(github_services)

    assert alert_requests(github, 304) == 2
    assert result.not_modified == 2


def test_corrupt_cache_file_costs_a_full_run_not_a_failure(github, github_services, tmp_path):
    cache_path = tmp_path / "etags.json"
    cache_path.write_text("{not json")
    cache = JsonFileETagCache(cache_path)

    result = GitHubCollector({"base_url": github.base_url, "org": "acme"},
                             cache=cache).collect(github_services)

    assert result.failures == {} and result.not_modified == 0
    assert json.loads(cache_path.read_text())["version"] == 1


def test_primary_rate_limit_with_far_reset_fails_fast_instead_of_sleeping(github,
                                                                         github_services):
    github.exhaust_rate_limit(reset_in=3600)
    reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(github.reset_at))

    started = time.monotonic()
    result = collector(github, max_wait_seconds=5).collect(github_services)

    assert time.monotonic() - started < 5
    assert result.failures == {s.name: f"rate limited until {reset}" for s in github_services}
    assert result.requests == 1  # the first refusal stops the run: no request is wasted


def test_secondary_rate_limit_waits_for_retry_after_then_continues(github, github_services):
    body = json.dumps({"message": "You have exceeded a secondary rate limit. Please wait a few "
                                  "minutes before you try again.",
                       "documentation_url": "https://docs.github.com/rest"}).encode()
    github.fault(GRAPHQL, Reply(403, body, {"Retry-After": "1",
                                            "Content-Type": "application/json"}))

    started = time.monotonic()
    result = collector(github).collect(github_services)

    assert 1 <= time.monotonic() - started < 10
    assert result.failures == {}
    assert result.facts["payments"]["languages"] == ["Go"]
    assert github.graphql_requests() == 2  # the retry
    assert result.requests == FIRST_RUN_REQUESTS + 1


def test_secondary_rate_limit_longer_than_the_bound_fails_the_rest(github, github_services):
    body = json.dumps({"message": "You have exceeded a secondary rate limit."}).encode()
    github.fault(GRAPHQL, None, Reply(403, body, {"Retry-After": "3600"}))

    started = time.monotonic()
    result = collector(github, max_wait_seconds=2, batch_size=1).collect(github_services)

    assert time.monotonic() - started < 5
    assert "checkout" in result.facts
    assert set(result.failures) == {"payments", "legacy"}
    assert result.failures["payments"].startswith("rate limited until ")


def test_graphql_rate_limit_with_far_reset_fails_the_batches_not_yet_read(github,
                                                                        github_services):
    github.graphql_remaining = 1  # pays for the first batch only
    reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(github.reset_at))

    result = collector(github, max_wait_seconds=5, batch_size=2).collect(github_services)

    assert set(result.facts) == {"checkout", "payments"}
    assert result.failures == {"legacy": f"rate limited until {reset}"}


def test_graphql_rate_limit_resetting_within_the_bound_is_waited_for(github,
                                                                     github_services):
    github.graphql_remaining = 1  # pays for the first batch only
    github.reset_at = int(time.time()) + 2

    started = time.monotonic()
    result = collector(github, max_wait_seconds=10, batch_size=2).collect(github_services)

    assert 1 <= time.monotonic() - started < 8
    assert result.failures == {} and len(result.facts) == 3
    # the first answer said nothing remained: it waited rather than send a refused query
    assert github.graphql_requests() == 2


def test_server_error_fails_that_batch_after_retries_and_not_the_others(
        github, github_services):
    bad = Reply(502, b'{"message": "Bad Gateway"}')
    github.fault(GRAPHQL, None, bad, bad, bad)

    result = collector(github, retries=2, batch_size=1).collect(github_services)

    assert result.failures == {
        "payments": "acme/payments: GraphQL batch: HTTP 502 (server error)"}
    assert set(result.facts) == {"checkout", "legacy"}
    assert github.graphql_requests(502) == 3  # the first try and two retries


def test_a_slow_answer_times_out_that_batch_only(github, github_services):
    github.fault(GRAPHQL, Reply(200, b"{}", delay=3))

    started = time.monotonic()
    result = collector(github, timeout_seconds=1, batch_size=2).collect(github_services)

    assert time.monotonic() - started < 3
    assert result.failures == {
        "checkout": "acme/checkout: GraphQL batch: timeout after 1s",
        "payments": "acme/payments: GraphQL batch: timeout after 1s"}
    assert set(result.facts) == {"legacy"}


def test_missing_repository_fails_only_its_service(github, github_services):
    services = [*github_services, service("ghost")]

    result = collector(github).collect(services)

    assert result.failures == {"ghost": "acme/ghost: repository not found, or not visible to "
                                        "the token (GraphQL NOT_FOUND)"}
    assert len(result.facts) == 3
    assert github.graphql_requests() == 1  # in the same query as the others


def test_a_graphql_error_for_one_repository_fails_that_repository_alone(github,
                                                                       github_services):
    github.fail_repository("acme/payments", "INTERNAL", "Something went wrong.")

    result = collector(github).collect(github_services)

    assert result.failures == {
        "payments": "acme/payments: repository: GraphQL error INTERNAL: Something went wrong."}
    assert set(result.facts) == {"checkout", "legacy"}


def test_partial_data_keeps_what_arrived(github, github_services):
    github.fail_field("acme/checkout", "languages", "INTERNAL", "Timeout on languages.")

    result = collector(github).collect(github_services)

    checkout = result.facts["checkout"]
    assert "languages" not in checkout  # unknown, not empty
    assert checkout["topics"] == ["payments", "tier-1"] and checkout["has_readme"] is True
    assert "checkout: languages: INTERNAL (Timeout on languages.); left unknown" in result.errors
    assert result.facts["payments"]["languages"] == ["Go"]


def test_more_than_a_page_of_languages_is_paged_for_that_repository_only(github,
                                                                        github_services):
    github.repositories["acme/legacy"].languages = {f"Lang{i:03d}": 1000 - i for i in range(150)}

    result = collector(github).collect(github_services)

    assert result.facts["legacy"]["languages"] == [f"Lang{i:03d}" for i in range(150)]
    assert github.graphql_requests() == 2


def test_unreachable_server_fails_every_service(github_services):
    col = GitHubCollector({"base_url": "http://127.0.0.1:9/api/v3", "org": "acme",
                           "retries": 0})

    result = col.collect(github_services)

    assert set(result.failures.values()) == {
        "GitHub at http://127.0.0.1:9/api/v3 is unreachable: cannot connect "
        "(NewConnectionError)"}


def test_token_comes_from_a_file_and_never_shows(github, github_services, tmp_path):
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    col = GitHubCollector({"base_url": github.base_url, "org": "acme", "token_file": str(secret)})

    col.collect(github_services[:1])

    assert github.authorizations() == {f"token {TOKEN}"}
    assert TOKEN not in repr(col) and TOKEN not in repr(col.config)


def test_a_missing_token_variable_fails_every_service_with_the_reason(github_services):
    col = GitHubCollector({"org": "acme", "token_env": "LEVELSET_TEST_UNSET_TOKEN"})

    result = col.collect(github_services)

    assert set(result.failures.values()) == {
        "GitHub token: environment variable LEVELSET_TEST_UNSET_TOKEN is not set"}
    assert result.requests == 0


def test_a_service_without_repository_or_org_fails_with_the_reason(github):
    col = GitHubCollector({"base_url": github.base_url})

    result = col.collect([service("orphan"),
                          service("linked", **{GITHUB_ANNOTATION: "acme/legacy"})])

    assert "orphan" in result.failures and "linked" in result.facts


def test_discovery_reads_catalog_info_of_every_repository_of_the_org(github):
    texts = discover_catalog({"base_url": github.base_url, "org": "acme",
                              "token_env": "LEVELSET_TEST_GITHUB_TOKEN"})
    catalog = load_catalog_texts(discover_catalog({"base_url": github.base_url, "org": "acme"}))

    assert [origin for origin, _ in texts] == ["acme/checkout/catalog-info.yaml",
                                               "acme/payments/catalog-info.yaml"]
    assert sorted(catalog.services) == ["checkout", "payments"]
    assert GitHubCollector({}).repository_of(catalog.services["checkout"]) == "acme/checkout"
    assert catalog.problems == []
    assert github.graphql_requests() == 2 and github.requests() == 0  # one query each


def test_discovery_reads_codeowners_of_repositories_without_catalog_info():
    """GitHub's CODEOWNERS order (.github/, the root, docs/), in the pages that list the
    repositories: 1 point per 100 repositories, nothing read per repository."""
    owners = {".github/CODEOWNERS": "* @acme/first\n", "CODEOWNERS": "* @acme/root\n",
              "docs/CODEOWNERS": "* @acme/docs\n"}
    fleet = [FakeRepository("acme/all", files=list(owners), contents=owners),
             FakeRepository("acme/docs", files=["docs/CODEOWNERS"], contents=owners),
             FakeRepository("acme/root", files=["CODEOWNERS", "docs/CODEOWNERS"],
                            contents=owners),
             FakeRepository("acme/gone", archived=True, files=["CODEOWNERS"], contents=owners),
             FakeRepository("acme/owned", files=["catalog-info.yaml"], catalog_info="x: 1\n")]
    fleet += [FakeRepository(f"acme/svc-{i:03d}", files=["README.md"]) for i in range(140)]
    github = GitHubStandIn(fleet)
    with github.server.running():
        found = discover_repositories({"base_url": github.base_url, "org": "acme"})
        archived = discover_repositories({"base_url": github.base_url, "org": "acme"},
                                         include_archived=True)
    assert github.invalid_queries == [] and github.requests() == 0
    assert github.graphql_costs == [1, 1] * 2  # 145 repositories: two pages of 1 point
    assert found.catalogs == [("acme/owned/catalog-info.yaml", "x: 1\n")]
    uncatalogued = {r.full_name: r for r in found.uncatalogued}
    assert len(uncatalogued) == 143 and "acme/gone" not in uncatalogued
    assert uncatalogued["acme/all"].codeowners == "* @acme/first\n"
    assert uncatalogued["acme/root"].codeowners == "* @acme/root\n"
    assert uncatalogued["acme/docs"].codeowners == "* @acme/docs\n"
    assert uncatalogued["acme/svc-000"].codeowners is None
    assert uncatalogued["acme/svc-000"].name == "svc-000"
    gone = next(r for r in archived.uncatalogued if r.full_name == "acme/gone")
    assert gone.archived is True and gone.codeowners == "* @acme/root\n"


def test_branch_protection_the_token_may_not_read_is_unknown(github, github_services):
    github.fail_field("acme/checkout", "branchProtectionRule")

    result = collector(github).collect(github_services)

    assert result.facts["checkout"]["branch_protection"] is None  # unknown, not disabled
    assert "checkout: branch protection: FORBIDDEN (Resource not accessible by integration); " \
           "left unknown" in result.errors
    assert result.facts["checkout"]["last_commit_at"].endswith("Z")
    assert "checkout" not in result.failures


def test_a_rejected_token_stops_the_run(github, github_services):
    github.fault(GRAPHQL, Reply(401, b'{"message": "Bad credentials"}'))

    result = collector(github).collect(github_services)

    assert set(result.failures.values()) == {"GitHub rejected the token (HTTP 401)"}
    assert result.requests == 1


def test_services_sharing_a_repository_read_it_once(github):
    services = [service("web", **{GITHUB_ANNOTATION: "acme/checkout"}),
                service("worker", **{GITHUB_ANNOTATION: "acme/checkout"})]

    result = collector(github).collect(services)

    assert result.facts["web"] == result.facts["worker"]
    assert result.requests == FIRST_RUN_REQUESTS


def test_graphql_endpoint_derives_from_the_rest_root():
    assert graphql_url("https://github.example.com/api/v3") == \
        "https://github.example.com/api/graphql"
    assert graphql_url("https://github.example.com/api/v3/") == \
        "https://github.example.com/api/graphql"
    assert graphql_url("https://api.github.com") == "https://api.github.com/graphql"


@pytest.mark.parametrize(("count", "first_cost", "unchanged_cost"), [(200, 10, 8),
                                                                   (1000, 45, 40)])
def test_a_run_costs_at_most_one_point_per_20_repositories(count, first_cost, unchanged_cost):
    """First run and unchanged run, counted as GitHub counts them: GraphQL points plus REST
    requests not answered 304."""
    fleet = [FakeRepository(f"acme/svc-{i:04d}", files=["README.md"], languages={"Go": 10},
                            topics=["t"], last_commit_at=days_ago(i % 30),
                            pull_requests_created=[days_ago(1)] * (i % 3),
                            dependabot_alerts=["high"] if i % 4 == 0 else [],
                            code_scanning_alerts=["low"] if i % 5 == 0 else [])
             for i in range(count)]
    github = GitHubStandIn(fleet)
    services = [service(f"svc-{i:04d}") for i in range(count)]
    with github.server.running():
        col = collector(github)
        costs = []
        for _ in range(2):
            used = github.points_used()
            result = col.collect(services)
            assert len(result.facts) == count and result.failures == {}
            assert result.cost == github.points_used() - used
            costs.append(result.cost)
    assert github.invalid_queries == []
    assert github.graphql_costs == [2] * (2 * count // 50)  # 50 repositories, 2 points
    assert costs == [first_cost, unchanged_cost]  # the figures in docs/collectors.md
    assert first_cost <= count / 20 and unchanged_cost <= count / 20
    assert unchanged_cost == 2 * count // 50  # the alert sweep answers 304


def test_the_database_keeps_etags_for_every_process_and_run(github, github_services,
                                                            database_url):
    """A cron-driven collect starts a new process each time: the cache in the database makes
    its alert sweep conditional anyway, so an unchanged run costs only its GraphQL query."""
    engine = engine_for(database_url)
    settings = {"base_url": github.base_url, "org": "acme",
                "token_env": "LEVELSET_TEST_GITHUB_TOKEN"}
    first = GitHubCollector(settings, cache=DatabaseETagCache(engine, "github"))
    first.collect(github_services)
    github.reset_counts()

    second = GitHubCollector(settings, cache=DatabaseETagCache(engine, "github"))
    result = second.collect(github_services)

    assert result.not_modified == alert_requests(github, 304) == 2
    assert result.cost == 1
    with session_scope(engine) as session:
        assert session.execute(text("SELECT count(*) FROM http_cache")).scalar() == 2
        assert TOKEN not in str(session.execute(text("SELECT * FROM http_cache")).all())


def test_collect_runs_keep_the_cache_in_the_database_by_default(github, github_services,
                                                                database_url, tmp_path):
    settings = Settings(environment="development", database_url=database_url,
                        catalog=str(tmp_path), collectors={"github": {
                            "base_url": github.base_url, "org": "acme",
                            "token_env": "LEVELSET_TEST_GITHUB_TOKEN"}})
    [built] = configured_collectors(settings)
    assert isinstance(built.cache, DatabaseETagCache)
    with_file = settings.model_copy(update={"collectors": {"github": {
        "base_url": github.base_url, "cache_path": str(tmp_path / "etags.json")}}})
    [from_file] = configured_collectors(with_file)
    assert isinstance(from_file.cache, JsonFileETagCache)
