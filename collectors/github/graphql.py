"""Repository facts through GitHub's GraphQL API: many repositories in one query.

One query reads a batch of repositories (``batch_size``, 50 by default), each under an alias
(``r0: repository(owner: $o0, name: $n0) { ...repositoryFacts }``), and asks for its own
cost. Every fact comes from a plain field or from the first page of a connection; a
connection is paged further only for a repository that has more (over 100 languages or
topics). The open pull requests are counted by ``totalCount``, the oldest is the first of
them by creation date. Three connections per repository make a batch of 50 cost 2 points.

Failures keep their scope: a transport failure (timeout, 5xx, a secondary limit beyond the
bound) fails the batch's repositories; an ``errors`` entry whose path is one repository
fails that repository alone (a repository that does not exist or the token cannot see is
reported as such); an error deeper in a repository (``defaultBranchRef.branchProtectionRule``)
leaves only the facts of that field unknown, with a note, and keeps what arrived.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from github.Requester import Requester

from collectors.github.budget import RATE_LIMIT_FIELDS, Budget, parse_moment
from collectors.github.client import (
    PageBound,
    RepositoryFailed,
    SourceFailed,
    graphql_url,
    send,
)
from collectors.github.schema import KEY_FILES
from collectors.github.settings import GitHubConfig

# Connections per repository in REPOSITORY_FACTS (topics, languages, pull requests).
CONNECTIONS = 3

PROTECTION_FIELDS = """
    requiresApprovingReviews requiredApprovingReviewCount requiresCodeOwnerReviews
    dismissesStaleReviews requiresStatusChecks requiresStrictStatusChecks
    requiredStatusCheckContexts isAdminEnforced allowsForcePushes allowsDeletions"""

TOPICS = ("repositoryTopics(first: 100, after: $after) "
          "{ totalCount nodes { topic { name } } pageInfo { hasNextPage endCursor } }")
LANGUAGES = ("languages(first: 100, after: $after, orderBy: {field: SIZE, direction: DESC}) "
             "{ totalCount edges { size node { name } } pageInfo { hasNextPage endCursor } }")

REPOSITORY_FACTS = f"""
fragment repositoryFacts on Repository {{
  nameWithOwner isArchived isPrivate visibility hasVulnerabilityAlertsEnabled
  primaryLanguage {{ name }}
  {TOPICS.replace(", after: $after", "")}
  {LANGUAGES.replace(", after: $after", "")}
  pullRequests(states: OPEN, first: 1, orderBy: {{field: CREATED_AT, direction: ASC}}) {{
    totalCount nodes {{ createdAt }} }}
  latestRelease {{ tagName publishedAt }}
  defaultBranchRef {{
    name
    target {{ ... on Commit {{ committedDate }} }}
    refUpdateRule {{ pattern }}
    branchProtectionRule {{ {PROTECTION_FIELDS} }}
  }}
  root: object(expression: "HEAD:") {{ ... on Tree {{ entries {{ name type }} }} }}
  dotGithub: object(expression: "HEAD:.github") {{
    ... on Tree {{ entries {{ name type object {{ ... on Tree {{ entries {{ name type }} }} }} }} }}
  }}
  docsCodeowners: object(expression: "HEAD:docs/CODEOWNERS") {{ __typename }}
}}"""

MORE = {"repositoryTopics": TOPICS, "languages": LANGUAGES}

# What an unprotected branch allows, as GitHub documents it: these are known, not unknown.
UNPROTECTED: dict[str, Any] = {
    "enabled": False, "required_reviews": 0, "require_code_owner_reviews": False,
    "dismiss_stale_reviews": False, "required_status_checks": [], "strict_status_checks": False,
    "enforce_admins": False, "allow_force_pushes": True, "allow_deletions": True,
}

# The facts each top-level field of a repository answers, to leave unknown when it failed.
FACT_GROUPS = {
    "isArchived": ("archived",), "visibility": ("visibility",),
    "repositoryTopics": ("topics",), "languages": ("languages",),
    "primaryLanguage": ("primary_language",), "pullRequests": ("pull_requests",),
    "latestRelease": ("latest_release",),
    "defaultBranchRef": ("default_branch", "last_commit_at", "branch_protection"),
}
FILE_FIELDS = ("root", "dotGithub", "docsCodeowners")


def batch_query(count: int) -> str:
    """The query for ``count`` repositories, with variables ``$o<i>``/``$n<i>``."""
    variables = ", ".join(f"$o{i}: String!, $n{i}: String!" for i in range(count))
    aliases = "\n".join(f"  r{i}: repository(owner: $o{i}, name: $n{i}) {{ ...repositoryFacts }}"
                        for i in range(count))
    return (f"query RepositoryFacts({variables}) {{\n  {RATE_LIMIT_FIELDS}\n{aliases}\n}}\n"
            f"{REPOSITORY_FACTS}")


def more_query(connection: str) -> str:
    return (f"query MoreOf($owner: String!, $name: String!, $after: String) {{\n"
            f"  {RATE_LIMIT_FIELDS}\n"
            f"  repository(owner: $owner, name: $name) {{ {MORE[connection]} }}\n}}")


def expected_cost(repositories: int) -> int:
    return max(1, int(repositories * CONNECTIONS / 100 + 0.5))


@dataclass
class RepositoryRead:
    """One repository's facts, what the alert sweep needs, and notes on unknown facts."""

    slug: str
    facts: dict[str, Any]
    dependabot_enabled: bool | None = None
    notes: list[str] = field(default_factory=list)


