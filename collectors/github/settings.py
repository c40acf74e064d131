"""The ``collectors.github`` section of the settings file."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from collectors.base import CollectorConfig


class GitHubConfig(CollectorConfig):
    base_url: str = Field(default="https://api.github.com",
                          description="REST API root; GitHub Enterprise: https://HOST/api/v3")
    org: str | None = Field(default=None, description="Owner of `<org>/<service>` repositories "
                            "(services without github.com/project-slug); needed for discovery")
    token_env: str | None = Field(default=None, description="Environment variable holding "
                                  "the token (none: anonymous, 60 requests an hour)")
    token_file: Path | None = Field(default=None, description="File holding the token "
                                    "(a mounted secret); wins over token_env")
    batch_size: int = Field(default=50, ge=1, le=100, description="Repositories per GraphQL "
                            "query")
    cache_path: Path | None = Field(default=None, description="JSON file keeping ETags and "
                                    "bodies between runs (none: the engine's database)")
    timeout_seconds: int = Field(default=15, ge=1, description="Per-request timeout")
    max_wait_seconds: float = Field(default=60.0, ge=0, description="Longest sleep for a rate "
                                    "limit; beyond it the rest fails as rate limited")
    retries: int = Field(default=2, ge=0, le=10, description="Retries of 5xx answers and of "
                         "secondary rate limits")
    seconds_between_requests: float = Field(default=0.0, ge=0,
                                            description="Pause between requests")
    per_page: int = Field(default=100, ge=1, le=100, description="Page size of list endpoints")
    max_pages: int = Field(default=1000, ge=1, description="Most pages read of one listing "
                           "(repositories, alerts, languages); a listing past it, or one whose "
                           "next page repeats a cursor or link, fails with an error")
