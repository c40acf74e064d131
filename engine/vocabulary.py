"""Every fact namespace a rule may read, and its schema."""

from __future__ import annotations

from collections.abc import Mapping

from collectors.aws.schema import SCHEMA as AWS_SCHEMA
from collectors.github.schema import SCHEMA as GITHUB_SCHEMA
from collectors.prometheus.schema import schema as prometheus_schema
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


def vocabulary(prometheus_queries: Mapping[str, str] | None = None) -> dict[str, FactSchema]:
    """The namespaces as configured (Prometheus facts are the configured queries)."""
    schemas = (SERVICE_SCHEMA, GITHUB_SCHEMA, prometheus_schema(prometheus_queries), AWS_SCHEMA,
               CUSTOM_SCHEMA)
    return {schema.namespace: schema for schema in schemas}
