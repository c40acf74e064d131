"""The ``prometheus.*`` facts: one PromQL query per fact, declared in configuration."""

from __future__ import annotations

from collections.abc import Mapping

from core.schema import Fact, FactSchema, FactType

# Shipped defaults; `collectors.prometheus.queries` in the settings file replaces or extends them.
# Each query is grouped by the service label, so one query answers for every service.
DEFAULT_QUERIES: dict[str, str] = {
    "availability_30d": "avg by (service) (avg_over_time(up[30d]))",
    "error_ratio_7d": (
        'sum by (service) (rate(http_requests_total{code=~"5.."}[7d]))'
        " / sum by (service) (rate(http_requests_total[7d]))"
    ),
    "latency_p99_seconds": (
        "histogram_quantile(0.99, sum by (service, le) "
        "(rate(http_request_duration_seconds_bucket[7d])))"
    ),
}

_DESCRIPTIONS = {
    "availability_30d": "Share of scrapes in the last 30 days where the service was up (0..1).",
    "error_ratio_7d": "5xx responses / all responses over 7 days (0..1).",
    "latency_p99_seconds": "99th percentile request latency over 7 days, in seconds.",
}

ALERT_RULES_FACT = Fact(
    "alert_rules",
    FactType.INT,
    "Alerting rules loaded in Prometheus whose labels name the service.",
    "GET /api/v1/rules?type=alert",
)


def schema(queries: Mapping[str, str] | None = None) -> FactSchema:
    """The namespace as configured: one double fact per query, plus ``alert_rules``."""
    declared = DEFAULT_QUERIES if queries is None else queries
    return FactSchema(
        namespace="prometheus",
        description="Service metrics: one PromQL query per fact, grouped by the service label.",
        facts=(
            *(
                Fact(name, FactType.DOUBLE, _DESCRIPTIONS.get(name, "Configured query."),
                     f"PromQL: {q}")
                for name, q in declared.items()
            ),
            ALERT_RULES_FACT,
        ),
    )


SCHEMA = schema()
