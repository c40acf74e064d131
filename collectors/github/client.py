"""The transport to GitHub: a PyGithub client whose requests are counted and conditional.

PyGithub does authentication, Enterprise URLs (``https://HOST/api/v3`` for REST,
``https://HOST/api/graphql`` for GraphQL), retries of 5xx and of secondary rate limits
(``GithubRetry``, bounded by ``max_wait_seconds``) and typed exceptions. :class:`RestReader`
reads documented JSON through its requester and turns failures into the collector's three
outcomes: a fact group left unknown, a repository failed, or the whole source stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from github import (
    Auth,
    BadCredentialsException,
    Github,
    GithubException,
    GithubRetry,
    RateLimitExceededException,
)
from github.GithubException import RateLimitExceededExceedsMaxWait
from github.Requester import Requester

from collectors.base import read_secret, utcnow
from collectors.github.cache import ConditionalAdapter, ETagCache
from collectors.github.settings import GitHubConfig
from collectors.http import RequestCounter, connection_reason, is_timeout
from core.redaction import redact_url


class RepositoryFailed(Exception):
    """This repository (or this batch of repositories) could not be read; the others can."""


class SourceFailed(Exception):
    """Nothing more can be read from GitHub in this run (rate limit, server unreachable)."""


def open_client(config: GitHubConfig, counter: RequestCounter, cache: ETagCache) -> Github:
    """A PyGithub client whose requests are counted and whose GETs are conditional."""
    token = read_secret(env=config.token_env, file=config.token_file, what="GitHub token")
    retry = BoundedRetry(
        total=config.retries,
        read=False,  # a read timeout is reported at once, not retried into a long hang
        backoff_factor=0.5,
        max_rate_limit_wait=config.max_wait_seconds,
        secondary_rate_wait=min(60.0, config.max_wait_seconds),
        raise_on_status=False,  # after the last retry PyGithub raises a typed exception
    )
    client = Github(
        base_url=config.base_url.rstrip("/"),
        auth=Auth.Token(token) if token else None,
        timeout=config.timeout_seconds,
        retry=retry,
        per_page=config.per_page,
        seconds_between_requests=config.seconds_between_requests or None,
        seconds_between_writes=None,
    )
    _install_adapter(client.requester, ConditionalAdapter(counter, cache, max_retries=retry))
    return client


def graphql_url(base_url: str) -> str:
    """GitHub's GraphQL endpoint for a REST root: ``https://HOST/api/v3`` ->
    ``https://HOST/api/graphql``, ``https://api.github.com`` -> ``.../graphql``."""
    root = base_url.rstrip("/")
    if root.endswith("/v3"):
        root = root[: -len("/v3")]
    return root + "/graphql"


class BoundedRetry(GithubRetry):
    """``GithubRetry`` that also refuses to sleep a ``Retry-After`` beyond the bound.

    ``max_rate_limit_wait`` bounds waits for a rate-limit reset, but urllib3 sleeps a
    ``Retry-After`` header as given; a secondary limit of an hour would hang the run.
    """

    def increment(self, method: str | None = None, url: str | None = None,
                  response: Any = None, error: Exception | None = None,
                  _pool: Any = None, _stacktrace: Any = None) -> Any:
        if response is not None and self.max_rate_limit_wait is not None:
            wait = _seconds(response.headers.get("Retry-After"))
            if wait is not None and wait > self.max_rate_limit_wait:
                raise RateLimitExceededExceedsMaxWait(
                    response.status, None, dict(response.headers), wait=wait)
        return super().increment(method, url, response, error, _pool, _stacktrace)


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: left to urllib3


def _install_adapter(requester: Requester, adapter: ConditionalAdapter) -> None:
    """Mount ``adapter`` on the session PyGithub sends through.

    PyGithub has no public hook for its HTTP session; its connection object (created here,
    then reused for every request to the base URL) holds a plain ``requests.Session``.
    """
    connection = requester._Requester__createConnection()  # type: ignore[attr-defined]
    connection.session.mount("http://", adapter)
    connection.session.mount("https://", adapter)


