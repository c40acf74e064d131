"""Every GitHub listing ends: a cursor or ``next`` link already followed, a page past the count
the listing gives, an empty page that links on, or more than ``max_pages`` stops it."""

from __future__ import annotations

import pytest

from collectors.github.collector import GitHubCollector
from collectors.github.doctor import TokenReads
from collectors.github.settings import GitHubConfig
from core.errors import CollectorError, SettingsError
from tests.collectors.test_github import TOKEN, collector
from tests.realparts.github import GitHubStandIn


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEVELSET_TEST_GITHUB_TOKEN", TOKEN)


def test_a_looping_languages_cursor_leaves_languages_unknown(github: GitHubStandIn,
                                                             github_services):
    github.repositories["acme/legacy"].languages = {f"Lang{i:03d}": 1000 - i for i in range(150)}
    github.loop_connection("languages")

    result = collector(github).collect(github_services)

    assert "languages" not in result.facts["legacy"]  # unknown, not the first page alone
    assert ("legacy: languages: page 2 points back at a page already read ('1'); stopped, "
            "left unknown") in result.errors
    assert ("checkout: languages: page 1 says more follow, past the 3 item(s) the listing "
            "counts; stopped, left unknown") in result.errors
    assert result.facts["legacy"]["topics"] == [] and result.failures == {}
    assert github.graphql_requests() == 2  # the batch, and one page for legacy


def test_a_looping_next_link_stops_the_alert_sweep(github: GitHubStandIn, github_services):
    github.loop_link("/orgs/acme/dependabot/alerts")

    result = collector(github).collect(github_services)

    assert result.facts["checkout"]["alerts"]["dependabot"] is None
    assert result.facts["checkout"]["alerts"]["code_scanning"]["medium"] == 1
    assert any(error.startswith("dependabot alerts of organisation acme: dependabot alerts "
                                "(organisation): page 2 points back at a page already read")
               and error.endswith("stopped; left unknown") for error in result.errors)
    assert github.requests(path_prefix="/orgs/acme/dependabot/alerts") == 2


def test_the_page_limit_is_a_setting(github: GitHubStandIn, github_services):
    result = collector(github, per_page=1, max_pages=2).collect(github_services)

    assert result.facts["checkout"]["alerts"]["dependabot"] is None  # 3 alerts: 3 pages
    assert any("more than 2 pages (collectors.github.max_pages); stopped" in error
               for error in result.errors)
    with pytest.raises(SettingsError, match=r"collectors\.github\.max_pages: Input should "
                       "be greater than or equal to 1"):
        GitHubCollector({"org": "acme", "max_pages": 0})


def test_the_repository_listing_of_doctor_ends(github: GitHubStandIn):
    github.loop_link("/orgs/acme/repos")
    with TokenReads(GitHubConfig(base_url=github.base_url)) as reader:
        with pytest.raises(CollectorError, match=r"page 2 points back at a page already read"):
            list(reader.repositories("acme"))
        with pytest.raises(CollectorError, match="page 1 is empty and links to another"):
            github.loop_link("/orgs/empty/repos")
            list(reader.repositories("empty"))
    assert github.requests(path_prefix="/orgs/") == 3
    assert reader.counter.requests == 3  # the collector's client counts what doctor sends
