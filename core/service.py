"""The service as the catalog describes it, and how a source of facts finds its data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, overload


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


@dataclass(frozen=True)
class ServiceLink:
    """The catalog annotation that tells a source where a service's data is.

    ```yaml
    metadata:
      annotations:
        levelset.dev/aws-service-tag: payments   # AWS resources tagged service=payments
    ```

    ``example`` and ``default`` (what the source reads without the annotation) are for the
    facts reference; the collector applies the default.
    """

    annotation: str
    example: str
    default: str = "the service name"

    @overload
    def value(self, service: Service) -> str | None: ...

    @overload
    def value(self, service: Service, default: str) -> str: ...

    def value(self, service: Service, default: str | None = None) -> str | None:
        """The annotation's value on ``service``, else ``default``."""
        return service.annotations.get(self.annotation, default)
