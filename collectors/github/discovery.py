"""Find services by reading ``catalog-info.yaml`` from every repository of an organization.

```python
found = discover_catalog(settings.collectors["github"])   # needs ``org``
catalog = load_catalog_texts(found)                       # engine.catalog: the Backstage rules
```

Discovery only fetches the files; the engine parses them with the same Backstage rules as
files on disk. A repository without the file is skipped.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import requests
from github import GithubException, RateLimitExceededException

from collectors.github.collector import GitHubCollector, next_link, reset_time
from collectors.http import RequestCounter
from core.errors import CollectorError

CATALOG_FILE = "catalog-info.yaml"


def discover_catalog(config: Mapping[str, Any], *, include_archived: bool = False
                     ) -> list[tuple[str, str]]:
    """``(origin, text)`` of each repository's catalog-info.yaml, origin ``org/repo/file``."""
    collector = GitHubCollector(config)
    org = collector.config.org
    if not org:
        raise CollectorError("GitHub discovery needs collectors.github.org")
    client = collector.open_client(RequestCounter())
    requester = client.requester
    found: list[tuple[str, str]] = []
    try:
        url: str | None = f"/orgs/{org}/repos"
        params: dict[str, Any] | None = {"type": "all", "per_page": collector.config.per_page}
        repositories: list[dict[str, Any]] = []
        while url:
            headers, data = requester.requestJsonAndCheck("GET", url, parameters=params)
            repositories.extend(r for r in data or [] if isinstance(r, dict))
            url, params = next_link(headers.get("link", "")), None
        for repo in repositories:
            if repo.get("archived") and not include_archived:
                continue
            name = repo["full_name"]
            try:
                _, content = requester.requestJsonAndCheck(
                    "GET", f"/repos/{name}/contents/{CATALOG_FILE}")
            except GithubException as error:
                if error.status == 404 and not isinstance(error, RateLimitExceededException):
                    continue
                raise
            text = _decode(content)
            if text is not None:
                found.append((f"{name}/{CATALOG_FILE}", text))
    except RateLimitExceededException as error:
        raise CollectorError(
            f"GitHub discovery: rate limited until {reset_time(error.headers)}") from None
    except GithubException as error:
        raise CollectorError(f"GitHub discovery: HTTP {error.status}") from None
    except requests.exceptions.RequestException as error:
        raise CollectorError(f"GitHub discovery: {type(error).__name__}") from None
    finally:
        client.close()
    return found


def _decode(content: Any) -> str | None:
    if not isinstance(content, dict) or content.get("encoding") != "base64":
        return None
    try:
        return base64.b64decode(content.get("content", "")).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