def send(requester: Requester, verb: str, url: str, what: str, config: GitHubConfig, *,
         parameters: dict[str, Any] | None = None, body: dict[str, Any] | None = None,
         raise_status: tuple[int, ...] = ()) -> tuple[dict[str, Any], Any]:
    """One request; a failure becomes :class:`RepositoryFailed` or :class:`SourceFailed`.

    Statuses in ``raise_status`` are raised as PyGithub's ``GithubException`` for the caller
    to interpret (403 alerts the token may not read, 404 of a branch without protection).
    """
    try:
        return requester.requestJsonAndCheck(verb, url, parameters=parameters, input=body)
    except RateLimitExceededException as error:
        raise SourceFailed(f"rate limited until {reset_time(error.headers)}") from None
    except BadCredentialsException:
        raise SourceFailed("GitHub rejected the token (HTTP 401)") from None
    except GithubException as error:
        if error.status in raise_status:
            raise
        raise RepositoryFailed(f"{what}: {http_reason(error)}") from None
    except requests.exceptions.RequestException as error:
        if is_timeout(error):
            raise RepositoryFailed(f"{what}: timeout after {config.timeout_seconds}s") from None
        if isinstance(error, requests.exceptions.RetryError):
            raise RepositoryFailed(f"{what}: gave up after {config.retries} retries") from None
        if isinstance(error, requests.exceptions.ConnectionError):
            raise SourceFailed(f"GitHub at {redact_url(config.base_url)} is unreachable: "
                               f"{connection_reason(error)}") from None
        raise RepositoryFailed(f"{what}: {type(error).__name__}") from None


class RestReader:
    """GETs through the requester, counted by operation in ``calls``."""

    def __init__(self, requester: Requester, config: GitHubConfig) -> None:
        self.requester, self.config = requester, config
        self.calls: dict[str, int] = {}

    def pages(self, url: str, what: str, parameters: dict[str, Any], *,
              raise_status: tuple[int, ...] = ()) -> Iterator[dict[str, Any]]:
        """Every item of a list endpoint, following ``Link: rel="next"``."""
        next_url: str | None = url
        params: dict[str, Any] | None = {**parameters, "per_page": self.config.per_page}
        bound = PageBound(self.config.max_pages)
        while next_url:
            self.calls[what] = self.calls.get(what, 0) + 1
            headers, data = send(self.requester, "GET", next_url, what, self.config,
                                 parameters=params, raise_status=raise_status)
            items = [item for item in (data or []) if isinstance(item, dict)]
            yield from items
            next_url = next_link(headers.get("link", ""))
            params = None  # the next link carries them
            if next_url is None:
                break
            stop = bound.after(next_url, empty=not items)
            if stop:
                raise RepositoryFailed(f"{what}: {stop}; stopped")


class PageBound:
    """The pages of one listing, bounded: GitHub's answers decide when it ends only within
    ``limit`` pages, never by a cursor or ``next`` link already followed, nor (where the
    listing says how many items it has) past the pages that count fills.

    ``after`` is called for each page read that points at a next one; it returns why to
    stop, or None to read on.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pages = 0
        self.seen: set[str] = set()

    def after(self, cursor: str | None, *, total: int | None = None,
              per_page: int | None = None, empty: bool = False) -> str | None:
        """``empty``: the page held no item (REST lists carry no count, so an empty page that
        links to another ends the listing too)."""
        self.pages += 1
        if empty:
            return f"page {self.pages} is empty and links to another"
        if not cursor:
            return f"page {self.pages} says more follow but gives no cursor"
        if cursor in self.seen:
            return f"page {self.pages} points back at a page already read ({cursor[:100]!r})"
        self.seen.add(cursor)
        if total is not None and per_page and self.pages * per_page >= total:
            return (f"page {self.pages} says more follow, past the {total} item(s) the listing "
                    "counts")
        if self.pages >= self.limit:
            return f"more than {self.limit} pages (collectors.github.max_pages)"
        return None


def http_reason(error: GithubException) -> str:
    reasons = {401: "bad credentials", 403: "permission denied", 404: "not found"}
    reason = reasons.get(error.status, "server error" if error.status >= 500 else "error")
    return f"HTTP {error.status} ({reason})"


def reset_time(headers: dict[str, str] | None) -> str:
    """When the limit lifts: ``X-RateLimit-Reset`` (epoch) or ``Retry-After`` (seconds)."""
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    try:
        if "x-ratelimit-reset" in lowered and lowered.get("x-ratelimit-remaining") == "0":
            moment = datetime.fromtimestamp(int(lowered["x-ratelimit-reset"]), UTC)
        elif "retry-after" in lowered:
            moment = utcnow() + timedelta(seconds=int(lowered["retry-after"]))
        elif "x-ratelimit-reset" in lowered:
            moment = datetime.fromtimestamp(int(lowered["x-ratelimit-reset"]), UTC)
        else:
            return "unknown (no reset time given)"
    except (ValueError, OverflowError):
        return "unknown (unreadable reset time)"
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def next_link(link: str) -> str | None:
    for part in link.split(","):
        section = part.split(";")
        if len(section) >= 2 and any(s.strip() == 'rel="next"' for s in section[1:]):
            return section[0].strip().strip("<>")
    return None
