"""Facts from GitHub (or GitHub Enterprise Server): one repository per service.

```yaml
collectors:
  github:
    base_url: https://api.github.com     # GHES: https://github.example.com/api/v3
    org: acme                            # repository acme/<service> when no annotation
    token_env: GITHUB_TOKEN              # or token_file: /run/secrets/github-token
    cache_path: /var/lib/levelset/github-etags.json   # optional; memory by default
    max_wait_seconds: 60                 # longest sleep for a rate limit, else fail fast
    timeout_seconds: 15
```

The repository is the ``github.com/project-slug`` annotation, else ``<org>/<service name>``.
Each repository costs eight requests on a first run, nine when its default branch is
protected (the endpoints named in ``collectors/github/schema.py``; more only for lists
longer than 100). Every GET is conditional (:mod:`collectors.github.cache`): an unchanged
repository answers 304 on later runs, which GitHub's rate limit does not count. Answers
without an ETag cannot be revalidated and are counted every run: the 404 of a repository
without releases, and the 403/404 of alerts the token may not read.

PyGithub does the transport: authentication, Enterprise URLs, retries of 5xx and of
secondary rate limits (``GithubRetry``, bounded by ``max_wait_seconds``) and typed
exceptions. The facts are read from the documented JSON of each endpoint through its
requester rather than through PyGithub's lazy objects, so that each fact maps to exactly
one listed request and the request budget is what the schema says.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

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

from collectors.base import CollectionResult, Collector, read_secret, utcnow
from collectors.github import REPOSITORY, SOURCE
from collectors.github.cache import (
    ConditionalAdapter,
    ETagCache,
    JsonFileETagCache,
    MemoryETagCache,
)
from collectors.github.schema import KEY_FILES
from collectors.github.settings import GitHubConfig
from collectors.http import RequestCounter, connection_reason, is_timeout
from core.errors import CollectorError
from core.service import Service

log = logging.getLogger(__name__)

SEVERITIES = ("critical", "high", "medium", "low")

# What an unprotected branch allows, as GitHub documents it: these are known, not unknown.
UNPROTECTED: dict[str, Any] = {
    "enabled": False, "required_reviews": 0, "require_code_owner_reviews": False,
    "dismiss_stale_reviews": False, "required_status_checks": [], "strict_status_checks": False,
    "enforce_admins": False, "allow_force_pushes": True, "allow_deletions": True,
}


class _RepositoryFailed(Exception):
    """This repository could not be read; the others can."""


class _SourceFailed(Exception):
    """Nothing more can be read from GitHub in this run (rate limit, server unreachable)."""


class GitHubCollector(Collector):
    source = SOURCE

    config: GitHubConfig

    def __init__(self, config: Any = None, *, cache: ETagCache | None = None) -> None:
        super().__init__(config)
        if cache is None:
            path = self.config.cache_path
            cache = JsonFileETagCache(path) if path is not None else MemoryETagCache()
        self.cache = cache

    def repository_of(self, service: Service) -> str | None:
        annotated = REPOSITORY.value(service)
        if annotated:
            return annotated
        if self.config.org:
            return f"{self.config.org}/{service.name.rpartition('/')[2]}"
        return None

    def collect(self, services: Sequence[Service]) -> CollectionResult:
        result = CollectionResult(source=self.name, started_at=utcnow())
        counter = RequestCounter()
        try:
            client = self.open_client(counter)
        except CollectorError as error:
            result.fail_all(services, str(error))
            result.finished_at = utcnow()
            return result
        reader = _RepositoryReader(client.requester, self.config, result)
        read: dict[str, dict[str, Any] | str] = {}  # services sharing a repository read it once
        try:
            for index, service in enumerate(services):
                slug = self.repository_of(service)
                if slug is None:
                    result.failures[service.name] = (
                        "no github.com/project-slug annotation and no collectors.github.org")
                    continue
                try:
                    if slug.lower() not in read:
                        read[slug.lower()] = reader.read(slug, service.name)
                except _RepositoryFailed as error:
                    read[slug.lower()] = f"{slug}: {error}"
                except (KeyError, TypeError, AttributeError, ValueError) as error:
                    log.exception("unexpected answer for %s", slug)
                    read[slug.lower()] = f"{slug}: unexpected answer ({type(error).__name__})"
                except _SourceFailed as error:
                    result.fail_all(services[index:], str(error))
                    break
                outcome = read[slug.lower()]
                if isinstance(outcome, str):
                    result.failures[service.name] = outcome
                else:
                    result.facts[service.name] = dict(outcome)
        finally:
            client.close()
            self.cache.save()
            result.requests = counter.requests
            result.not_modified = counter.not_modified
            result.calls = dict(reader.calls)
            result.finished_at = utcnow()
        return result

    def open_client(self, counter: RequestCounter) -> Github:
        """A PyGithub client whose requests are counted and conditional."""
        config = self.config
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
        adapter = ConditionalAdapter(counter, self.cache, max_retries=retry)
        _install_adapter(client.requester, adapter)
        return client


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


class _RepositoryReader:
    """Reads one repository's facts; records notes for facts the token may not read."""

    def __init__(self, requester: Requester, config: GitHubConfig,
                 result: CollectionResult) -> None:
        self.requester, self.config, self.result = requester, config, result
        self.calls: dict[str, int] = {}

    def read(self, slug: str, service: str) -> dict[str, Any]:
        base = f"/repos/{slug}"
        repo = self._get(base, "repository")
        if not isinstance(repo, dict):
            raise _RepositoryFailed("unexpected answer for the repository")
        branch = repo.get("default_branch") or "main"
        ref = quote(branch, safe="")
        facts: dict[str, Any] = {
            "repository": repo.get("full_name", slug),
            "archived": repo.get("archived"),
            # GitHub Enterprise Server before 3.x has only the "private" flag.
            "visibility": repo.get("visibility") or _visibility(repo.get("private")),
            "default_branch": repo.get("default_branch"),
            "topics": repo.get("topics"),
            "primary_language": repo.get("language"),
        }
        languages = self._get(f"{base}/languages", "languages")
        if isinstance(languages, dict):
            # name -> bytes (PyGithub adds a "url" key to every object it returns)
            sizes = {k: v for k, v in languages.items() if isinstance(v, int)}
            facts["languages"] = sorted(sizes, key=lambda name: -sizes[name])
        facts.update(self._files(base, ref))
        # The branch gives the last commit and whether it is protected; the protection
        # settings are read only for a protected branch. Both answer 200 with an ETag, so an
        # unchanged repository revalidates them for free (a 404 would be counted every run).
        branch_data = self._get(f"{base}/branches/{ref}", "branch", absent_on=(404,))
        if isinstance(branch_data, dict):
            commit = (branch_data.get("commit") or {}).get("commit") or {}
            facts["last_commit_at"] = (commit.get("committer") or {}).get("date")
            if branch_data.get("protected") is False:
                facts["branch_protection"] = dict(UNPROTECTED)
            else:
                facts["branch_protection"] = self._protection(base, ref, service)
        facts["pull_requests"] = self._pull_requests(base)
        facts["alerts"] = {
            "dependabot": self._alerts(
                f"{base}/dependabot/alerts", service, "dependabot",
                lambda a: (a.get("security_advisory") or {}).get("severity")),
            "code_scanning": self._alerts(
                f"{base}/code-scanning/alerts", service, "code scanning",
                lambda a: (a.get("rule") or {}).get("security_severity_level")),
        }
        release = self._get(f"{base}/releases/latest", "latest release", absent_on=(404,))
        if isinstance(release, dict):
            facts["latest_release"] = {"tag": release.get("tag_name"),
                                       "published_at": release.get("published_at")}
        return facts

    # -- one fact group per endpoint -------------------------------------------------

    def _files(self, base: str, ref: str) -> dict[str, Any]:
        tree = self._get(f"{base}/git/trees/{ref}", "git tree", {"recursive": 1},
                         absent_on=(409,))  # 409: empty repository, no tree
        if tree is None:
            paths: set[str] = set()
            truncated = False
        elif isinstance(tree, dict):
            paths = {e["path"] for e in tree.get("tree", []) if e.get("type") == "blob"}
            truncated = bool(tree.get("truncated"))
        else:
            return {}
        present = [name for name, options in KEY_FILES.items() if any(o in paths for o in options)]
        workflows = sorted(p for p in paths if p.startswith(".github/workflows/")
                           and p.endswith((".yml", ".yaml")) and p.count("/") == 2)

        def has(name: str) -> bool | None:
            # A truncated tree (over 100,000 entries) proves presence, not absence.
            return True if name in present else (None if truncated else False)

        return {
            "files": present,
            "workflows": workflows,
            "has_readme": has("README.md"),
            "has_codeowners": has("CODEOWNERS"),
            "has_security_policy": has("SECURITY.md"),
            "has_license": has("LICENSE"),
            "has_dependabot_config": has(".github/dependabot.yml"),
            "has_ci_workflow": True if workflows else (None if truncated else False),
            "has_dockerfile": has("Dockerfile"),
            "has_catalog_info": has("catalog-info.yaml"),
        }

    def _protection(self, base: str, ref: str, service: str) -> dict[str, Any] | None:
        url = f"{base}/branches/{ref}/protection"
        try:
            data = self._get(url, "branch protection", raise_status=(403, 404))
        except GithubException as error:
            message = error.data.get("message") if isinstance(error.data, dict) else None
            if error.status == 404 and message == "Branch not protected":
                return dict(UNPROTECTED)
            self.result.errors.append(
                f"{service}: branch protection: HTTP {error.status} (the token needs "
                "administration:read on the repository); left unknown")
            return None
        if not isinstance(data, dict):
            return None
        reviews = data.get("required_pull_request_reviews")
        checks = data.get("required_status_checks")
        return {
            "enabled": True,
            "required_reviews": (reviews or {}).get("required_approving_review_count", 1)
            if reviews is not None else 0,
            "require_code_owner_reviews": bool((reviews or {}).get("require_code_owner_reviews")),
            "dismiss_stale_reviews": bool((reviews or {}).get("dismiss_stale_reviews")),
            "required_status_checks": sorted(
                {c.get("context") for c in (checks or {}).get("checks", []) if c.get("context")}
                | set((checks or {}).get("contexts", []))),
            "strict_status_checks": bool((checks or {}).get("strict")),
            "enforce_admins": _enabled(data.get("enforce_admins")),
            "allow_force_pushes": _enabled(data.get("allow_force_pushes")),
            "allow_deletions": _enabled(data.get("allow_deletions")),
        }

    def _pull_requests(self, base: str) -> dict[str, Any]:
        pulls = list(self._pages(f"{base}/pulls", "pull requests",
                                 {"state": "open", "sort": "created", "direction": "asc"}))
        facts: dict[str, Any] = {"open": len(pulls)}
        created = [_timestamp(p.get("created_at")) for p in pulls]
        known = [c for c in created if c is not None]
        if known:
            facts["oldest_open_days"] = round(
                (self.result.started_at - min(known)).total_seconds() / 86400, 2)
        return facts

    def _alerts(self, url: str, service: str, what: str,
                severity: Any) -> dict[str, int] | None:
        try:
            alerts = list(self._pages(url, f"{what} alerts", {"state": "open"},
                                      raise_status=(403, 404)))
        except GithubException as error:
            # 403: the token may not read alerts; 404: the feature is off. Unknown either way.
            self.result.errors.append(f"{service}: {what} alerts: HTTP {error.status}; "
                                      "left unknown")
            return None
        counts = dict.fromkeys(SEVERITIES, 0)
        for alert in alerts:
            level = severity(alert)
            if level in counts:
                counts[level] += 1
        counts["total"] = len(alerts)
        return counts

    # -- transport ------------------------------------------------------------------

    def _get(self, url: str, what: str, parameters: dict[str, Any] | None = None, *,
             absent_on: tuple[int, ...] = (), raise_status: tuple[int, ...] = ()) -> Any:
        _, data = self._request(url, what, parameters, absent_on=absent_on,
                                raise_status=raise_status)
        return data

    def _pages(self, url: str, what: str, parameters: dict[str, Any], *,
               raise_status: tuple[int, ...] = ()) -> Iterator[dict[str, Any]]:
        """Every item of a list endpoint, following ``Link: rel="next"``."""
        next_url: str | None = url
        params: dict[str, Any] | None = {**parameters, "per_page": self.config.per_page}
        while next_url:
            headers, data = self._request(next_url, what, params, raise_status=raise_status)
            yield from (item for item in (data or []) if isinstance(item, dict))
            next_url = next_link(headers.get("link", ""))
            params = None  # the next link carries them

    def _request(self, url: str, what: str, parameters: dict[str, Any] | None, *,
                 absent_on: tuple[int, ...] = (), raise_status: tuple[int, ...] = (),
                 ) -> tuple[dict[str, Any], Any]:
        self.calls[what] = self.calls.get(what, 0) + 1
        try:
            return self.requester.requestJsonAndCheck("GET", url, parameters=parameters)
        except RateLimitExceededException as error:
            raise _SourceFailed(f"rate limited until {reset_time(error.headers)}") from None
        except BadCredentialsException:
            raise _SourceFailed("GitHub rejected the token (HTTP 401)") from None
        except GithubException as error:
            if error.status in absent_on:
                return {}, None
            if error.status in raise_status:
                raise
            raise _RepositoryFailed(f"{what}: {_http_reason(error)}") from None
        except requests.exceptions.RequestException as error:
            if is_timeout(error):
                raise _RepositoryFailed(
                    f"{what}: timeout after {self.config.timeout_seconds}s") from None
            if isinstance(error, requests.exceptions.RetryError):
                raise _RepositoryFailed(
                    f"{what}: gave up after {self.config.retries} retries") from None
            if isinstance(error, requests.exceptions.ConnectionError):
                raise _SourceFailed(f"GitHub at {self.config.base_url} is unreachable: "
                                    f"{connection_reason(error)}") from None
            raise _RepositoryFailed(f"{what}: {type(error).__name__}") from None


def _visibility(private: Any) -> str | None:
    if isinstance(private, bool):
        return "private" if private else "public"
    return None


def _http_reason(error: GithubException) -> str:
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


def _enabled(setting: Any) -> bool | None:
    if isinstance(setting, dict):
        value = setting.get("enabled")
        return value if isinstance(value, bool) else None
    return None


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
