"""Where facts come from: one collector per source, registered by name.

```python
collectors = build_collectors(settings.collectors)   # {"github": {...}, "aws": {...}}
results = collect_all(collectors, catalog.services.values())
```
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from collectors.base import CollectionResult, Collector, CollectorConfig, registry, utcnow
from core.service import Service

__all__ = [
    "CollectionResult",
    "Collector",
    "CollectorConfig",
    "build_collectors",
    "collect_all",
    "load_builtin_collectors",
    "registry",
]

BUILTIN = ("github", "prometheus", "aws")

log = logging.getLogger(__name__)


def load_builtin_collectors() -> None:
    """Import the shipped collectors so they register (kept lazy: boto3 is slow to import)."""
    for name in BUILTIN:
        importlib.import_module(f"collectors.{name}.collector")


def build_collectors(config: Mapping[str, Mapping[str, Any] | None]) -> list[Collector]:
    """One collector per configured section, in the order of the settings file.

    Raises ``KeyError`` for an unknown collector name and ``SettingsError`` for a bad section.
    """
    load_builtin_collectors()
    return [registry.get(name)(section or {}) for name, section in config.items()]


def collect_all(
    collectors: Iterable[Collector], services: Sequence[Service]
) -> list[CollectionResult]:
    """Run every collector over the services; one that breaks fails its services, not the run."""
    services = list(services)
    results = []
    for collector in collectors:
        started = utcnow()
        try:
            result = collector.collect(services)
        except Exception as error:  # a bug or an unexpected library error in one source
            log.exception("collector %s failed", collector.name)
            result = CollectionResult(source=collector.name, started_at=started)
            result.fail_all(services, f"{collector.name} collector error: {type(error).__name__}")
        if result.finished_at is None:
            result.finished_at = utcnow()
        results.append(result)
    return results
