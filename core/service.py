"""The service as the catalog describes it: what every source of facts is asked about."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

GITHUB_ANNOTATION = "github.com/project-slug"
PROMETHEUS_ANNOTATION = "levelset.dev/prometheus-service"
AWS_ANNOTATION = "levelset.dev/aws-service-tag"


@dataclass(frozen=True)
class Service:
    """A service from the catalog, with everything the ``service.*`` facts expose."""

    name: str
    owner: str
    lifecycle: str
    type: str = "service"
    namespace: str = "default"
    title: str | None = None
    description: str | None = None
    system: str | None = None
    tier: str | None = None
    tags: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    links: tuple[Mapping[str, str], ...] = ()
    source: str = ""  # file:line it was read from

    @property
    def github_repository(self) -> str | None:
        return self.annotations.get(GITHUB_ANNOTATION)

    @property
    def prometheus_label_value(self) -> str:
        return self.annotations.get(PROMETHEUS_ANNOTATION, self.name)

    @property
    def aws_tag_value(self) -> str:
        return self.annotations.get(AWS_ANNOTATION, self.name)

    def facts(self) -> dict[str, Any]:
        """The ``service.*`` namespace (absent values left out, so ``has()`` works)."""
        values: dict[str, Any] = {
            "name": self.name,
            "namespace": self.namespace,
            "owner": self.owner,
            "lifecycle": self.lifecycle,
            "type": self.type,
            "tags": list(self.tags),
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "links": [dict(link) for link in self.links],
        }
        for key in ("title", "description", "system", "tier"):
            value = getattr(self, key)
            if value is not None:
                values[key] = value
        return values
