"""Fixtures for the collector tests: real servers, started once per session."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from collectors.aws import TAG_VALUE
from collectors.github import REPOSITORY
from collectors.prometheus import LABEL_VALUE
from core.service import Service
from tests.realparts.aws import AwsAccount, fake_credentials, running_moto
from tests.realparts.github import FakeRepository, GitHubStandIn, days_ago
from tests.realparts.prometheus import (
    PrometheusServer,
    Series,
    binaries,
    openmetrics,
    running_prometheus,
)

GITHUB_ANNOTATION = REPOSITORY.annotation
PROMETHEUS_ANNOTATION = LABEL_VALUE.annotation
AWS_ANNOTATION = TAG_VALUE.annotation


def service(name: str, **annotations: str) -> Service:
    return Service(name=name, owner="team-a", lifecycle="production", annotations=annotations)


# ----------------------------------------------------------------------------- Prometheus

STEP = 600  # one sample every 10 minutes, for 29 days (inside every 30d window)
DAYS = 29
ERRORS_PER_STEP = {"checkout": 1, "payments": 10, "search": 0}
OK_PER_STEP = 100


def _prometheus_history(end: int) -> str:
    services = list(ERRORS_PER_STEP)
    up = [
        Series("up", {"service": "checkout", "job": "checkout"}, lambda i: 1),
        # payments is down for every 10th scrape: availability 0.9
        Series("up", {"service": "payments", "job": "payments"}, lambda i: 0 if i % 10 == 0 else 1),
        Series("up", {"service": "search", "job": "search"}, lambda i: 1),
    ]
    requests = []
    for name in services:
        requests.append(Series("http_requests_total", {"service": name, "code": "200"},
                               lambda i: OK_PER_STEP * i))
        errors = ERRORS_PER_STEP[name]
        requests.append(Series("http_requests_total", {"service": name, "code": "500"},
                               lambda i, e=errors: e * i))  # type: ignore[misc]
    # Latency: checkout answers everything under 0.1 s; payments half of it between 0.5 and 1 s.
    buckets = {"checkout": {"0.1": 100, "0.5": 100, "1": 100, "+Inf": 100},
               "payments": {"0.1": 20, "0.5": 50, "1": 100, "+Inf": 100}}
    histogram = []
    for name, counts in buckets.items():
        for le, per_step in counts.items():
            histogram.append(Series("http_request_duration_seconds_bucket",
                                    {"service": name, "le": le},
                                    lambda i, c=per_step: c * i))  # type: ignore[misc]
        histogram.append(Series("http_request_duration_seconds_count", {"service": name},
                                lambda i: 100 * i))
        histogram.append(Series("http_request_duration_seconds_sum", {"service": name},
                                lambda i: 10 * i))
    return openmetrics(
        {
            "up": ("gauge", up),
            "http_requests": ("counter", requests),
            "http_request_duration_seconds": ("histogram", histogram),
        },
        end=end, days=DAYS, step=STEP,
    )


ALERT_RULES = """\
groups:
  - name: payments
    rules:
      - alert: PaymentsDown
        expr: up{service="payments"} == 0
        for: 5m
        labels: {severity: page}
      - alert: PaymentsSlow
        expr: histogram_quantile(0.99, rate(http_request_duration_seconds_bucket[5m])) > 2
        labels: {severity: ticket, service: payments}
  - name: checkout
    rules:
      - alert: CheckoutErrors
        expr: sum(rate(http_requests_total{code=~"5..", service = 'checkout'}[5m])) > 1
      - record: service:up:avg
        expr: avg by (service) (up)
