"""Every fact namespace a rule may read, and its schema.

``service`` (the catalog) and ``custom`` (pushed facts) are the engine's own; each registered
collector adds its namespace, as configured by its section of the settings file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collectors import registry
from core.schema import Fact, FactSchema, FactType, facts

T = FactType

SERVICE_SCHEMA = FactSchema(
    namespace="service",
    description="The service as the catalog describes it (Backstage Component).",
    facts=facts(
        ("name", T.STRING, "metadata.name (namespace/name outside the default namespace).", "catalog"),
        ("namespace", T.STRING, "metadata.namespace, default `default`.", "catalog"),
        ("title", T.STRING, "metadata.title.", "catalog"),
        ("description", T.STRING, "metadata.description.", "catalog"),
        ("owner", T.STRING, "spec.owner, e.g. `team-a` or `user:guest`.", "catalog"),
        ("lifecycle", T.STRING, "spec.lifecycle: experimental, production, deprecated...", "catalog"),
        ("type", T.STRING, "spec.type: service, website, library...", "catalog"),
        ("system", T.STRING, "spec.system.", "catalog"),
        ("tier", T.STRING, "Annotation levelset.dev/tier or label tier.", "catalog"),
        ("tags", T.STRING_LIST, "metadata.tags.", "catalog"),
        ("labels", T.MAP, "metadata.labels.", "catalog"),
        ("annotations", T.MAP, "metadata.annotations.", "catalog"),
        Fact("links", T.OBJECT_LIST, "metadata.links: url, title, icon, type.", "catalog"),
    ),
)

CUSTOM_SCHEMA = FactSchema(
    namespace="custom",
    description="Anything pushed through the API or supplied in a facts file; free-form.",
    free_form=True,
)


def custom_schema(declared: Mapping[str, Any] | None) -> FactSchema:
    """The ``custom`` namespace: free-form, or only the facts the settings' ``custom_facts``
    declare (each with ``type``, ``default`` and ``description``), typed."""
    if declared is None:
        return CUSTOM_SCHEMA
    return FactSchema(
        namespace="custom",
        description="Facts pushed through the API or supplied in a facts file, as declared "
                    "in the settings' custom_facts.",
        facts=tuple(Fact(name, FactType(_field(spec, "type")), _field(spec, "description") or "",
                         "push", default=_field(spec, "default"))
                    for name, spec in sorted(declared.items())),
        provider="it is not declared in the settings' custom_facts",
    )


def _field(spec: Any, name: str) -> Any:
    return spec.get(name) if isinstance(spec, Mapping) else getattr(spec, name, None)


def vocabulary(
    collectors: Mapping[str, Any] | None = None, custom_facts: Mapping[str, Any] | None = None
) -> dict[str, FactSchema]:
    """The namespaces as configured by ``collectors`` (the settings' sections, raw or parsed)
    and ``custom_facts`` (declared custom facts; None: free-form).

    A registered collector without a section provides its default facts.
    """
    sections: dict[str, Any] = dict(collectors or {})
    schemas = [SERVICE_SCHEMA]
    for name, source in registry.items():
        configured = source.parse_settings(sections[name]) if name in sections else None
        schemas.append(source.fact_schema(configured))
    schemas.append(custom_schema(custom_facts))
    return {schema.namespace: schema for schema in schemas}
