"""The prometheus source: one fact per configured query (the collector is in collector.py)."""

from __future__ import annotations

from collectors.base import FactSource, register
from collectors.prometheus.schema import SCHEMA, schema
from collectors.prometheus.settings import PrometheusConfig
from core.schema import FactSchema
from core.service import ServiceLink

# Matched against the service_label label of each query's result and of alerting rules.
LABEL_VALUE = ServiceLink("levelset.dev/prometheus-service", example="payments-api")


def configured_schema(settings: PrometheusConfig) -> FactSchema:
    return schema(settings.queries)


SOURCE = register(FactSource(
    name="prometheus", title="Prometheus", settings=PrometheusConfig, schema=SCHEMA,
    link=LABEL_VALUE, configured_schema=configured_schema,
    collector="collectors.prometheus.collector:PrometheusCollector",
    doctor="collectors.prometheus.doctor:PrometheusDoctor",
))
