"""The GitHub collector through PyGithub against a local server that answers like GitHub."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from collectors.github.cache import JsonFileETagCache
from collectors.github.collector import GitHubCollector
from collectors.github.discovery import discover_catalog
from engine.catalog import load_catalog_texts
from tests.collectors.conftest import GITHUB_ANNOTATION, service
from tests.realparts.github import GitHubStandIn, days_ago
from tests.realparts.httpserver import Reply

TOKEN = "ghp_not-a-real-token-0123456789"
# repository, languages, git tree, branch, [protection when protected], pull requests,
# dependabot alerts, code scanning alerts, latest release
FIRST_RUN = {"checkout": 9, "payments": 8, "legacy": 8}


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEVELSET_TEST_GITHUB_TOKEN", TOKEN)


def collector(github: GitHubStandIn, **settings: object) -> GitHubCollector:
    return GitHubCollector({"base_url": github.base_url, "org": "acme",
                            "token_env": "LEVELSET_TEST_GITHUB_TOKEN", **settings})


def requests_for(github: GitHubStandIn, repo: str, status: int | None = None) -> int:
    return github.requests(status, f"/repos/acme/{repo}")


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


def test_alerts_the_token_cannot_read_are_unknown_with_a_note(github, github_services):
    result = collector(github).collect(github_services)

    assert result.facts["payments"]["alerts"] == {"dependabot": None, "code_scanning": None}
    assert "payments: dependabot alerts: HTTP 403; left unknown" in result.errors
    assert "payments: code scanning alerts: HTTP 404; left unknown" in result.errors
    assert "payments" not in result.failures


def test_first_run_costs_a_handful_of_requests_per_repository(github, github_services):
    result = collector(github).collect(github_services)

    for repo, expected in FIRST_RUN.items():
        assert requests_for(github, repo) == expected, repo
    assert result.requests == github.requests() == sum(FIRST_RUN.values())
    assert github.authorizations() == {f"token {TOKEN}"}


def test_unchanged_second_run_is_all_304_and_costs_no_rate_limit(github, github_services):
    col = collector(github)
    first = col.collect(github_services)
    github.reset_counts()
    remaining = github.remaining

    second = col.collect(github_services)

    assert second.facts == first.facts
    # checkout answers everything with an ETag: every request is a free 304
    assert requests_for(github, "checkout") == requests_for(github, "checkout", 304) == 9
    assert requests_for(github, "legacy", 304) == 8
    # only answers GitHub sends without an ETag are counted again: payments' missing
    # release (404) and its unreadable alerts (403, 404)
    assert requests_for(github, "payments", 304) == 5
    assert github.remaining == remaining - 3
    assert second.not_modified == github.requests(304) == 22


def test_a_changed_repository_costs_only_what_changed(github, github_services):
    col = collector(github)
    col.collect(github_services)
    github.repositories["acme/checkout"].pull_requests_created.append(days_ago(0.1))
    github.reset_counts()

    result = col.collect(github_services)

    assert result.facts["checkout"]["pull_requests"]["open"] == 4
    assert requests_for(github, "checkout", 200) == 1
    assert requests_for(github, "checkout", 304) == 8


def test_file_cache_keeps_etags_between_processes(github, github_services, tmp_path: Path):
    cache_path = tmp_path / "etags.json"
    collector(github, cache_path=str(cache_path)).collect(github_services)
    assert TOKEN not in cache_path.read_text()
    github.reset_counts()

    result = collector(github, cache_path=str(cache_path)).collect(github_services)

    assert requests_for(github, "checkout", 304) == 9
    assert result.not_modified == 22


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
    github.fault("/repos/acme/payments/languages",
                 Reply(403, body, {"Retry-After": "1", "Content-Type": "application/json"}))

    started = time.monotonic()
    result = collector(github).collect(github_services)

    assert 1 <= time.monotonic() - started < 10
    assert result.failures == {}
    assert result.facts["payments"]["languages"] == ["Go"]
    assert requests_for(github, "payments") == FIRST_RUN["payments"] + 1  # the retry
    assert result.requests == sum(FIRST_RUN.values()) + 1


def test_secondary_rate_limit_longer_than_the_bound_fails_the_rest(github, github_services):
    body = json.dumps({"message": "You have exceeded a secondary rate limit."}).encode()
    github.fault("/repos/acme/payments", Reply(403, body, {"Retry-After": "3600"}))

    started = time.monotonic()
    result = collector(github, max_wait_seconds=2).collect(github_services)

    assert time.monotonic() - started < 5
    assert "checkout" in result.facts
    assert set(result.failures) == {"payments", "legacy"}
    assert result.failures["payments"].startswith("rate limited until ")


def test_server_error_fails_that_repository_after_retries_and_not_the_others(
        github, github_services):
    github.fail_always("/repos/acme/payments/languages",
                       Reply(503, b'{"message": "Service Unavailable"}'))

    result = collector(github, retries=2).collect(github_services)

    assert result.failures == {
        "payments": "acme/payments: languages: HTTP 503 (server error)"}
    assert set(result.facts) == {"checkout", "legacy"}
    assert github.requests(503) == 3  # the first try and two retries


def test_a_slow_answer_times_out_that_repository_only(github, github_services):
    github.fault("/repos/acme/checkout/git/trees/main", Reply(200, b"{}", delay=3))

    started = time.monotonic()
    result = collector(github, timeout_seconds=1).collect(github_services)

    assert time.monotonic() - started < 3
    assert result.failures == {"checkout": "acme/checkout: git tree: timeout after 1s"}
    assert set(result.facts) == {"payments", "legacy"}


def test_missing_repository_fails_only_its_service(github, github_services):
    services = [*github_services, service("ghost")]

    result = collector(github).collect(services)

    assert result.failures == {"ghost": "acme/ghost: repository: HTTP 404 (not found)"}
    assert len(result.facts) == 3


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


def test_branch_protection_404_branch_not_protected_means_disabled(github, github_services):
    github.fault("/repos/acme/checkout/branches/main/protection", Reply(
        404, b'{"message": "Branch not protected", "documentation_url": "https://docs"}'))

    result = collector(github).collect(github_services)

    assert result.facts["checkout"]["branch_protection"]["enabled"] is False
    assert not any(e.startswith("checkout:") for e in result.errors)


def test_branch_protection_the_token_may_not_read_is_unknown(github, github_services):
    github.fault("/repos/acme/checkout/branches/main/protection", Reply(
        403, b'{"message": "Must have admin rights to Repository."}'))

    result = collector(github).collect(github_services)

    assert result.facts["checkout"]["branch_protection"] is None  # unknown, not disabled
    assert any(e.startswith("checkout: branch protection: HTTP 403") for e in result.errors)
    assert "checkout" not in result.failures


def test_a_rejected_token_stops_the_run(github, github_services):
    github.fault("/repos/acme/checkout", Reply(401, b'{"message": "Bad credentials"}'))

    result = collector(github).collect(github_services)

    assert set(result.failures.values()) == {"GitHub rejected the token (HTTP 401)"}
    assert result.requests == 1


def test_services_sharing_a_repository_read_it_once(github):
    services = [service("web", **{GITHUB_ANNOTATION: "acme/checkout"}),
                service("worker", **{GITHUB_ANNOTATION: "acme/checkout"})]

    result = collector(github).collect(services)

    assert result.facts["web"] == result.facts["worker"]
    assert result.requests == FIRST_RUN["checkout"]
