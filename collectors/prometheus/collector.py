"""Facts from Prometheus: each configured query once per run, for every service at once.

```yaml
collectors:
  prometheus:
    url: http://prometheus:9090
    service_label: service            # the label that names the service in every query
    queries:                          # fact name -> PromQL grouped by the service label
      availability_30d: avg by (service) (avg_over_time(up[30d]))
    timeout_seconds: 30
    token_env: PROMETHEUS_TOKEN       # optional bearer token (or token_file)
```

A run sends ``len(queries) + 1`` requests whatever the number of services: one instant
query per fact, and one ``GET /api/v1/rules?type=alert`` for ``alert_rules``.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from pydantic import Field
from urllib3.util.retry import Retry

from collectors.base import (
    CollectionResult,
    Collector,
    CollectorConfig,
    read_secret,
    registry,
    utcnow,
)
from collectors.http import (
    CountingAdapter,
    RequestCounter,
    connection_reason,
    counting_session,
    is_timeout,
)
from collectors.prometheus.schema import DEFAULT_QUERIES, schema
from core.errors import CollectorError
from core.schema import FactSchema
from core.service import Service


class PrometheusConfig(CollectorConfig):
    url: str = Field(default="http://localhost:9090", description="Prometheus base URL")
    service_label: str = Field(default="service", pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$",
                               description="Label naming the service in every query's result")
    queries: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_QUERIES),
                                    description="Fact name -> PromQL grouped by service_label "
                                    "(default: the queries of the facts below)")
    timeout_seconds: float = Field(default=30.0, gt=0, description="Per-request timeout")
    retries: int = Field(default=1, ge=0, le=5, description="Retries of 502/503/504 answers")
    token_env: str | None = Field(default=None, description="Environment variable holding a "
                                  "bearer token")
    token_file: Path | None = Field(default=None, description="File holding a bearer token")


class _SourceDown(Exception):
    """Prometheus cannot be reached at all."""


@registry.register("prometheus")
class PrometheusCollector(Collector):
    name = "prometheus"

    config_model = PrometheusConfig

    config: PrometheusConfig

    @classmethod
    def default_fact_schema(cls) -> FactSchema:
        return schema()

    def fact_schema(self) -> FactSchema:
        return schema(self.config.queries)

    def collect(self, services: Sequence[Service]) -> CollectionResult:
        config = self.config
        result = CollectionResult(source=self.name, started_at=utcnow())
        counter = RequestCounter()
        try:
            token = read_secret(env=config.token_env, file=config.token_file,
                                what="Prometheus token")
        except CollectorError as error:
            result.fail_all(services, str(error))
            result.finished_at = utcnow()
            return result
        by_value: dict[str, list[Service]] = defaultdict(list)
        for service in services:
            by_value[service.prometheus_label_value].append(service)
        values: dict[str, dict[str, Any]] = {s.name: {} for s in services}

        session = counting_session(counter)
        client = PrometheusConnect(
            url=config.url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"} if token else None,
            session=session,
            timeout=config.timeout_seconds,
        )
        # PrometheusConnect mounts its own adapter on the URL: replace it with a counting one.
        retry = Retry(total=config.retries, read=False, backoff_factor=0.2,
                      status_forcelist=(502, 503, 504), raise_on_status=False)
        session.mount(client.url, CountingAdapter(counter, max_retries=retry))
        failed_calls = 0
        try:
            for fact, query in config.queries.items():
                try:
                    series = self._query(client, query)
                except _QueryFailed as error:
                    failed_calls += 1
                    result.errors.append(f"query {fact!r}: {error}")
                    continue
                for labels, number in series:
                    for service in by_value.get(labels.get(config.service_label, ""), ()):
                        values[service.name][fact] = number
            try:
                rules = self._alert_rules(client, session)
            except _QueryFailed as error:
                failed_calls += 1
                result.errors.append(f"alert rules: {error}")
            else:
                for service in services:
                    values[service.name]["alert_rules"] = _count_rules_naming(
                        rules, config.service_label, service.prometheus_label_value)
        except _SourceDown as error:
            result.fail_all(services, f"Prometheus at {config.url} is unreachable: {error}")
        else:
            if failed_calls == len(config.queries) + 1:
                reason = "every Prometheus call failed: " + "; ".join(result.errors)
                result.fail_all(services, reason)
            else:
                result.facts = values
        finally:
            session.close()
            result.requests = counter.requests
            result.finished_at = utcnow()
        return result

    def _query(self, client: PrometheusConnect, query: str) -> list[tuple[dict[str, str], float]]:
        try:
            data = client.custom_query(query)
        except PrometheusApiClientException as error:
            raise _QueryFailed(str(error)) from None
        except requests.exceptions.RequestException as error:
            raise self._request_failed(error) from None
        except ValueError:  # the answer was not JSON
            raise _QueryFailed("the answer is not JSON") from None
        if not isinstance(data, list) or any(not isinstance(s, dict) for s in data):
            raise _QueryFailed("expected an instant vector grouped by the service label")
        series = []
        for sample in data:
            number = _number(sample.get("value"))
            if number is not None:  # NaN (e.g. 0/0) and infinities are unknown, not numbers
                series.append((sample.get("metric", {}), number))
        return series

    def _request_failed(self, error: requests.exceptions.RequestException) -> Exception:
        if is_timeout(error):
            return _QueryFailed(f"timed out after {self.config.timeout_seconds:g}s")
        if isinstance(error, requests.exceptions.ConnectionError):
            return _SourceDown(connection_reason(error))
        return _QueryFailed(type(error).__name__)

    def _alert_rules(
        self, client: PrometheusConnect, session: requests.Session
    ) -> list[dict[str, Any]]:
        try:
            response = session.get(f"{client.url}/api/v1/rules", params={"type": "alert"},
                                   headers=client.headers, timeout=self.config.timeout_seconds)
        except requests.exceptions.RequestException as error:
            raise self._request_failed(error) from None
        if response.status_code != 200:
            raise _QueryFailed(f"HTTP {response.status_code}")
        try:
            groups = response.json()["data"]["groups"]
        except (ValueError, KeyError, TypeError):
            raise _QueryFailed("unexpected answer from /api/v1/rules") from None
        return [rule for group in groups for rule in group.get("rules", [])
                if rule.get("type", "alerting") == "alerting"]


class _QueryFailed(Exception):
    """One call failed; its fact is unknown for every service."""


def _number(value: Any) -> float | None:
    if not isinstance(value, list) or len(value) != 2:
        return None
    try:
        number = float(value[1])
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _count_rules_naming(rules: Sequence[Mapping[str, Any]], label: str, value: str) -> int:
    """Alerting rules whose labels carry ``label=value`` or whose query selects it."""
    matcher = re.compile(rf"""\b{re.escape(label)}\s*=\s*(["']){re.escape(value)}\1""")
    count = 0
    for rule in rules:
        labels = rule.get("labels") or {}
        if labels.get(label) == value or matcher.search(str(rule.get("query", ""))):
            count += 1
    return count

