"""How a service is named in a URL path.

A Component outside the default namespace is stored as ``namespace/name``; a ``/`` cannot be
part of a path segment (and ``%2F`` is decoded to one before routing), so the API writes it
``namespace:name``: Backstage names and namespaces never hold ``:`` or ``/``, so the segment
reads one way only. A default-namespace service keeps its plain name (``default:name`` also
works).
"""

from __future__ import annotations

import re

NAMESPACE = r"[a-z0-9]+(?:-[a-z0-9]+)*"
NAME = r"[a-zA-Z0-9]+(?:[-_.][a-zA-Z0-9]+)*"
# Backstage's metadata.namespace and metadata.name, as in the catalog.
SERVICE_SEGMENT_PATTERN = rf"^(?:{NAMESPACE}:)?{NAME}$"
_QUALIFIED = re.compile(rf"^({NAMESPACE})[:/]({NAME})$")


def stored_service_name(text: str) -> str:
    """``team-x:svc`` or ``team-x/svc`` -> ``team-x/svc``; ``default:svc`` -> ``svc``;
    anything else is returned as it is."""
    match = _QUALIFIED.match(text)
    if match is None:
        return text
    namespace, name = match.groups()
    return name if namespace == "default" else f"{namespace}/{name}"


def service_segment(name: str) -> str:
    """The path segment of a service: ``team-x/svc`` -> ``team-x:svc``; ``svc`` -> ``svc``."""
    return stored_service_name(name).replace("/", ":")
