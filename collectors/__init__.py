"""Where facts come from: one collector per source, registered by name.

```python
collectors = build_collectors(settings.collectors)   # {"github": {...}, "aws": {...}}
results = collect_all(collectors, catalog.services.values())
```

Each subpackage is a source and registers itself (:class:`FactSource`) when imported; every
subpackage is imported with this package, so the registry always holds the built-in ones.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from collectors.base import (
    CollectionResult,
    Collector,
    CollectorConfig,
    FactSource,
    register,
    registry,
    utcnow,
)
from core.service import Service

__all__ = [
    "CollectionResult",
    "Collector",
    "CollectorConfig",
    "FactSource",
    "build_collectors",
    "collect_all",
    "load_builtin_collectors",
    "register",
    "registry",
]

log = logging.getLogger(__name__)


def load_builtin_collectors() -> None:
    """Import each collector subpackage so that it registers (its ``__init__`` is light)."""
    for module in pkgutil.iter_modules(__path__, prefix=f"{__name__}."):
        if module.ispkg:
            importlib.import_module(module.name)


def build_collectors(
    config: Mapping[str, Mapping[str, Any] | CollectorConfig | None],
) -> list[Collector]:
    """One collector per configured section (raw or parsed), in the order of the settings file.

    Raises ``KeyError`` for an unknown collector name and ``SettingsError`` for a bad section.
    """
    return [registry.get(name).build(section) for name, section in config.items()]


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
        result.redact_secrets()
        results.append(result)
    return results


load_builtin_collectors()
