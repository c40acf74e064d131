"""The few GitHub REST reads that ``levelset doctor`` needs, apart from the collector: the
token's scopes, the organisation's first repository and what each fact's endpoint answers.
(Discovery, also for ``discover --generate``, reads through GraphQL:
:mod:`collectors.github.discovery`.)"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from collectors.base import read_secret
from collectors.github.client import PageBound, next_link
from collectors.github.settings import GitHubConfig
from core.errors import CollectorError


@dataclass(frozen=True)
class TokenInfo:
    """What GitHub says about the token: classic tokens list their scopes; fine-grained tokens
    and GitHub App tokens list none (``scopes`` is None)."""

    status: int
    scopes: frozenset[str] | None
    login: str | None = None


class GitHubReader:
    def __init__(self, section: Mapping[str, Any] | GitHubConfig, *,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.config = section if isinstance(section, GitHubConfig) else \
            GitHubConfig.model_validate(dict(section))
        self.token = read_secret(env=self.config.token_env, file=self.config.token_file,
                                 what="GitHub token")
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self.client = httpx.Client(base_url=self.config.base_url.rstrip("/"), headers=headers,
                                   timeout=self.config.timeout_seconds, transport=transport)

    def __enter__(self) -> GitHubReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.client.close()

    def get(self, path: str, **params: Any) -> httpx.Response:
        try:
            return self.client.get(path, params=params or None)
        except httpx.HTTPError as error:
            raise CollectorError(f"cannot reach {self.config.base_url}: {error}") from None

    def token_info(self, org: str | None) -> TokenInfo:
        response = self.get(f"/orgs/{org}/repos" if org else "/rate_limit", per_page=1)
        header = response.headers.get("x-oauth-scopes")
        scopes = None if header is None else frozenset(
            s.strip() for s in header.split(",") if s.strip())
        return TokenInfo(response.status_code, scopes)

    def repositories(self, org: str) -> Iterator[dict[str, Any]]:
        url: str | None = f"/orgs/{quote(org)}/repos"
        params: dict[str, Any] = {"type": "all", "per_page": self.config.per_page}
        bound = PageBound(self.config.max_pages)
        while url:
            response = self.get(url, **params)
            if response.status_code != 200:
                raise CollectorError(f"listing the repositories of {org}: HTTP "
                                     f"{response.status_code}: {_message(response)}")
            try:
                page = response.json()
            except ValueError:
                raise CollectorError(f"listing the repositories of {org}: the answer is not "
                                     "JSON") from None
            items = [r for r in page if isinstance(r, dict)] if isinstance(page, list) else []
            yield from items
            url, params = next_link(response.headers.get("link", "")), {}
            if url is None:
                break
            stop = bound.after(url, empty=not items)
            if stop:
                raise CollectorError(f"listing the repositories of {org}: {stop}; stopped")


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", ""))
    except (ValueError, AttributeError):
        return response.text[:200]
