"""Find services by reading ``catalog-info.yaml`` from every repository of an organization.

```python
found = discover_catalog(settings.collectors["github"])   # needs ``org``
catalog = load_catalog_texts(found)                       # engine.catalog: the Backstage rules
```

One GraphQL query per 100 repositories lists the organisation's repositories with the text
of their catalog-info.yaml (1 rate-limit point each). Discovery only fetches the files; the
engine parses them with the same Backstage rules as files on disk. A repository without the
file is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collectors.github.budget import RATE_LIMIT_FIELDS, Budget
from collectors.github.client import RepositoryFailed, SourceFailed
from collectors.github.collector import GitHubCollector
from collectors.github.graphql import GraphQLReader
from collectors.http import RequestCounter
from core.errors import CollectorError

CATALOG_FILE = "catalog-info.yaml"

QUERY = f"""query CatalogFiles($org: String!, $after: String) {{
  {RATE_LIMIT_FIELDS}
  organization(login: $org) {{
    repositories(first: 100, after: $after, orderBy: {{field: NAME, direction: ASC}}) {{
      nodes {{
        nameWithOwner isArchived
        catalog: object(expression: "HEAD:{CATALOG_FILE}") {{ ... on Blob {{ text isBinary }} }}
      }}
      pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}"""


def discover_catalog(config: Mapping[str, Any], *, include_archived: bool = False
                     ) -> list[tuple[str, str]]:
    """``(origin, text)`` of each repository's catalog-info.yaml, origin ``org/repo/file``."""
    collector = GitHubCollector(config)
    org = collector.config.org
    if not org:
        raise CollectorError("GitHub discovery needs collectors.github.org")
    client = collector.open_client(RequestCounter())
    reader = GraphQLReader(client.requester, collector.config,
                           Budget(collector.config.max_wait_seconds))
    found: list[tuple[str, str]] = []
    after: str | None = None
    try:
        while True:
            data, errors = reader.query(QUERY, {"org": org, "after": after},
                                        "GitHub discovery", 1)
            page = (data.get("organization") or {}).get("repositories")
            if not isinstance(page, dict):
                message = errors[0].get("message") if errors else "no repositories"
                raise CollectorError(f"GitHub discovery: {message}")
            for repo in page.get("nodes") or []:
                if not isinstance(repo, dict) or (repo.get("isArchived") and not include_archived):
                    continue
                blob = repo.get("catalog")
                if not isinstance(blob, dict):
                    continue
                text = blob.get("text")
                if isinstance(text, str) and not blob.get("isBinary"):
                    found.append((f"{repo['nameWithOwner']}/{CATALOG_FILE}", text))
            info = page.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                break
            after = info.get("endCursor")
    except (RepositoryFailed, SourceFailed) as error:
        raise CollectorError(f"GitHub discovery: {error}") from None
    finally:
        client.close()
    return found
