"""A local HTTP server that answers like GitHub's REST API, for PyGithub.

Bodies follow GitHub's documented shapes (only the fields the collector and PyGithub read,
plus the ``url`` fields, which point at this server). Like GitHub it sends ``ETag`` and
answers ``If-None-Match`` with 304 without counting it against ``X-RateLimit-Remaining``,
paginates with ``Link`` headers, answers 404 ``Branch not protected`` and 403 rate limits.
Faults (5xx, secondary limits, slow answers) are queued per path by the tests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from tests.realparts.httpserver import LocalHTTPServer, Reply, Request

PREFIX = "/api/v3"
DOCS = "https://docs.github.com/rest"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass
class FakeRepository:
    """What one repository holds; the stand-in renders GitHub's JSON from it."""

    full_name: str
    default_branch: str = "main"
    visibility: str = "private"
    archived: bool = False
    topics: list[str] = field(default_factory=list)
    languages: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    protection: dict[str, Any] | None = None  # None: 404 "Branch not protected"
    pull_requests_created: list[datetime] = field(default_factory=list)
    last_commit_at: datetime | None = None
    dependabot_alerts: list[str] | None = field(default_factory=list)  # severities; None: 403
    code_scanning_alerts: list[str] | None = None  # severities; None: 404 no analysis
    release: tuple[str, datetime] | None = None
    catalog_info: str | None = None


