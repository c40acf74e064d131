"""The ``github.*`` facts: one repository per service, read with the GitHub REST API."""

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
        ("repository", T.STRING, "owner/name of the repository.", "GET /repos/{owner}/{repo}"),
        ("archived", T.BOOL, "The repository is archived.", "GET /repos/{owner}/{repo}"),
        ("visibility", T.STRING, "public, private or internal.", "GET /repos/{owner}/{repo}"),
        ("default_branch", T.STRING, "Name of the default branch.", "GET /repos/{owner}/{repo}"),
        ("topics", T.STRING_LIST, "Repository topics.", "GET /repos/{owner}/{repo}"),
        ("languages", T.STRING_LIST, "Languages, most bytes first.",
         "GET /repos/{owner}/{repo}/languages"),
        ("primary_language", T.STRING, "The language with most bytes.",
         "GET /repos/{owner}/{repo}"),
        ("files", T.STRING_LIST,
         "Key files present, by canonical name: " + ", ".join(KEY_FILES) + ".",
         "GET /repos/{owner}/{repo}/git/trees/{branch}?recursive=1"),
        ("workflows", T.STRING_LIST, "Paths of GitHub Actions workflows (.github/workflows/*.yml).",
         "GET /repos/{owner}/{repo}/git/trees/{branch}?recursive=1"),
        ("has_readme", T.BOOL, "A README exists.", "git tree"),
        ("has_codeowners", T.BOOL, "A CODEOWNERS file exists (root, .github/ or docs/).",
         "git tree"),
        ("has_security_policy", T.BOOL, "SECURITY.md exists.", "git tree"),
        ("has_license", T.BOOL, "A LICENSE file exists.", "git tree"),
        ("has_dependabot_config", T.BOOL, ".github/dependabot.yml exists.", "git tree"),
        ("has_ci_workflow", T.BOOL, "At least one GitHub Actions workflow exists.", "git tree"),
        ("has_dockerfile", T.BOOL, "A Dockerfile exists at the root.", "git tree"),
        ("has_catalog_info", T.BOOL, "catalog-info.yaml exists at the root.", "git tree"),
        ("branch_protection.enabled", T.BOOL, "The default branch is protected.",
         "GET /repos/{owner}/{repo}/branches/{branch} (protected), then "
         "GET /repos/{owner}/{repo}/branches/{branch}/protection when it is"),
        ("branch_protection.required_reviews", T.INT,
         "Approving reviews required before merge (0 when reviews are not required).",
         "branch protection"),
        ("branch_protection.require_code_owner_reviews", T.BOOL, "Code owners must approve.",
         "branch protection"),
        ("branch_protection.dismiss_stale_reviews", T.BOOL, "New commits dismiss approvals.",
         "branch protection"),
        ("branch_protection.required_status_checks", T.STRING_LIST,
         "Status checks that must pass before merge.", "branch protection"),
        ("branch_protection.strict_status_checks", T.BOOL, "Branches must be up to date.",
         "branch protection"),
        ("branch_protection.enforce_admins", T.BOOL, "Rules apply to administrators too.",
         "branch protection"),
        ("branch_protection.allow_force_pushes", T.BOOL, "Force pushes are allowed.",
         "branch protection"),
        ("branch_protection.allow_deletions", T.BOOL, "The branch may be deleted.",
         "branch protection"),
        ("pull_requests.open", T.INT, "Open pull requests.",
         "GET /repos/{owner}/{repo}/pulls?state=open&sort=created&direction=asc"),
        ("pull_requests.oldest_open_days", T.DOUBLE,
         "Age in days of the oldest open pull request (absent when none is open).",
         "GET /repos/{owner}/{repo}/pulls"),
        ("last_commit_at", T.TIMESTAMP, "Time of the last commit on the default branch.",
         "GET /repos/{owner}/{repo}/branches/{branch}"),
        *_alerts("dependabot", "GET /repos/{owner}/{repo}/dependabot/alerts?state=open"),
        *_alerts("code_scanning", "GET /repos/{owner}/{repo}/code-scanning/alerts?state=open"),
        ("latest_release.tag", T.STRING, "Tag of the latest release.",
         "GET /repos/{owner}/{repo}/releases/latest"),
        ("latest_release.published_at", T.TIMESTAMP, "When the latest release was published.",
         "GET /repos/{owner}/{repo}/releases/latest"),
    ),
)
