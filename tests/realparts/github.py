"""A local HTTP server that answers like GitHub's REST and GraphQL APIs, for PyGithub.

REST bodies follow GitHub's documented shapes (only the fields the collector and PyGithub
read, plus the ``url`` fields, which point at this server). Like GitHub it sends ``ETag`` and
answers ``If-None-Match`` with 304 without counting it against ``X-RateLimit-Remaining``,
paginates with ``Link`` headers, answers 404 ``Branch not protected`` and 403 rate limits.

``POST /api/graphql`` validates every query against GitHub's published schema (see
:mod:`tests.realparts.graphql`; a query GitHub would reject is answered with its errors and
recorded in ``invalid_queries``), computes its cost as GitHub documents it, takes it from a
GraphQL budget of its own (like GitHub's separate ``graphql`` resource) and answers from the
same repositories. Faults (5xx, secondary limits, slow answers) are queued per path by the
tests (``GRAPHQL`` for the GraphQL endpoint); ``fail_repository`` and ``fail_field`` make one
repository (or one of its fields) answer a GraphQL error inside an otherwise good answer. A
server error set with ``fail_always`` for a repository's REST path (``/repos/acme/x``) is
also the answer to any GraphQL query that reads that repository: GitHub failing for it.

A hostile mode answers what a broken or malicious endpoint could: repositories whose full
name is anything at all (``..``, several ``/`` or none, a newline; ``FakeRepository.org`` is
the organisation that lists it), GraphQL connections that always say another page follows at
the same cursor (``loop_connection``) and REST lists whose ``Link: rel="next"`` points back at
the page just read (``loop_link``).
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

from graphql import GraphQLError, execute_sync, parse, validate

from tests.realparts.graphql import connection, field_resolver, github_schema, query_cost
from tests.realparts.httpserver import LocalHTTPServer, Reply, Request

PREFIX = "/api/v3"
GRAPHQL = "/api/graphql"
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
    contents: dict[str, str] = field(default_factory=dict)  # path -> text of a file in files
    org: str | None = None  # the organisation listing it (None: the owner in full_name)

    @property
    def listed_by(self) -> str:
        return self.org if self.org is not None else self.full_name.partition("/")[0]

    @property
    def short_name(self) -> str:
        return self.full_name.rpartition("/")[2]


class GitHubStandIn:
    def __init__(self, repositories: list[FakeRepository], *, rate_limit: int = 5000) -> None:
        self.repositories = {r.full_name: r for r in repositories}
        self.limit = rate_limit
        self.remaining = rate_limit
        self.reset_at = int(time.time()) + 3600
        self.faults: dict[str, deque[Reply | None]] = {}
        self.always: dict[str, Reply] = {}
        self.graphql_limit = rate_limit
        self.graphql_remaining = rate_limit
        self.graphql_costs: list[int] = []  # the cost of each query answered
        self.graphql_repositories: list[str] = []  # repositories the queries asked for
        self.invalid_queries: list[tuple[str, list[str]]] = []
        self.repository_faults: dict[str, tuple[str, str]] = {}
        self.field_faults: dict[tuple[str, str], tuple[str, str]] = {}
        self.org_alerts_readable = True
        self.looping_connections: set[str] = set()
        self.counting_connections: set[str] = set()
        self.looping_links: set[str] = set()
        self._lock = threading.Lock()
        self.server = LocalHTTPServer(self._answer)

    # -- what tests use -----------------------------------------------------------

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def base_url(self) -> str:
        return f"{self.server.url}{PREFIX}"

    def fault(self, path: str, *replies: Reply | None) -> None:
        """Answer the next requests for ``path`` (without /api/v3) with ``replies``, once each
        (``None``: answer that one as usual)."""
        self.faults.setdefault(path, deque()).extend(replies)

    def fail_always(self, path: str, reply: Reply) -> None:
        self.always[path] = reply

    def exhaust_rate_limit(self, *, reset_in: int = 3600) -> None:
        self.remaining = 0
        self.graphql_remaining = 0
        self.reset_at = int(time.time()) + reset_in

    def fail_repository(self, full_name: str, kind: str = "INTERNAL",
                        message: str = "Something went wrong while executing your query.") -> None:
        """GraphQL answers an error for this repository (its alias is null), the rest is data."""
        self.repository_faults[full_name] = (kind, message)

    def fail_field(self, full_name: str, field_name: str, kind: str = "FORBIDDEN",
                   message: str = "Resource not accessible by integration") -> None:
        """GraphQL answers an error for one field of this repository (e.g. branchProtectionRule)."""
        self.field_faults[(full_name, field_name)] = (kind, message)

    def loop_connection(self, name: str, *, new_cursors: bool = False) -> None:
        """GraphQL connection ``name`` (``repositories``, ``languages``, ...) answers its
        first page again at every cursor, always saying that another page follows: at the
        same cursor, or (``new_cursors``) at a new one each time."""
        (self.counting_connections if new_cursors else self.looping_connections).add(name)

    def loop_link(self, path: str) -> None:
        """The REST list at ``path`` (without /api/v3) links back to itself as rel="next"."""
        self.looping_links.add(path)

    def _connection(self, name: str, items: list[Any], **arguments: Any) -> dict[str, Any]:
        if name not in self.looping_connections | self.counting_connections:
            return connection(items, **arguments)
        page = connection(items, first=arguments.get("first"), edge=arguments.get("edge"))
        after = arguments.get("after")
        cursor = str(int(after) + 1) if name in self.counting_connections and after else "1"
        page["pageInfo"].update(hasNextPage=True, endCursor=cursor)
        return page

    def points_used(self) -> int:
        """Rate limit spent so far: GraphQL points plus counted REST requests."""
        return (self.graphql_limit - self.graphql_remaining) + (self.limit - self.remaining)

    def graphql_requests(self, status: int | None = None) -> int:
        return sum(1 for e in self.server.exchanges if e.request.path == GRAPHQL
                   and (status is None or e.status == status))

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
            reply = queued.popleft() if queued else None
            if reply is not None:
                return reply
            if path in self.always:
                return self.always[path]
            if path == GRAPHQL and request.method == "POST":
                return self._graphql(request)
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
        match = re.fullmatch(r"/orgs/([^/]+)/(dependabot|code-scanning)/alerts", path)
        if match:
            return self._org_alerts(match.group(1), match.group(2), path, request)
        match = re.fullmatch(r"/orgs/([^/]+)/repos", path)
        if match:
            names = sorted(n for n, r in self.repositories.items()
                           if r.listed_by == match.group(1))
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

    def _alert_json(self, repo: FakeRepository, kind: str, number: int, severity: str
                    ) -> dict[str, Any]:
        base = f"{self.base_url}/repos/{repo.full_name}"
        owner, name = repo.full_name.partition("/")[0], repo.short_name
        alert: dict[str, Any] = {"number": number, "state": "open"}
        if kind == "dependabot":
            alert.update(url=f"{base}/dependabot/alerts/{number}",
                         security_advisory={"severity": severity},
                         security_vulnerability={"severity": severity})
        else:
            alert.update(url=f"{base}/code-scanning/alerts/{number}",
                         rule={"id": f"rule-{number}", "severity": "warning",
                               "security_severity_level": severity})
        alert["repository"] = {"id": 1, "name": name, "full_name": repo.full_name,
                               "owner": {"login": owner}, "url": base}
        return alert

    def _org_alerts(self, org: str, kind: str, path: str, request: Request
                    ) -> tuple[int, Any, dict[str, str]]:
        if not self.org_alerts_readable:
            return 403, {"message": "Resource not accessible by integration",
                         "documentation_url": DOCS}, {}
        alerts = []
        for full_name in sorted(self.repositories):
            repo = self.repositories[full_name]
            if not full_name.startswith(org + "/"):
                continue
            severities = (repo.dependabot_alerts if kind == "dependabot"
                          else repo.code_scanning_alerts)
            alerts += [self._alert_json(repo, kind, n, s)
                       for n, s in enumerate(severities or [], start=1)]
        return self._page(alerts, path, request)

    # -- GraphQL --------------------------------------------------------------------

    def _graphql(self, request: Request) -> Reply:
        """Validate, cost and answer one query (the caller holds the lock)."""
        body = json.loads(request.body or b"{}")
        query, variables = body.get("query", ""), body.get("variables") or {}
        schema = github_schema()
        try:
            document = parse(query)
        except GraphQLError as error:
            self.invalid_queries.append((query, [error.message]))
            return self._graphql_reply({"errors": [{"message": error.message}]})
        problems = validate(schema, document)
        if problems:
            self.invalid_queries.append((query, [p.message for p in problems]))
            return self._graphql_reply({"errors": [p.formatted for p in problems]})
        for full_name in _repositories_named(variables):
            failing = self.always.get(f"/repos/{full_name}")
            if failing is not None and failing.status >= 500:
                return failing
        cost, _ = query_cost(schema, document, variables)
        if time.time() >= self.reset_at:  # a new window
            self.graphql_remaining, self.reset_at = self.graphql_limit, int(time.time()) + 3600
        if self.graphql_remaining < cost:
            return self._graphql_reply({"errors": [{
                "type": "RATE_LIMITED",
                "message": "API rate limit exceeded for user ID 1."}]})
        self.graphql_remaining -= cost
        self.graphql_costs.append(cost)
        root = {"repository": self._repository_node, "organization": self._organization_node,
                "rateLimit": lambda **_: {
                    "cost": cost, "limit": self.graphql_limit,
                    "remaining": self.graphql_remaining, "used": self.graphql_limit -
                    self.graphql_remaining, "nodeCount": 0,
                    "resetAt": iso(datetime.fromtimestamp(self.reset_at, UTC))}}
        result = execute_sync(schema, document, root_value=root, variable_values=variables,
                              field_resolver=field_resolver)
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [_github_error(e) for e in result.errors]
        return self._graphql_reply(answer)

    def _graphql_reply(self, answer: dict[str, Any]) -> Reply:
        remaining = max(self.graphql_remaining, 0)
        return Reply(200, json.dumps(answer).encode(), {
            "Content-Type": "application/json; charset=utf-8",
            "X-RateLimit-Limit": str(self.graphql_limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Used": str(self.graphql_limit - remaining),
            "X-RateLimit-Reset": str(self.reset_at), "X-RateLimit-Resource": "graphql"})

    def _repository_node(self, owner: str, name: str, **_: Any) -> dict[str, Any] | None:
        full_name = f"{owner}/{name}"
        self.graphql_repositories.append(full_name)
        repo = self.repositories.get(full_name)
        if full_name in self.repository_faults:
            kind, message = self.repository_faults[full_name]
            raise GraphQLError(message, extensions={"type": kind})
        if repo is None:
            raise GraphQLError(f"Could not resolve to a Repository with the name '{full_name}'.",
                               extensions={"type": "NOT_FOUND"})
        return self._repository_dict(repo)

    def _organization_node(self, login: str, **_: Any) -> dict[str, Any]:
        names = sorted(n for n, r in self.repositories.items() if r.listed_by == login)

        def repositories(first: int | None = None, after: str | None = None,
                         **_: Any) -> dict[str, Any]:
            return self._connection("repositories",
                                    [self._repository_dict(self.repositories[n]) for n in names],
                                    first=first, after=after)

        return {"__typename": "Organization", "login": login, "repositories": repositories}

    def _repository_dict(self, repo: FakeRepository) -> dict[str, Any]:
        owner, name = repo.full_name.partition("/")[0], repo.short_name
        by_size = sorted(repo.languages.items(), key=lambda item: -item[1])
        pulls = sorted(repo.pull_requests_created)
        faults = {field_name: (lambda kind=kind, message=message: GraphQLError(
            message, extensions={"type": kind}))
            for (full_name, field_name), (kind, message) in self.field_faults.items()
            if full_name == repo.full_name}
        branch = None
        if repo.files or repo.last_commit_at is not None:
            committed = repo.last_commit_at or datetime(2020, 1, 1, tzinfo=UTC)
            branch = {"__typename": "Ref", "name": repo.default_branch,
                      "prefix": "refs/heads/", "__faults__": faults,
                      "target": {"__typename": "Commit", "oid": _sha(iso(committed)),
                                 "committedDate": iso(committed),
                                 "pushedDate": iso(committed)},
                      "branchProtectionRule": self._protection_rule(repo),
                      "refUpdateRule": None if repo.protection is None else {
                          "pattern": repo.default_branch}}

        def pull_requests(first: int | None = None, after: str | None = None,
                          last: int | None = None, orderBy: Any = None,
                          **_: Any) -> dict[str, Any]:
            nodes = [{"__typename": "PullRequest", "number": n, "createdAt": iso(created)}
                     for n, created in enumerate(pulls, start=1)]
            if orderBy and orderBy.get("direction") == "DESC":
                nodes.reverse()
            return connection(nodes, first=first, after=after, last=last)

        return {
            "__typename": "Repository", "__faults__": faults,
            "name": name, "nameWithOwner": repo.full_name,
            "owner": {"__typename": "Organization", "login": owner},
            "isArchived": repo.archived, "isPrivate": repo.visibility != "public",
            "visibility": repo.visibility.upper(), "isEmpty": not repo.files,
            "hasVulnerabilityAlertsEnabled": repo.dependabot_alerts is not None,
            "primaryLanguage": {"name": by_size[0][0]} if by_size else None,
            "languages": lambda first=None, after=None, **_: self._connection(
                "languages", [{"name": n} for n, _ in by_size], first=first, after=after,
                edge=lambda node: {"size": repo.languages[node["name"]]}),
            "repositoryTopics": lambda first=None, after=None, **_: self._connection(
                "repositoryTopics", [{"topic": {"name": t}} for t in repo.topics],
                first=first, after=after),
            "pullRequests": pull_requests,
            "defaultBranchRef": branch,
            "latestRelease": None if repo.release is None else {
                "tagName": repo.release[0], "publishedAt": iso(repo.release[1]),
                "createdAt": iso(repo.release[1])},
            "object": lambda expression, **_: self._git_object(repo, expression),
        }

    def _protection_rule(self, repo: FakeRepository) -> dict[str, Any] | None:
        rule = repo.protection
        if rule is None:
            return None
        reviews = rule.get("required_pull_request_reviews")
        checks = rule.get("required_status_checks")
        return {
            "pattern": repo.default_branch,
            "requiresApprovingReviews": reviews is not None,
            "requiredApprovingReviewCount": (reviews or {}).get(
                "required_approving_review_count") if reviews else None,
            "requiresCodeOwnerReviews": bool((reviews or {}).get("require_code_owner_reviews")),
            "dismissesStaleReviews": bool((reviews or {}).get("dismiss_stale_reviews")),
            "requiresStatusChecks": checks is not None,
            "requiresStrictStatusChecks": bool((checks or {}).get("strict")),
            "requiredStatusCheckContexts": list((checks or {}).get("contexts", [])),
            "isAdminEnforced": bool((rule.get("enforce_admins") or {}).get("enabled")),
            "allowsForcePushes": bool((rule.get("allow_force_pushes") or {}).get("enabled")),
            "allowsDeletions": bool((rule.get("allow_deletions") or {}).get("enabled")),
        }

    def _git_object(self, repo: FakeRepository, expression: str) -> dict[str, Any] | None:
        """``HEAD:path`` or ``<branch>:path``: a Tree of the entries below, or a Blob."""
        ref, _, path = expression.partition(":")
        if ref not in ("HEAD", repo.default_branch) or not repo.files:
            return None
        path = path.strip("/")
        if path == "catalog-info.yaml" and repo.catalog_info is not None:
            return {"__typename": "Blob", "text": repo.catalog_info, "isBinary": False,
                    "isTruncated": False, "byteSize": len(repo.catalog_info.encode())}
        if path in repo.files:
            text = repo.contents.get(path, "")
            return {"__typename": "Blob", "text": text, "isBinary": False,
                    "isTruncated": False, "byteSize": len(text.encode())}
        prefix = f"{path}/" if path else ""
        below = [p[len(prefix):] for p in repo.files if p.startswith(prefix)]
        if not below:
            return None
        names = sorted({p.split("/", 1)[0] for p in below})
        entries = []
        for entry in names:
            full = prefix + entry
            kind = "blob" if full in repo.files else "tree"
            entries.append({"name": entry, "path": full, "type": kind,
                            "object": (lambda full=full, **_: self._git_object(
                                repo, f"HEAD:{full}"))})
        return {"__typename": "Tree", "entries": entries}

    def _repo_json(self, repo: FakeRepository) -> dict[str, Any]:
        owner, name = repo.full_name.partition("/")[0], repo.short_name
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
        if path in self.looping_links:  # the same page again, forever
            links.append(f'<{self.base_url}{path}?{urlencode(request.query)}>; rel="next"')
        elif page < last:
            query = {**request.query, "page": page + 1}
            links.append(f'<{self.base_url}{path}?{urlencode(query)}>; rel="next"')
            query = {**request.query, "page": last}
            links.append(f'<{self.base_url}{path}?{urlencode(query)}>; rel="last"')
        return 200, chunk, ({"Link": ", ".join(links)} if links else {})


def _repositories_named(variables: dict[str, Any]) -> list[str]:
    """``owner/name`` of the repositories a query's variables name (``o0``/``n0``, ...)."""
    pairs = [(variables.get("owner"), variables.get("name"))]
    pairs += [(value, variables.get("n" + key[1:])) for key, value in variables.items()
              if key.startswith("o") and key[1:].isdigit()]
    return [f"{owner}/{name}" for owner, name in pairs if owner and name]


def _github_error(error: GraphQLError) -> dict[str, Any]:
    """GitHub's error shape: ``type`` beside ``message`` and ``path``."""
    formatted = dict(error.formatted)
    extensions = formatted.pop("extensions", None) or {}
    if "type" in extensions:
        formatted["type"] = extensions["type"]
    return formatted


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def days_ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)
