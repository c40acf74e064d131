"""What ``levelset doctor`` checks of GitHub, through the collector's own client (counted,
retried, bounded pages): the token, the endpoint, and whether the token may read every fact
the rules read. A classic token lists its scopes (``X-OAuth-Scopes``); a fine-grained token
or an App lists none, so each read a fact needs is tried on one repository."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
from github import Github, GithubException, RateLimitExceededException

from collectors.base import FactsRead, Finding, SourceDoctor, read_secret
from collectors.github.cache import MemoryETagCache
from collectors.github.client import (
    RepositoryFailed,
    RestReader,
    SourceFailed,
    open_client,
    reset_time,
)
from collectors.github.permissions import Permission, credential_rows, permission_of
from collectors.github.settings import GitHubConfig
from collectors.http import RequestCounter, connection_reason, is_timeout
from core.errors import CollectorError
from core.redaction import redact_url

FULL_NAME = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class TokenInfo:
    """What GitHub says about the token: classic tokens list their scopes; fine-grained tokens
    and GitHub App tokens list none (``scopes`` is None)."""

    status: int
    scopes: frozenset[str] | None


class TokenReads:
    """The few reads the checks need, sent by the collector's client: each is counted in
    ``counter``; a failure to reach GitHub is a :class:`CollectorError`."""

    def __init__(self, config: GitHubConfig) -> None:
        self.config = config
        self.counter = RequestCounter()
        self.client: Github = open_client(config, self.counter, MemoryETagCache())
        self.rest = RestReader(self.client.requester, config)

    def __enter__(self) -> TokenReads:
        return self

    def __exit__(self, *_: object) -> None:
        self.client.close()

    def status(self, path: str, **parameters: Any) -> tuple[int, dict[str, Any]]:
        """The status and headers GitHub answers a GET of ``path`` with."""
        try:
            status, headers, _ = self.client.requester.requestJson(
                "GET", path, parameters=parameters or None)
        except RateLimitExceededException as error:
            raise CollectorError(f"GitHub: rate limited until {reset_time(error.headers)}"
                                 ) from None
        except GithubException as error:  # the retry policy raises a 403 it will not retry
            return error.status, {k.lower(): v for k, v in (error.headers or {}).items()}
        except requests.exceptions.RequestException as error:
            raise CollectorError(self._unreachable(error)) from None
        return status, {k.lower(): v for k, v in (headers or {}).items()}

    def token_info(self, org: str | None) -> TokenInfo:
        status, headers = self.status(f"/orgs/{quote(org)}/repos" if org else "/rate_limit",
                                      per_page=1)
        header = headers.get("x-oauth-scopes")
        scopes = None if header is None else frozenset(
            s.strip() for s in header.split(",") if s.strip())
        return TokenInfo(status, scopes)

    def repositories(self, org: str) -> Iterator[dict[str, Any]]:
        """The organisation's repositories, page after page within ``max_pages``."""
        what = f"listing the repositories of {org}"
        try:
            yield from self.rest.pages(f"/orgs/{quote(org)}/repos", what, {"type": "all"})
        except (RepositoryFailed, SourceFailed) as error:
            raise CollectorError(str(error)) from None

    def _unreachable(self, error: requests.exceptions.RequestException) -> str:
        where = f"GitHub at {redact_url(self.config.base_url)}"
        if is_timeout(error):
            return f"{where}: timeout after {self.config.timeout_seconds}s"
        if isinstance(error, requests.exceptions.RetryError):
            return f"{where}: gave up after {self.config.retries} retries"
        return f"{where} is unreachable: {connection_reason(error)}"


class GitHubDoctor(SourceDoctor):
    def check(self, settings: GitHubConfig, facts_read: FactsRead) -> list[Finding]:
        org = settings.org
        try:
            token = read_secret(env=settings.token_env, file=settings.token_file,
                                what="GitHub token")
            reads = TokenReads(settings)
        except CollectorError as error:
            env = settings.token_env or "GITHUB_TOKEN"
            return [Finding("github", str(error), f"export {env}=<token> (scopes: docs/facts.md)")]
        out = [] if token else [
            Finding("github", "no token: anonymous access, 60 requests an hour, public "
                    "repositories only", "set collectors.github.token_env")]
        with reads:
            try:
                info = reads.token_info(org)
            except CollectorError as error:
                return [*out, Finding("github", str(error), "check collectors.github.base_url "
                                      "and the network")]
            if info.status == 401:
                return [*out, Finding("github", "GitHub rejected the token (HTTP 401)",
                                      "create a new token and export it")]
            if info.status != 200:
                return [*out, Finding("github", f"{settings.base_url}: HTTP {info.status} "
                                      f"for {'/orgs/' + org + '/repos' if org else '/rate_limit'}",
                                      "check collectors.github.base_url and org")]
            out.append(Finding("github", f"{settings.base_url} reachable"))
            needed: dict[Permission, list[str]] = {}
            for path, rules in facts_read.items():
                needed.setdefault(permission_of(path), []).extend(rules)
            if info.scopes is None:
                return out + _probe(reads, org, needed)
        return out + _scopes(info.scopes, needed)

    def credentials(self) -> list[str]:
        return credential_rows()


def _scopes(scopes: frozenset[str], needed: dict[Permission, list[str]]) -> list[Finding]:
    """A classic token says what it may do: compare its scopes with what each fact needs."""
    out = []
    for permission, rules in needed.items():
        if not permission.classic & scopes:
            names = " or ".join(sorted(permission.classic))
            out.append(Finding("github", f"the token lacks the {names} scope that "
                               f"{', '.join(sorted(set(rules)))} need (private "
                               "repositories)", f"add the {names} scope to the token"))
    if not out:
        out.append(Finding("github", f"token scopes {', '.join(sorted(scopes)) or 'none'}"
                           " cover the facts the rules read"))
    return out


def _probe(reads: TokenReads, org: str | None, needed: dict[Permission, list[str]]
           ) -> list[Finding]:
    """Fine-grained tokens and Apps list no scopes: read what each fact needs from one
    repository, and report what is refused."""
    if not org:
        return []
    try:
        repository = next(iter(reads.repositories(org)), None)
    except CollectorError as error:
        return [Finding("github", str(error), "give the token read access to the "
                        "organisation's repositories (Metadata: read)")]
    if repository is None:
        return [Finding("github", f"organisation {org} has no repository the token can see",
                        "give the token access to the repositories")]
    name, branch = repository.get("full_name"), repository.get("default_branch") or "main"
    if not (isinstance(name, str) and FULL_NAME.fullmatch(name) and isinstance(branch, str)):
        return [Finding("github", f"organisation {org}: GitHub listed a repository without a "
                        f"valid full_name or default_branch ({str(name)[:100]!r})",
                        "check collectors.github.base_url: it may not be a GitHub API")]
    out: list[Finding] = []
    for permission, rules in needed.items():
        if permission.probe is None:
            continue
        try:
            status, _ = reads.status(
                f"/repos/{name}{permission.probe.format(branch=quote(branch, safe=''))}")
        except CollectorError as error:
            return [*out, Finding("github", str(error), "check collectors.github.base_url "
                                  "and the network")]
        if status in (401, 403):
            out.append(Finding("github", f"the token cannot read {permission.prefix.rstrip('.')}"
                               f" of {name} (HTTP {status}), which "
                               f"{', '.join(sorted(set(rules)))} need",
                               f"grant the token {permission.fine_grained}"))
    if not out:
        out.append(Finding("github", f"the token reads every fact the rules need (checked on "
                           f"{name})"))
    return out