"""


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    workdir = tmp_path_factory.mktemp("prometheus")
    try:
        binaries()
    except RuntimeError as error:  # CI must install it: fail, never skip
        pytest.fail(str(error), pytrace=False)
    history = _prometheus_history(end=int(time.time()) - 30)
    with running_prometheus(workdir, history, rules=ALERT_RULES) as server:
        yield server


@pytest.fixture
def prometheus_services() -> list[Service]:
    return [
        service("checkout"),
        service("payments"),
        service("search-api", **{PROMETHEUS_ANNOTATION: "search"}),
        service("ghost"),  # in the catalog, no series at all
    ]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


# ----------------------------------------------------------------------------- AWS

EU, US = "eu-west-1", "us-east-1"


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    with fake_credentials(), running_moto() as endpoint:
        account = AwsAccount(endpoint)
        # orders: everything right in eu-west-1, everything wrong in us-east-1
        account.bucket(EU, "orders-data", "orders", encrypted=True, versioned=True,
                       public_access_blocked=True)
        account.bucket(US, "orders-archive", "orders")
        account.database(EU, "orders-db", "orders", retention=7, multi_az=True, encrypted=True)
        account.database(US, "orders-replica", "orders", retention=1, multi_az=False,
                         encrypted=False)
        account.function(EU, "orders-api", "orders", "python3.12")
        account.function(US, "orders-cron", "orders", "python3.8")
        account.table(EU, "orders", "orders", pitr=True)
        account.alarm(EU, "orders-5xx", "orders")
        # payments (tag value differs from the service name): one table, two alarms
        account.table(EU, "payments", "payments", pitr=False)
        account.alarm(EU, "payments-latency", "payments")
        account.alarm(US, "payments-errors", "payments")
        # resources of services not in the catalog, and one without the tag
        account.bucket(EU, "unrelated-bkt", None)
        for n in range(3):
            account.table(US, f"legacy-{n}", "legacy", pitr=False)
        yield endpoint


@pytest.fixture
def aws_services() -> list[Service]:
    return [
        service("orders"),
        service("payments-svc", **{AWS_ANNOTATION: "payments"}),
        service("empty"),
    ]


# ----------------------------------------------------------------------------- GitHub

GOOD_PROTECTION = {
    "required_status_checks": {"strict": True, "contexts": ["ci/build"],
                               "checks": [{"context": "ci/build", "app_id": None}]},
    "enforce_admins": {"enabled": True},
    "required_pull_request_reviews": {"dismiss_stale_reviews": True,
                                      "require_code_owner_reviews": True,
                                      "required_approving_review_count": 2},
    "allow_force_pushes": {"enabled": False},
    "allow_deletions": {"enabled": False},
}

CATALOG_INFO = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: {name}
  annotations:
    github.com/project-slug: acme/{name}
spec: {{type: service, lifecycle: production, owner: team-a}}
"""


def github_repositories() -> list[FakeRepository]:
    return [
        FakeRepository(
            "acme/checkout", visibility="internal", topics=["payments", "tier-1"],
            languages={"Python": 9000, "Shell": 120, "Dockerfile": 300},
            files=["README.md", ".github/CODEOWNERS", "SECURITY.md", "LICENSE",
                   ".github/dependabot.yml", ".github/workflows/ci.yml",
                   ".github/workflows/release.yaml", "Dockerfile", "catalog-info.yaml",
                   "src/checkout/app.py"],
            protection=GOOD_PROTECTION,
            pull_requests_created=[days_ago(10), days_ago(2), days_ago(0.5)],
            last_commit_at=days_ago(1),
            dependabot_alerts=["critical", "high", "high"], code_scanning_alerts=["medium"],
            release=("v1.4.0", days_ago(3)),
            catalog_info=CATALOG_INFO.format(name="checkout"),
        ),
        # unprotected, no release, alerts unreadable (403) or code scanning off (404)
        FakeRepository(
            "acme/payments", default_branch="trunk", languages={"Go": 5000},
            files=["README.md", "main.go"], last_commit_at=days_ago(40),
            dependabot_alerts=None, code_scanning_alerts=None,
            catalog_info=CATALOG_INFO.format(name="payments"),
        ),
        FakeRepository("acme/legacy", archived=True, visibility="public",
                       files=["README"], last_commit_at=days_ago(900),
                       dependabot_alerts=[], code_scanning_alerts=[],
                       release=("v0.9", days_ago(1000))),
    ]


@pytest.fixture
def github() -> Iterator[GitHubStandIn]:
    """A fresh stand-in per test: each test owns its counters, faults and rate limit."""
    stand_in = GitHubStandIn(github_repositories())
    with stand_in.server.running():
        yield stand_in
    # every query the collector sent is one GitHub's published schema accepts
    assert stand_in.invalid_queries == []


@pytest.fixture
def github_services() -> list[Service]:
    return [
        service("checkout", **{GITHUB_ANNOTATION: "acme/checkout"}),
        service("payments"),  # no annotation: acme/payments from the org setting
        service("legacy"),
    ]
