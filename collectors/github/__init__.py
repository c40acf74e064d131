"""The github source: facts from one repository per service (the collector is in collector.py)."""

from __future__ import annotations

from collectors.base import FactSource, register
from collectors.github.schema import SCHEMA
from collectors.github.settings import GitHubConfig
from core.service import ServiceLink

REPOSITORY = ServiceLink("github.com/project-slug", example="acme/payments",
                         default="`<org>/<service name>`")

SOURCE = register(FactSource(
    name="github", title="GitHub", settings=GitHubConfig, schema=SCHEMA, link=REPOSITORY,
    collector="collectors.github.collector:GitHubCollector",
    doctor="collectors.github.doctor:GitHubDoctor",
))
