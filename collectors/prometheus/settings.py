"""The ``collectors.prometheus`` section of the settings file."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from collectors.base import CollectorConfig
from collectors.prometheus.schema import DEFAULT_QUERIES


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