class GraphQLReader:
    def __init__(self, requester: Requester, config: GitHubConfig, budget: Budget,
                 started_at: datetime | None = None) -> None:
        self.requester, self.config, self.budget = requester, config, budget
        self.started_at = started_at or datetime.now(UTC)
        self.url = graphql_url(config.base_url)

    def query(self, text: str, variables: dict[str, Any], what: str, cost: int
              ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """``(data, errors)`` of one query; raises for an answer without data."""
        for _ in range(2):  # once more after sleeping through a primary limit
            self.budget.afford(cost)
            headers, answer = send(self.requester, "POST", self.url, what, self.config,
                                   body={"query": text, "variables": variables})
            if not isinstance(answer, dict):
                raise RepositoryFailed(f"{what}: unexpected answer")
            errors = [e for e in answer.get("errors") or [] if isinstance(e, dict)]
            data = answer.get("data")
            if any(e.get("type") == "RATE_LIMITED" for e in errors) and not data:
                self.budget.exhausted(headers)
                continue
            if not isinstance(data, dict):
                message = errors[0].get("message") if errors else "no data"
                raise RepositoryFailed(f"{what}: GraphQL error: {message}")
            self.budget.spent(data.get("rateLimit"))
            return data, errors
        raise SourceFailed(f"rate limited until {self.budget.reset_text()}")

    def read_batch(self, slugs: Sequence[str]) -> dict[str, RepositoryRead | str]:
        """Each slug's facts, or the reason it could not be read."""
        variables: dict[str, Any] = {}
        for index, slug in enumerate(slugs):
            owner, _, name = slug.partition("/")
            variables[f"o{index}"], variables[f"n{index}"] = owner, name
        data, errors = self.query(batch_query(len(slugs)), variables, "GraphQL batch",
                                  expected_cost(len(slugs)))
        outcomes: dict[str, RepositoryRead | str] = {}
        for index, slug in enumerate(slugs):
            alias = f"r{index}"
            mine = [e for e in errors if (e.get("path") or [None])[0] == alias]
            node = data.get(alias)
            if not isinstance(node, dict):
                outcomes[slug] = f"{slug}: {_repository_error(mine)}"
                continue
            outcomes[slug] = self._read(slug, node, mine)
        return outcomes

    def _read(self, slug: str, node: dict[str, Any], errors: list[dict[str, Any]]
              ) -> RepositoryRead:
        broken = {".".join(str(p) for p in (e.get("path") or [])[1:3]): e for e in errors}
        read = RepositoryRead(slug, repository_facts(slug, node, self.started_at))
        for name, (topics_or_languages) in (("repositoryTopics", "topics"),
                                            ("languages", "languages")):
            page = node.get(name) or {}
            if (page.get("pageInfo") or {}).get("hasNextPage"):
                more, stop = self._rest_of(slug, name, page)
                read.facts[topics_or_languages] += more
                if stop:  # pages without end: that fact is unknown, not a short list
                    read.facts.pop(topics_or_languages, None)
                    read.notes.append(f"{name}: {stop}; stopped, left unknown")
        read.dependabot_enabled = node.get("hasVulnerabilityAlertsEnabled")
        if isinstance(node.get("defaultBranchRef"), dict) and not broken and \
                read.facts.get("branch_protection") is None:
            read.notes.append("branch protection: the branch is protected but the token may "
                              "not read the rule (it needs administration:read); left unknown")
        for path, error in broken.items():
            top = path.split(".")[0]
            why = f"{error.get('type') or 'error'} ({error.get('message', '')})"
            if path == "defaultBranchRef.branchProtectionRule":
                read.facts["branch_protection"] = None
                read.notes.append(f"branch protection: {why}; left unknown")
                continue
            for fact in FACT_GROUPS.get(top, ("files", "workflows") if top in FILE_FIELDS
                                        else ()):
                read.facts.pop(fact, None)
            if top in FILE_FIELDS:
                for fact in [k for k in read.facts if k.startswith("has_")]:
                    read.facts.pop(fact)
            if top == "hasVulnerabilityAlertsEnabled":
                read.dependabot_enabled = None
            read.notes.append(f"{top}: {why}; left unknown")
        return read

    def _rest_of(self, slug: str, connection: str, page: dict[str, Any]
                 ) -> tuple[list[str], str | None]:
        """Names on the pages after the first (more than 100 languages or topics), and why
        the pages were stopped before their end (see :class:`PageBound`)."""
        owner, _, name = slug.partition("/")
        names: list[str] = []
        bound = PageBound(self.config.max_pages)
        while (page.get("pageInfo") or {}).get("hasNextPage"):
            after = page["pageInfo"].get("endCursor")
            total = page.get("totalCount")
            stop = bound.after(after if isinstance(after, str) else None,
                               total=total if isinstance(total, int) else None, per_page=100)
            if stop:
                return names, stop
            data, _ = self.query(more_query(connection),
                                 {"owner": owner, "name": name, "after": after},
                                 f"{connection} page", 1)
            page = (data.get("repository") or {}).get(connection) or {}
            names += _names(connection, page)
        return names, None


def _repository_error(errors: list[dict[str, Any]]) -> str:
    if not errors:
        return "repository: no data in the answer"
    kind, message = errors[0].get("type"), errors[0].get("message", "")
    if kind == "NOT_FOUND":
        return "repository not found, or not visible to the token (GraphQL NOT_FOUND)"
    return f"repository: GraphQL error {kind or ''}: {message}".replace("  ", " ")


def _names(connection: str, page: dict[str, Any]) -> list[str]:
    if connection == "languages":
        found = [((e or {}).get("node") or {}).get("name") for e in page.get("edges") or []]
    else:
        found = [((n or {}).get("topic") or {}).get("name") for n in page.get("nodes") or []]
    return [name for name in found if isinstance(name, str)]


def repository_facts(slug: str, node: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The ``github.*`` facts of one repository node of REPOSITORY_FACTS."""
    branch = node.get("defaultBranchRef")
    visibility = node.get("visibility")
    facts: dict[str, Any] = {
        "repository": node.get("nameWithOwner") or slug,
        "archived": node.get("isArchived"),
        "visibility": visibility.lower() if isinstance(visibility, str) else
        _visibility(node.get("isPrivate")),
        "default_branch": (branch or {}).get("name"),
        "topics": _names("repositoryTopics", node.get("repositoryTopics") or {}),
        "languages": _names("languages", node.get("languages") or {}),
        "primary_language": (node.get("primaryLanguage") or {}).get("name"),
        "pull_requests": _pull_requests(node.get("pullRequests") or {}, now),
    }
    facts.update(key_files(node))
    if isinstance(branch, dict):
        facts["last_commit_at"] = (branch.get("target") or {}).get("committedDate")
        facts["branch_protection"] = protection(branch)
    release = node.get("latestRelease")
    if isinstance(release, dict):
        facts["latest_release"] = {"tag": release.get("tagName"),
                                   "published_at": release.get("publishedAt")}
    return facts


def key_files(node: dict[str, Any]) -> dict[str, Any]:
    """Key files and workflows from the root, ``.github`` (two levels) and docs/CODEOWNERS."""
    paths = {e["name"] for e in _entries(node.get("root")) if e.get("type") == "blob"}
    for entry in _entries(node.get("dotGithub")):
        if entry.get("type") == "blob":
            paths.add(f".github/{entry['name']}")
        for inner in _entries(entry.get("object")):
            if inner.get("type") == "blob":
                paths.add(f".github/{entry['name']}/{inner['name']}")
    if node.get("docsCodeowners"):
        paths.add("docs/CODEOWNERS")
    present = [name for name, options in KEY_FILES.items() if any(o in paths for o in options)]
    workflows = sorted(p for p in paths if p.startswith(".github/workflows/")
                       and p.endswith((".yml", ".yaml")) and p.count("/") == 2)
    return {
        "files": present,
        "workflows": workflows,
        "has_readme": "README.md" in present,
        "has_codeowners": "CODEOWNERS" in present,
        "has_security_policy": "SECURITY.md" in present,
        "has_license": "LICENSE" in present,
        "has_dependabot_config": ".github/dependabot.yml" in present,
        "has_ci_workflow": bool(workflows),
        "has_dockerfile": "Dockerfile" in present,
        "has_catalog_info": "catalog-info.yaml" in present,
    }


def _entries(tree: Any) -> list[dict[str, Any]]:
    entries = tree.get("entries") if isinstance(tree, dict) else None
    return [e for e in entries or [] if isinstance(e, dict) and isinstance(e.get("name"), str)]


def protection(branch: dict[str, Any]) -> dict[str, Any] | None:
    """Branch protection of the default branch; None (unknown) when the branch is protected
    but the token may not read the rule (it needs administration:read)."""
    rule = branch.get("branchProtectionRule")
    if not isinstance(rule, dict):
        return None if branch.get("refUpdateRule") else dict(UNPROTECTED)
    reviews = bool(rule.get("requiresApprovingReviews"))
    count = rule.get("requiredApprovingReviewCount")
    checks = bool(rule.get("requiresStatusChecks"))
    return {
        "enabled": True,
        "required_reviews": (count if isinstance(count, int) else 1) if reviews else 0,
        "require_code_owner_reviews": bool(rule.get("requiresCodeOwnerReviews")),
        "dismiss_stale_reviews": bool(rule.get("dismissesStaleReviews")),
        "required_status_checks": sorted(
            {c for c in rule.get("requiredStatusCheckContexts") or [] if c}) if checks else [],
        "strict_status_checks": checks and bool(rule.get("requiresStrictStatusChecks")),
        "enforce_admins": rule.get("isAdminEnforced"),
        "allow_force_pushes": rule.get("allowsForcePushes"),
        "allow_deletions": rule.get("allowsDeletions"),
    }


def _pull_requests(page: dict[str, Any], now: datetime) -> dict[str, Any]:
    facts: dict[str, Any] = {"open": page.get("totalCount")}
    oldest = [parse_moment((n or {}).get("createdAt")) for n in page.get("nodes") or []]
    known = [moment for moment in oldest if moment is not None]
    if known:
        facts["oldest_open_days"] = round((now - min(known)).total_seconds() / 86400, 2)
    return facts


def _visibility(private: Any) -> str | None:
    if isinstance(private, bool):
        return "private" if private else "public"
    return None
