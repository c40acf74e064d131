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
query per fact, and one ``GET /api/v1/rules?type=alert`` for ``alert_rules``. That query set
is the run's one unit (:meth:`PrometheusCollector.plan`).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from collectors.base import (
    CollectionPlan,
    CollectionResult,
    CollectionUnit,
    Collector,
    UnitResult,
    read_secret,
    utcnow,
)
from collectors.http import (
    CountingAdapter,
    RequestCounter,
    connection_reason,
    counting_session,
    is_timeout,
)
from collectors.prometheus import LABEL_VALUE, SOURCE
from collectors.prometheus.settings import PrometheusConfig
from core.errors import CollectorError
from core.redaction import redact_url
from core.service import Service


class _SourceDown(Exception):
    """Prometheus cannot be reached at all."""


class PrometheusCollector(Collector):
    source = SOURCE

    config: PrometheusConfig

    def label_value_of(self, service: Service) -> str:
        """The value of ``service_label`` that names ``service`` in every query's result."""
        return LABEL_VALUE.value(service, service.name)

    def plan(self, services: Sequence[Service]) -> CollectionPlan:
        """One unit: every query (and the alert rules) once, for every service at once."""
        return CollectionPlan(self.name, (CollectionUnit(
            self.name, "query-set", "queries", tuple(s.name for s in services),
            (*self.config.queries, "alert_rules")),))

    def collect_unit(self, unit: CollectionUnit, services: Sequence[Service],
                     inputs: Sequence[UnitResult], run: object) -> UnitResult:
        return UnitResult(unit, self._query_set(services))

    def _query_set(self, services: Sequence[Service]) -> CollectionResult:
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
            by_value[self.label_value_of(service)].append(service)
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
                        rules, config.service_label, self.label_value_of(service))
        except _SourceDown as error:
            result.fail_all(services, f"Prometheus at {redact_url(config.url)} is unreachable: {error}")
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

