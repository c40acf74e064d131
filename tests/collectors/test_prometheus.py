"""The Prometheus collector against a real Prometheus with 29 days of backfilled history."""

from __future__ import annotations

import pytest

from collectors.prometheus.collector import PrometheusCollector
from collectors.prometheus.schema import DEFAULT_QUERIES
from core.errors import SettingsError
from tests.collectors.conftest import service
from tests.realparts.httpserver import LocalHTTPServer, Reply, Request, forward, free_port
from tests.realparts.prometheus import PrometheusServer


def collector(server: PrometheusServer, **settings: object) -> PrometheusCollector:
    return PrometheusCollector({"url": server.url, **settings})


def test_every_query_answers_for_every_service_at_once(prometheus, prometheus_services):
    result = collector(prometheus).collect(prometheus_services)

    assert result.failures == {}
    assert result.errors == []
    checkout, payments = result.facts["checkout"], result.facts["payments"]
    search, ghost = result.facts["search-api"], result.facts["ghost"]
    assert checkout["availability_30d"] == pytest.approx(1.0)
    assert payments["availability_30d"] == pytest.approx(0.9, abs=0.005)
    assert checkout["error_ratio_7d"] == pytest.approx(1 / 101, rel=0.01)
    assert payments["error_ratio_7d"] == pytest.approx(10 / 110, rel=0.01)
    assert search["error_ratio_7d"] == 0.0  # a measured zero, not unknown
    assert checkout["latency_p99_seconds"] < 0.1
    assert 0.5 < payments["latency_p99_seconds"] <= 1.0
    assert "latency_p99_seconds" not in search  # search has no histogram: unknown
    assert ghost == {"alert_rules": 0}  # no series: every query fact absent


def test_alert_rules_count_rules_naming_the_service_in_labels_or_query(
        prometheus, prometheus_services):
    result = collector(prometheus).collect(prometheus_services)

    counts = {name: facts["alert_rules"] for name, facts in result.facts.items()}
    assert counts == {"checkout": 1, "payments": 2, "search-api": 0, "ghost": 0}


def test_one_run_costs_one_request_per_query_plus_one_whatever_the_services(prometheus):
    many = [service(f"svc-{n}") for n in range(40)]
    before = prometheus.handler_requests("/api/v1/query")

    small = collector(prometheus).collect([service("checkout")])
    large = collector(prometheus).collect(many)

    assert small.requests == large.requests == len(DEFAULT_QUERIES) + 1
    # and the server agrees: one /api/v1/query per declared fact per run
    assert prometheus.handler_requests("/api/v1/query") - before == 2 * len(DEFAULT_QUERIES)


def test_configured_queries_replace_the_defaults(prometheus, prometheus_services):
    queries = {"up_now": "max by (service) (up)"}
    col = collector(prometheus, queries=queries)

    result = col.collect(prometheus_services)

    assert [f.path for f in col.fact_schema().facts] == ["up_now", "alert_rules"]
    assert result.facts["checkout"] == {"up_now": 1.0, "alert_rules": 1}
    assert result.requests == 2


def test_a_failing_query_leaves_its_fact_unknown_and_keeps_the_others(
        prometheus, prometheus_services):
    queries = {"broken": "sum by (service) (rate(up[5m]", "up_now": "max by (service) (up)"}

    result = collector(prometheus, queries=queries).collect(prometheus_services)

    assert result.failures == {}
    assert len(result.errors) == 1 and result.errors[0].startswith("query 'broken': ")
    assert "HTTP Status Code 400" in result.errors[0]
    assert result.facts["payments"] == {"up_now": 1.0, "alert_rules": 2}


def test_a_query_that_is_not_grouped_by_service_is_reported(prometheus, prometheus_services):
    result = collector(prometheus, queries={"total": "sum(up)"}).collect(prometheus_services)

    assert result.errors == []  # a vector without the label: no service matches it
    assert "total" not in result.facts["checkout"]


def test_server_down_fails_every_service_with_the_reason(prometheus_services):
    port = free_port()
    result = PrometheusCollector({"url": f"http://127.0.0.1:{port}", "retries": 0}).collect(
        prometheus_services)

    assert result.facts == {}
    assert set(result.failures) == {s.name for s in prometheus_services}
    assert all("is unreachable" in reason for reason in result.failures.values())
    assert result.requests == 1  # one attempt, refused


def test_unknown_settings_are_rejected_with_their_path():
    with pytest.raises(SettingsError, match=r"collectors\.prometheus\.querys"):
        PrometheusCollector({"url": "http://x", "querys": {}})


def test_a_query_that_times_out_is_noted_and_the_others_still_answer(
        prometheus, prometheus_services):
    def slow_error_ratio(request: Request) -> Reply:
        reply = forward(prometheus.url, request)
        if "http_requests_total" in request.query.get("query", ""):
            reply.delay = 2.0
        return reply

    proxy = LocalHTTPServer(slow_error_ratio)
    with proxy.running():
        result = PrometheusCollector({"url": proxy.url, "timeout_seconds": 1}).collect(
            prometheus_services)

    assert result.failures == {}
    assert result.errors == ["query 'error_ratio_7d': timed out after 1s"]
    assert "error_ratio_7d" not in result.facts["checkout"]
    assert result.facts["checkout"]["availability_30d"] == pytest.approx(1.0)
    assert result.requests == len(DEFAULT_QUERIES) + 1  # a timeout is not retried
