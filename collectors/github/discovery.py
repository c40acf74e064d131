"""Find services by reading ``catalog-info.yaml`` from every repository of an organization.

```python
found = discover_catalog(settings.collectors["github"])   # needs ``org``
catalog = load_catalog_texts(found)                       # engine.catalog: the Backstage rules
```

One GraphQL query per 100 repositories lists the organisation's repositories with the text
of their catalog-info.yaml and of their CODEOWNERS (1 rate-limit point each: the files are
plain fields, not connections). Discovery only fetches the files; the engine parses them with
the same Backstage rules as files on disk. :func:`discover_repositories` also returns the
repositories without the file, with their CODEOWNERS text, for ``discover --generate``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from collectors.github.budget import RATE_LIMIT_FIELDS, Budget
from collectors.github.client import PageBound, RepositoryFailed, SourceFailed
from collectors.github.collector import GitHubCollector
from collectors.github.graphql import GraphQLReader
from collectors.http import RequestCounter
from core.errors import CollectorError

CATALOG_FILE = "catalog-info.yaml"
# Where GitHub looks for CODEOWNERS, in its order: the first one found is used.
CODEOWNERS_PATHS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")
_CODEOWNERS_ALIASES = ("codeownersGithub", "codeownersRoot", "codeownersDocs")

_BLOB = "{ ... on Blob { text isBinary } }"
PAGE = 100  # repositories a page
_CODEOWNERS_FIELDS = "\n        ".join(
    f'{alias}: object(expression: "HEAD:{path}") {_BLOB}'
    for alias, path in zip(_CODEOWNERS_ALIASES, CODEOWNERS_PATHS, strict=True))

QUERY = f"""query CatalogFiles($org: String!, $after: String) {{
  {RATE_LIMIT_FIELDS}
  organization(login: $org) {{
    repositories(first: {PAGE}, after: $after, orderBy: {{field: NAME, direction: ASC}}) {{
      totalCount
      nodes {{
        nameWithOwner name description isArchived
        catalog: object(expression: "HEAD:{CATALOG_FILE}") {_BLOB}
        {_CODEOWNERS_FIELDS}
      }}
      pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}"""


@dataclass(frozen=True)
class Uncatalogued:
    """A repository without a catalog-info.yaml: what a generated entity is made of."""

    full_name: str  # owner/name
    name: str
    description: str | None = None
    archived: bool = False
    codeowners: str | None = None  # the text of the first CODEOWNERS GitHub would use


@dataclass
class Discovery:
    catalogs: list[tuple[str, str]] = field(default_factory=list)  # (origin, text)
    uncatalogued: list[Uncatalogued] = field(default_factory=list)


def discover_catalog(config: Mapping[str, Any], *, include_archived: bool = False
                     ) -> list[tuple[str, str]]:
    """``(origin, text)`` of each repository's catalog-info.yaml, origin ``org/repo/file``."""
    return discover_repositories(config, include_archived=include_archived).catalogs


def discover_repositories(config: Mapping[str, Any], *, include_archived: bool = False
                          ) -> Discovery:
    """Each repository's catalog-info.yaml, and the repositories without one; archived
    repositories are left out of both unless ``include_archived``."""
    collector = GitHubCollector(config)
    org = collector.config.org
    if not org:
        raise CollectorError("GitHub discovery needs collectors.github.org")
    client = collector.open_client(RequestCounter())
    reader = GraphQLReader(client.requester, collector.config,
                           Budget(collector.config.max_wait_seconds))
    found = Discovery()
    after: str | None = None
    bound = PageBound(collector.config.max_pages)
    try:
        while True:
            data, errors = reader.query(QUERY, {"org": org, "after": after},
                                        "GitHub discovery", 1)
            page = (data.get("organization") or {}).get("repositories")
            if not isinstance(page, dict):
                message = errors[0].get("message") if errors else "no repositories"
                raise CollectorError(f"GitHub discovery: {message}")
            for repo in page.get("nodes") or []:
                if not isinstance(repo, dict) or not isinstance(repo.get("nameWithOwner"), str) \
                        or (repo.get("isArchived") and not include_archived):
                    continue
                full_name = repo["nameWithOwner"]
                text = _text(repo.get("catalog"))
                if text is not None:
                    found.catalogs.append((f"{full_name}/{CATALOG_FILE}", text))
                    continue
                codeowners = next((t for t in map(_text, map(repo.get, _CODEOWNERS_ALIASES))
                                   if t is not None), None)
                description = repo.get("description")
                found.uncatalogued.append(Uncatalogued(
                    full_name, str(repo.get("name") or full_name.split("/", 1)[-1]),
                    description if isinstance(description, str) else None,
                    bool(repo.get("isArchived")), codeowners))
            info = page.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                break
            after = info.get("endCursor")
            total = page.get("totalCount")
            stop = bound.after(after if isinstance(after, str) else None,
                               total=total if isinstance(total, int) else None, per_page=PAGE)
            if stop:
                raise CollectorError(f"GitHub discovery: the repositories of {org}: {stop}; "
                                     "stopped, nothing written")
    except (RepositoryFailed, SourceFailed) as error:
        raise CollectorError(f"GitHub discovery: {error}") from None
    finally:
        client.close()
    return found


def _text(blob: Any) -> str | None:
    """A blob's text; None for a missing file, a directory or a binary file."""
    if not isinstance(blob, dict) or blob.get("isBinary"):
        return None
    text = blob.get("text")
    return text if isinstance(text, str) else None
