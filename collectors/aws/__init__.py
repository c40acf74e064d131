"""The aws source: resources tagged with the service (the collector is in collector.py)."""

from __future__ import annotations

from collectors.aws.schema import SCHEMA
from collectors.aws.settings import AwsConfig
from collectors.base import FactSource, register
from core.service import ServiceLink

# Matched against the tag tag_key of each resource.
TAG_VALUE = ServiceLink("levelset.dev/aws-service-tag", example="payments")

SOURCE = register(FactSource(
    name="aws", title="AWS", settings=AwsConfig, schema=SCHEMA, link=TAG_VALUE,
    collector="collectors.aws.collector:AwsCollector",
    doctor="collectors.aws.doctor:AwsDoctor",
))