class GitHubStandIn:
    def __init__(self, repositories: list[FakeRepository], *, rate_limit: int = 5000) -> None:
        self.repositories = {r.full_name: r for r in repositories}
        self.limit = rate_limit
        self.remaining = rate_limit
        self.reset_at = int(time.time()) + 3600
        self.faults: dict[str, deque[Reply]] = {}
        self.always: dict[str, Reply] = {}
        self._lock = threading.Lock()
        self.server = LocalHTTPServer(self._answer)

    # -- what tests use -----------------------------------------------------------

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def base_url(self) -> str:
        return f"{self.server.url}{PREFIX}"

    def fault(self, path: str, *replies: Reply) -> None:
        """Answer the next requests for ``path`` (without /api/v3) with ``replies``, once each."""
        self.faults.setdefault(path, deque()).extend(replies)

    def fail_always(self, path: str, reply: Reply) -> None:
        self.always[path] = reply

    def exhaust_rate_limit(self, *, reset_in: int = 3600) -> None:
        self.remaining = 0
        self.reset_at = int(time.time()) + reset_in

    def requests(self, status: int | None = None, path_prefix: str = "") -> int:
        return sum(1 for e in self.server.exchanges
                   if (status is None or e.status == status)
                   and e.request.path.startswith(PREFIX + path_prefix))

    def reset_counts(self) -> None:
        self.server.reset()

    def authorizations(self) -> set[str]:
        return {e.request.headers.get("authorization", "") for e in self.server.exchanges}

    # -- the API --------------------------------------------------------------------

    def _answer(self, request: Request) -> Reply:
        path = request.path.removeprefix(PREFIX)
        with self._lock:
            queued = self.faults.get(path)
            if queued:
                return queued.popleft()
            if path in self.always:
                return self.always[path]
            if self.remaining <= 0:
                return self._rate_limited()
        status, body, extra = self._route(path, request)
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        etag = f'W/"{hashlib.sha256(payload).hexdigest()[:32]}"'
        with self._lock:
            if status == 200 and request.headers.get("if-none-match") == etag:
                return Reply(304, b"", {"ETag": etag, **self._limits()})
            self.remaining -= 1
            headers = {"Content-Type": "application/json; charset=utf-8", **self._limits(),
                       **extra}
        if status == 200:
            headers["ETag"] = etag
        return Reply(status, payload, headers)

    def _limits(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.limit),
                "X-RateLimit-Remaining": str(max(self.remaining, 0)),
                "X-RateLimit-Used": str(self.limit - max(self.remaining, 0)),
                "X-RateLimit-Reset": str(self.reset_at), "X-RateLimit-Resource": "core"}

    def _rate_limited(self) -> Reply:
        body = {"message": "API rate limit exceeded for user ID 1. If you reach out to GitHub "
                           "Support for help, please include the request ID.",
                "documentation_url": f"{DOCS}/overview/rate-limits-for-the-rest-api"}
        return Reply(403, json.dumps(body).encode(),
                     {"Content-Type": "application/json; charset=utf-8", **self._limits()})

    def _route(self, path: str, request: Request) -> tuple[int, Any, dict[str, str]]:
        match = re.fullmatch(r"/orgs/([^/]+)/repos", path)
        if match:
            names = sorted(n for n in self.repositories if n.startswith(match.group(1) + "/"))
            return self._page([self._repo_json(self.repositories[n]) for n in names],
                              path, request)
        match = re.fullmatch(r"/repos/([^/]+/[^/]+)(/.*)?", path)
        if not match or match.group(1) not in self.repositories:
            return 404, {"message": "Not Found", "documentation_url": DOCS}, {}
        repo, rest = self.repositories[match.group(1)], match.group(2) or ""
        base = f"{self.base_url}/repos/{repo.full_name}"
        branch = repo.default_branch
        if rest == "":
            return 200, self._repo_json(repo), {}
        if rest == "/languages":
            return 200, repo.languages, {}
        if rest == f"/git/trees/{branch}":
            if not repo.files:
                return 409, {"message": "Git Repository is empty.", "documentation_url": DOCS}, {}
            tree = [{"path": p, "mode": "100644", "type": "blob", "sha": _sha(p),
                     "url": f"{base}/git/blobs/{_sha(p)}"} for p in repo.files]
            dirs = sorted({p.rsplit("/", 1)[0] for p in repo.files if "/" in p})
            tree += [{"path": d, "mode": "040000", "type": "tree", "sha": _sha(d),
                      "url": f"{base}/git/trees/{_sha(d)}"} for d in dirs]
            return 200, {"sha": _sha(branch), "url": f"{base}/git/trees/{_sha(branch)}",
                         "tree": tree, "truncated": False}, {}
        if rest == f"/branches/{branch}/protection":
            if repo.protection is None:
                return 404, {"message": "Branch not protected",
                             "documentation_url": f"{DOCS}/branches/branch-protection"}, {}
            return 200, {"url": f"{base}/branches/{branch}/protection", **repo.protection}, {}
        if rest == "/pulls":
            pulls = [{"url": f"{base}/pulls/{n}", "number": n, "state": "open",
                      "title": f"Change {n}", "created_at": iso(created),
                      "updated_at": iso(created)}
                     for n, created in enumerate(sorted(repo.pull_requests_created), start=1)]
            return self._page(pulls, path, request)
        if rest == f"/branches/{branch}":
            if repo.last_commit_at is None:
                return 404, {"message": "Branch not found", "documentation_url": DOCS}, {}
            sha = _sha(iso(repo.last_commit_at))
            person = {"name": "Dev", "email": "dev@example.com",
                      "date": iso(repo.last_commit_at)}
            return 200, {"name": branch, "protected": repo.protection is not None,
                         "protection_url": f"{base}/branches/{branch}/protection",
                         "commit": {"sha": sha, "url": f"{base}/commits/{sha}", "commit": {
                             "author": person, "committer": person, "message": "Change"}}}, {}
        if rest == "/dependabot/alerts":
            if repo.dependabot_alerts is None:
                return 403, {"message": "Resource not accessible by integration",
                             "documentation_url": DOCS}, {}
            alerts = [{"number": n, "state": "open", "url": f"{base}/dependabot/alerts/{n}",
                       "security_advisory": {"severity": s},
                       "security_vulnerability": {"severity": s}}
                      for n, s in enumerate(repo.dependabot_alerts, start=1)]
            return self._page(alerts, path, request)
        if rest == "/code-scanning/alerts":
            if repo.code_scanning_alerts is None:
                return 404, {"message": "no analysis found", "documentation_url": DOCS}, {}
            alerts = [{"number": n, "state": "open", "url": f"{base}/code-scanning/alerts/{n}",
                       "rule": {"id": f"rule-{n}", "severity": "warning",
                                "security_severity_level": s}}
                      for n, s in enumerate(repo.code_scanning_alerts, start=1)]
            return self._page(alerts, path, request)
        if rest == "/releases/latest":
            if repo.release is None:
                return 404, {"message": "Not Found", "documentation_url": DOCS}, {}
            tag, published = repo.release
            return 200, {"url": f"{base}/releases/1", "id": 1, "tag_name": tag,
                         "name": tag, "draft": False, "prerelease": False,
                         "created_at": iso(published), "published_at": iso(published)}, {}
        if rest == "/contents/catalog-info.yaml" and repo.catalog_info is not None:
            if "raw" in request.headers.get("accept", ""):
                return 200, repo.catalog_info.encode(), {}
            return 200, {"type": "file", "encoding": "base64", "name": "catalog-info.yaml",
                         "path": "catalog-info.yaml", "url": f"{base}/contents/catalog-info.yaml",
                         "content": base64.b64encode(repo.catalog_info.encode()).decode()}, {}
        return 404, {"message": "Not Found", "documentation_url": DOCS}, {}

    def _repo_json(self, repo: FakeRepository) -> dict[str, Any]:
        owner, name = repo.full_name.split("/")
        url = f"{self.base_url}/repos/{repo.full_name}"
        language = max(repo.languages, key=lambda k: repo.languages[k]) if repo.languages else None
        return {
            "id": int(hashlib.sha256(repo.full_name.encode()).hexdigest()[:8], 16),
            "name": name, "full_name": repo.full_name,
            "owner": {"login": owner, "type": "Organization",
                      "url": f"{self.base_url}/users/{owner}"},
            "private": repo.visibility != "public", "visibility": repo.visibility,
            "html_url": f"{self.url}/{repo.full_name}", "url": url,
            "languages_url": f"{url}/languages", "pulls_url": f"{url}/pulls{{/number}}",
            "default_branch": repo.default_branch, "archived": repo.archived,
            "disabled": False, "topics": repo.topics, "language": language,
            "created_at": "2020-01-01T00:00:00Z", "pushed_at": "2026-01-01T00:00:00Z",
        }

    def _page(self, items: list[Any], path: str, request: Request
              ) -> tuple[int, Any, dict[str, str]]:
        per_page = int(request.query.get("per_page", 30))
        page = int(request.query.get("page", 1))
        chunk = items[(page - 1) * per_page: page * per_page]
        links = []
        last = max(1, -(-len(items) // per_page))
        if page < last:
            query = {**request.query, "page": page + 1}
            links.append(f'<{self.base_url}{path}?{urlencode(query)}>; rel="next"')
            query = {**request.query, "page": last}
            links.append(f'<{self.base_url}{path}?{urlencode(query)}>; rel="last"')
        return 200, chunk, ({"Link": ", ".join(links)} if links else {})


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def days_ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)
