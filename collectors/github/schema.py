"""The ``github.*`` facts: one repository per service, read with GitHub's GraphQL API (a batch
of repositories per query) and the organisation's alert lists (REST)."""

from __future__ import annotations

from core.schema import Fact, FactSchema, FactType, facts

T = FactType

# Key files looked up at the repository root (and .github/ where GitHub also reads them).
KEY_FILES: dict[str, tuple[str, ...]] = {
    "README.md": ("README.md", "README", "README.rst", "readme.md"),
    "CODEOWNERS": ("CODEOWNERS", ".github/CODEOWNERS", "docs/CODEOWNERS"),
    "SECURITY.md": ("SECURITY.md", ".github/SECURITY.md"),
    "LICENSE": ("LICENSE", "LICENSE.md", "LICENSE.txt", "COPYING"),
    ".github/dependabot.yml": (".github/dependabot.yml", ".github/dependabot.yaml"),
    "Dockerfile": ("Dockerfile",),
    "catalog-info.yaml": ("catalog-info.yaml", "catalog-info.yml"),
}

_SEVERITIES = ("critical", "high", "medium", "low")


R = "GraphQL Repository."  # the fields below are read on each repository of a batched query
PROTECTION = "GraphQL Repository.defaultBranchRef.branchProtectionRule"


def _alerts(kind: str, api: str) -> list[Fact]:
    return [
        Fact(f"alerts.{kind}.{sev}", T.INT,
             f"Open {kind.replace('_', ' ')} alerts of severity {sev}.", api)
        for sev in _SEVERITIES
    ] + [Fact(f"alerts.{kind}.total", T.INT, f"All open {kind.replace('_', ' ')} alerts.", api)]


SCHEMA = FactSchema(
    namespace="github",
    description="The service's GitHub repository (annotation github.com/project-slug).",
    facts=facts(
        ("repository", T.STRING, "owner/name of the repository.", R + "nameWithOwner"),
        ("archived", T.BOOL, "The repository is archived.", R + "isArchived"),
        ("visibility", T.STRING, "public, private or internal.", R + "visibility"),
        ("default_branch", T.STRING, "Name of the default branch.", R + "defaultBranchRef.name"),
        ("topics", T.STRING_LIST, "Repository topics.", R + "repositoryTopics"),
        ("languages", T.STRING_LIST, "Languages, most bytes first.",
         R + "languages(orderBy: SIZE DESC)"),
        ("primary_language", T.STRING, "The language with most bytes.",
         R + "primaryLanguage"),
        ("files", T.STRING_LIST,
         "Key files present, by canonical name: " + ", ".join(KEY_FILES) + ".",
         R + 'object(expression: "HEAD:"), "HEAD:.github", "HEAD:docs/CODEOWNERS" (tree entries)'),
        ("workflows", T.STRING_LIST, "Paths of GitHub Actions workflows (.github/workflows/*.yml).",
         R + 'object(expression: "HEAD:.github") (tree entries, two levels)'),
        ("has_readme", T.BOOL, "A README exists.", "tree entries"),
        ("has_codeowners", T.BOOL, "A CODEOWNERS file exists (root, .github/ or docs/).",
         "tree entries"),
        ("has_security_policy", T.BOOL, "SECURITY.md exists.", "tree entries"),
        ("has_license", T.BOOL, "A LICENSE file exists.", "tree entries"),
        ("has_dependabot_config", T.BOOL, ".github/dependabot.yml exists.", "tree entries"),
        ("has_ci_workflow", T.BOOL, "At least one GitHub Actions workflow exists.",
         "tree entries"),
        ("has_dockerfile", T.BOOL, "A Dockerfile exists at the root.", "tree entries"),
        ("has_catalog_info", T.BOOL, "catalog-info.yaml exists at the root.", "tree entries"),
        ("branch_protection.enabled", T.BOOL, "The default branch is protected.",
         PROTECTION + " (null: not protected)"),
        ("branch_protection.required_reviews", T.INT,
         "Approving reviews required before merge (0 when reviews are not required).",
         "branch protection rule"),
        ("branch_protection.require_code_owner_reviews", T.BOOL, "Code owners must approve.",
         "branch protection rule"),
        ("branch_protection.dismiss_stale_reviews", T.BOOL, "New commits dismiss approvals.",
         "branch protection rule"),
        ("branch_protection.required_status_checks", T.STRING_LIST,
         "Status checks that must pass before merge.", "branch protection rule"),
        ("branch_protection.strict_status_checks", T.BOOL, "Branches must be up to date.",
         "branch protection rule"),
        ("branch_protection.enforce_admins", T.BOOL, "Rules apply to administrators too.",
         "branch protection rule"),
        ("branch_protection.allow_force_pushes", T.BOOL, "Force pushes are allowed.",
         "branch protection rule"),
        ("branch_protection.allow_deletions", T.BOOL, "The branch may be deleted.",
         "branch protection rule"),
        ("pull_requests.open", T.INT, "Open pull requests.",
         R + "pullRequests(states: OPEN).totalCount"),
        ("pull_requests.oldest_open_days", T.DOUBLE,
         "Age in days of the oldest open pull request (absent when none is open).",
         R + "pullRequests(states: OPEN, first: 1, orderBy: CREATED_AT ASC)"),
        ("last_commit_at", T.TIMESTAMP, "Time of the last commit on the default branch.",
         R + "defaultBranchRef.target.committedDate"),
        *_alerts("dependabot", "GET /orgs/{org}/dependabot/alerts?state=open (one sweep per "
                 "organisation; GraphQL Repository.hasVulnerabilityAlertsEnabled)"),
        *_alerts("code_scanning", "GET /orgs/{org}/code-scanning/alerts?state=open (one sweep "
                 "per organisation)"),
        ("latest_release.tag", T.STRING, "Tag of the latest release.",
         R + "latestRelease.tagName"),
        ("latest_release.published_at", T.TIMESTAMP, "When the latest release was published.",
         R + "latestRelease.publishedAt"),
    ),
)
